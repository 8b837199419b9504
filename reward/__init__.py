"""rlhf_tf.reward: reward models, preference losses and the reward trainer.

Installed from the top-level `reward/` folder as `rlhf_tf.reward`. May import `rlhf_tf`, never `rlhf_tf.agents`.
"""

import rlhf_tf  # noqa: F401  (routes tf.keras before anything below imports TensorFlow)
