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


def test_on_one_cpu_a_py_function_calling_tensorflow_inside_a_loop_does_not_wait_forever():
    # The rollout pattern: a driver's tf.function steps an environment whose reward is a py_function calling the
    # reward SavedModel. With one usable CPU TensorFlow made one inter-op thread, the outer step held it and the nested
    # call waited forever (PPO pinned with `taskset -c 1` hung before its first step); importing rlhf_tf asks for two.
    code = """
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        import rlhf_tf
        import tensorflow as tf

        @tf.function
        def inner(x):
            return tf.reduce_sum(tf.matmul(x, x))

        @tf.function
        def outer(x):
            def body(i, total):
                value = tf.py_function(lambda y: inner(y), [x], tf.float32)
                value.set_shape(())
                return i + 1, total + value
            return tf.while_loop(lambda i, total: i < 3, body, [0, 0.0])[1]

        print("total", float(outer(tf.ones((4, 4)))), os.environ["TF_NUM_INTEROP_THREADS"])
        """
    env = {
        key: value for key, value in os.environ.items() if key not in ("TF_USE_LEGACY_KERAS", "TF_NUM_INTEROP_THREADS")
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["192.0", "2"]  # 3 x sum(ones(4,4) @ ones(4,4)) = 3 x 64
