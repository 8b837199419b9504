"""rlhf_tf.agents: policy learners (SFT, PPO, policy gradient, DPO) and the TF-Agents bridge.

Installed from the top-level `agents/` folder as `rlhf_tf.agents`. May import `rlhf_tf` and `rlhf_tf.reward`.
"""

import rlhf_tf  # noqa: F401  (routes tf.keras before anything below imports TensorFlow)
