"""rlhf-tf: reinforcement learning from human feedback for TensorFlow and Keras.

Importing the package routes `tf.keras` to Keras 2 for TF-Agents before TensorFlow loads (see `keras_setup`).
"""

from rlhf_tf.keras_setup import configure_keras_routing as _configure_keras_routing

_configure_keras_routing()

from rlhf_tf.version import __version__  # noqa: E402

__all__ = ["__version__"]
