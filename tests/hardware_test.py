import tensorflow as tf

from rlhf_tf import hardware


def test_bfloat16_steps_leave_xla_on_a_cpu_and_float32_steps_keep_it():
    assert not tf.config.list_logical_devices("GPU") and not tf.config.list_logical_devices("TPU")
    assert hardware.use_xla(True, "float32") and hardware.use_xla(True, tf.float32)
    assert not hardware.use_xla(True, "bfloat16") and not hardware.use_xla(True, tf.bfloat16)
    assert not hardware.use_xla(False, "float32") and not hardware.use_xla(False, "bfloat16")
