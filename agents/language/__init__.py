"""Learners for language policies (keras-hub causal LMs): SFT, the TF-Agents text bridge, PPO, REINFORCE/RLOO/GRPO,
DPO/IPO/hinge, online DPO, KTO, best-of-n and policy evaluation, each learner's pure losses in a `*_losses` module.

Never imports `rlhf_tf.agents.control` (or the recipes above both rooms).
"""
