import tensorflow as tf

from rlhf_tf import hardware


def test_bfloat16_steps_leave_xla_on_a_cpu_and_float32_steps_keep_it():
    assert not tf.config.list_logical_devices("GPU") and not tf.config.list_logical_devices("TPU")
    assert hardware.use_xla(True, "float32") and hardware.use_xla(True, tf.float32)
    assert not hardware.use_xla(True, "bfloat16") and not hardware.use_xla(True, tf.bfloat16)
    assert not hardware.use_xla(False, "float32") and not hardware.use_xla(False, "bfloat16")


def test_tensor_peak_counts_what_tensorflow_held_once_the_cpu_allocator_keeps_statistics():
    import os
    import subprocess
    import sys

    script = (
        "import tensorflow as tf\n"
        "from rlhf_tf import hardware\n"
        "f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)\n"
        "product = f(tf.ones((2048, 2048)))\n"  # a 16 MB input and the 16 MB product XLA writes
        "print(hardware.tensor_peak_mb(('CPU',)), hardware.peak_memory_mb(), hardware.resident_peak_mb())\n"
    )
    environment = {**os.environ, hardware.CPU_ALLOCATOR_STATISTICS: "true", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    tensors, peak, resident = (float(value) for value in result.stdout.split()[-3:])
    assert 32 <= tensors < 100 and peak == tensors  # input and product, not the process's libraries
    assert resident > 5 * tensors
    # Without statistics the CPU has no tensor peak, and the run's figure is the resident set.
    assert hardware.tensor_peak_mb(("CPU",)) is None
    assert hardware.peak_memory_mb() == hardware.resident_peak_mb()
