"""What the machine can do: CPU model and features, accelerators, and the fp32 matmul peak.

Speeds on shared machines are only meaningful as ratios measured in one run, so benchmarks measure
`matmul_peak_gflops` in the same process as the figure they compare with it.
"""

import platform
import time

import tensorflow as tf


def _cpuinfo():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def cpu_model():
    """The CPU's model name ("AMD EPYC ...", "Intel(R) Xeon(R) ..."), or the platform's processor string."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags():
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def has_avx512():
    return "avx512f" in cpu_flags()


def has_native_bf16():
    """True where the CPU computes bf16 natively (AVX512_BF16 or AMX), or a GPU/TPU is attached."""
    flags = cpu_flags()
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return True
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def describe_cpu():
    """One line for benchmark tables: model, AVX-512 or not, bf16 or not."""
    features = ["AVX-512" if has_avx512() else "AVX2 only"]
    if has_native_bf16():
        features.append("bf16")
    return f"{cpu_model()} ({', '.join(features)})"


def matmul_peak_gflops(size=2048, repeats=10, dtype=tf.float32):
    """Measured fp32 matmul throughput of this process in GFLOP/s (the best of `repeats` timed runs)."""
    a = tf.random.stateless_normal((size, size), seed=(1, 2), dtype=dtype)
    b = tf.random.stateless_normal((size, size), seed=(3, 4), dtype=dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def peak_memory_mb():
    """The peak memory of this process's training so far, in MB: the largest accelerator's peak allocation
    (`tf.config.experimental.get_memory_info`) on GPUs and TPUs, else the process's peak resident set (on CPUs
    TensorFlow keeps no allocator statistics; the figure then includes everything the process ever held, such as
    earlier stages of a pipeline run in one process)."""
    peaks = []
    for device in tf.config.list_logical_devices():
        if device.device_type in ("GPU", "TPU"):
            try:
                peaks.append(tf.config.experimental.get_memory_info(device.name)["peak"])
            except (ValueError, RuntimeError):  # devices without allocator statistics
                pass
    if peaks:
        return max(peaks) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
