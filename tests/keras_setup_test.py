"""The import-order guard: rlhf_tf must never leave a process where TF-Agents trains zero variables."""

import os
import subprocess
import sys
import textwrap


def _run(code, **environment):
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update(environment, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )


def test_importing_rlhf_tf_first_gives_tf_agents_keras_2_and_us_keras_3():
    result = _run(
        """
        import rlhf_tf
        import keras, tensorflow as tf
        from tf_agents.networks import q_network
        from tf_agents.specs import tensor_spec
        network = q_network.QNetwork(
            tensor_spec.TensorSpec([4], tf.float32),
            tensor_spec.BoundedTensorSpec([], tf.int32, 0, 1),
            fc_layer_params=(8,),
        )
        network.create_variables()
        legacy_root = tf.keras.Model.__module__.split(".")[0]
        print(keras.__version__.split(".")[0], legacy_root, len(network.trainable_variables))
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["3", "tf_keras", "4"]


def test_tensorflow_imported_first_without_the_variable_fails_with_the_fix():
    result = _run("import tensorflow\nimport rlhf_tf")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "TensorFlow was imported before rlhf_tf without TF_USE_LEGACY_KERAS=1" in result.stderr
    assert "os.environ['TF_USE_LEGACY_KERAS'] = '1'" in result.stderr


def test_tensorflow_imported_first_with_the_variable_is_accepted():
    result = _run("import tensorflow as tf\nimport rlhf_tf\nprint(tf.keras.Model.__module__)", TF_USE_LEGACY_KERAS="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("tf_keras.")


def test_the_variable_set_to_false_is_refused():
    result = _run("import rlhf_tf", TF_USE_LEGACY_KERAS="0")
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS is set to a value that turns legacy Keras off" in result.stderr
    assert "Received: TF_USE_LEGACY_KERAS='0'" in result.stderr
