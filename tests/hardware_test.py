import tensorflow as tf

from rlhf_tf import hardware


def test_bfloat16_steps_leave_xla_on_a_cpu_and_float32_steps_keep_it():
    assert not tf.config.list_logical_devices("GPU") and not tf.config.list_logical_devices("TPU")
    assert hardware.use_xla(True, "float32") and hardware.use_xla(True, tf.float32)
    assert not hardware.use_xla(True, "bfloat16") and not hardware.use_xla(True, tf.bfloat16)
    assert not hardware.use_xla(False, "float32") and not hardware.use_xla(False, "bfloat16")


def test_tensor_peak_counts_what_tensorflow_held_and_falls_back_to_the_resident_set_before_any_tensor():
    import subprocess
    import sys

    # A fresh process: a pytest worker's allocator has counted every earlier test's tensors.
    script = (
        "from rlhf_tf import hardware\n"
        "import tensorflow as tf\n"
        "print(hardware.tensor_peak_mb(('CPU',)), hardware.peak_memory_mb() == hardware.resident_peak_mb())\n"
        "f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)\n"
        "product = f(tf.ones((2048, 2048)))\n"  # a 16 MB input and the 16 MB product XLA writes
        "print(hardware.tensor_peak_mb(('CPU',)), hardware.peak_memory_mb(), hardware.resident_peak_mb())\n"
    )
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = result.stdout.strip().splitlines()[-2:]
    assert before == "None True"  # nothing allocated yet: no tensor peak, and the run's figure is the resident set
    tensors, peak, resident = (float(value) for value in after.split())
    assert 32 <= tensors < 100 and peak == tensors  # input and product, not the process's libraries
    assert resident > 5 * tensors
