"""`rlhf-tf info`: versions, Keras routing, devices and CPU features, for bug reports and capacity planning."""

import importlib.metadata

from absl import flags

import rlhf_tf
from rlhf_tf.bin import runner

_MEASURE = flags.DEFINE_bool("measure", False, "Also measure the fp32 matmul peak (GFLOP/s) of this machine.")

_PACKAGES = ("tensorflow", "keras", "tf-keras", "keras-hub", "tf-agents", "tensorflow-probability", "numpy")


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(measure=False):
    """The report as (name, value) rows."""
    import tensorflow as tf

    from rlhf_tf import hardware, keras_setup

    rows = [("rlhf-tf", rlhf_tf.__version__)]
    rows += [(package, _version(package)) for package in _PACKAGES]
    legacy = keras_setup.tf_keras_is_legacy()
    rows.append(("tf.keras is", "tf_keras (Keras 2, for TF-Agents)" if legacy else "Keras 3 (TF-Agents will break)"))
    rows.append(("cpu", hardware.describe_cpu()))
    devices = tf.config.list_logical_devices()
    rows.append(("devices", ", ".join(device.name for device in devices)))
    rows.append(("mixed precision", "bf16 is native here" if hardware.has_native_bf16() else "fp32 (no native bf16)"))
    if measure:
        rows.append(("fp32 matmul peak", f"{hardware.matmul_peak_gflops():.1f} GFLOP/s"))
    return rows


def main(argv):
    del argv
    rows = report(measure=_MEASURE.value)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
