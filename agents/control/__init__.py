"""Learners for control policies: factories over TF-Agents agents, the segment-preference loop and the control run.

Never imports `rlhf_tf.agents.language` (or the recipes above both rooms).
"""
