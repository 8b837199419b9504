"""Routes `tf.keras` to Keras 2 (tf_keras) before TensorFlow is imported.

rlhf-tf runs two Kerases in one process on purpose: our models and keras-hub's are Keras 3 (`import keras`), while
TF-Agents 0.19 builds its networks with `tf.keras` and needs that to be Keras 2. TensorFlow decides what `tf.keras`
is from `TF_USE_LEGACY_KERAS` when it is first imported. Set too late, the process is half-working: TF-Agents agents
build with zero trainable variables and train nothing, without an error. This module makes that state impossible:
it sets the variable when TensorFlow is not imported yet, and refuses to go on when it is too late.
"""

import os
import sys

VARIABLE = "TF_USE_LEGACY_KERAS"
_TRUE_VALUES = ("1", "true", "True")

_FIX = (
    "rlhf-tf needs `tf.keras` to be Keras 2 (tf_keras) for TF-Agents, with Keras 3 beside it as `keras`. "
    "Fix: set the environment variable before TensorFlow is first imported, e.g. "
    "`import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'` as the very first lines (in a notebook: restart the "
    "runtime and run it in the first cell), or `import rlhf_tf` before `import tensorflow`."
)


def tf_keras_is_legacy():
    """True when `tf.keras` resolves to tf_keras (Keras 2), as TF-Agents needs. Imports TensorFlow."""
    import tensorflow  # here, not at the top: this module must run before TensorFlow is first imported

    return tensorflow.keras.Model.__module__.startswith("tf_keras")


def configure_keras_routing():
    """Sets TF_USE_LEGACY_KERAS=1, or raises ImportError if TensorFlow already routed tf.keras to Keras 3."""
    value = os.environ.get(VARIABLE)
    if value is not None and value not in _TRUE_VALUES:
        raise ImportError(
            f"{VARIABLE} is set to a value that turns legacy Keras off. {_FIX} Received: {VARIABLE}={value!r}"
        )
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is None:
        os.environ[VARIABLE] = "1"
        return
    # TensorFlow is already imported: what it saw at import time is what `tensorflow.keras.*` imports resolve to.
    uses_legacy = getattr(tensorflow, "_tf_uses_legacy_keras", None)
    if uses_legacy is None:  # a TensorFlow without that record: ask the lazy loader instead.
        os.environ[VARIABLE] = "1"
        uses_legacy = tf_keras_is_legacy()
    if not uses_legacy:
        raise ImportError(
            f"TensorFlow was imported before rlhf_tf without {VARIABLE}=1, so tf.keras is Keras 3 and TF-Agents "
            f"would build networks with no trainable variables. {_FIX} Received: {VARIABLE}={value!r} when "
            "TensorFlow was imported."
        )
