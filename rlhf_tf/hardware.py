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


def use_xla(jit_compile, compute_dtype="float32"):
    """Whether a step asked to compile (`jit_compile`) should, given the dtype its matmuls run in.

    XLA:CPU lowers bf16 dots to its own float32 kernels, while TensorFlow's graph runtime hands them to oneDNN,
    which uses the CPU's bf16 instructions: on an AVX512_BF16 EPYC a [1536, 768] x [768, 3072] bf16 matmul ran at
    183 GFLOP/s under XLA and 369 outside it (fp32: 183 and 194), and a GPT-2-small reward-model step took 11.06 s
    in float32 under XLA, 5.83 s in bf16 as a graph (benchmarks/reward_training.py --shape=gpt2_small, bare
    step). So on a machine without GPUs or TPUs, bf16 steps run as graphs; everywhere else (and for float32)
    `jit_compile` stands.
    """
    if not jit_compile or tf.dtypes.as_dtype(compute_dtype) != tf.bfloat16:
        return bool(jit_compile)
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


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


def tensor_peak_mb(device_types=("GPU", "TPU")):
    """The largest peak allocation of TensorFlow's allocator on the devices of `device_types`, in MB: the tensors
    it held at once (variables, optimizer state, activations, XLA's buffers), or None where no device of those
    types keeps statistics or none has allocated yet. GPUs and TPUs keep them; so does the CPU's allocator in the
    TensorFlow this project pins (2.21: `get_memory_info("CPU:0")` counts, XLA's buffers included), the figure
    then comparable with an accelerator's."""
    peaks = []
    for device in tf.config.list_logical_devices():
        if device.device_type in device_types:
            try:
                peaks.append(tf.config.experimental.get_memory_info(device.name)["peak"])
            except (ValueError, RuntimeError):  # devices without allocator statistics
                pass
    return max(peaks) / 2**20 if peaks and max(peaks) > 0 else None


def resident_peak_mb():
    """The process's peak resident set in MB: everything it ever held (the Python runtime, TensorFlow's libraries,
    XLA's compilations, memory the C allocator kept after use), not only tensors."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def peak_memory_mb():
    """The peak memory of this process's training so far, in MB: the largest accelerator's peak allocation on GPUs
    and TPUs; on a CPU the allocator's peak when it keeps statistics (`tensor_peak_mb`), else the process's peak
    resident set (`resident_peak_mb`, which includes everything the process ever held, such as earlier stages of
    a pipeline run in one process)."""
    accelerator = tensor_peak_mb()
    if accelerator is not None:
        return accelerator
    cpu = tensor_peak_mb(("CPU",))
    return cpu if cpu is not None else resident_peak_mb()
