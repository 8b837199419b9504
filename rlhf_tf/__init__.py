"""rlhf-tf: reinforcement learning from human feedback for TensorFlow and Keras.

Importing the package routes `tf.keras` to Keras 2 for TF-Agents before TensorFlow loads (see `keras_setup`).
"""

import os as _os

from rlhf_tf.keras_setup import configure_keras_routing as _configure_keras_routing

_configure_keras_routing()


def _ensure_two_inter_op_threads():
    """Rollouts score text in a `tf.py_function` that calls the reward SavedModel: the driver's step holds one
    inter-op thread while the nested call needs another. TensorFlow sizes that pool by the CPUs the process may use,
    so with one (`taskset -c 1`, a one-vCPU container) the first rollout waited forever. TensorFlow reads
    TF_NUM_INTEROP_THREADS when its runtime starts (the first op, not the import); a value the user set is kept."""
    try:
        usable = len(_os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = _os.cpu_count() or 1
    if usable < 2 and "TF_NUM_INTEROP_THREADS" not in _os.environ:
        _os.environ["TF_NUM_INTEROP_THREADS"] = "2"


_ensure_two_inter_op_threads()

from rlhf_tf.version import __version__  # noqa: E402

__all__ = ["__version__"]
