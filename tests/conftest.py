"""Test session setup: quiet TensorFlow logs and two logical CPU devices for the multi-device paths."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (routes tf.keras before TensorFlow loads)
from rlhf_tf.training import distribution  # noqa: E402

# Must happen before any TensorFlow op runs in this process; MirroredStrategy tests use both devices, every other
# test runs on the first.
distribution.configure_cpu_devices(2)


_EXIT_STATUS = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["value"] = int(exitstatus)


def pytest_unconfigure(config):
    """Leave without tearing TensorFlow down: once the report is written, finalising the tf.data iterators that
    tf.function caches still hold (TF-Agents drivers, environments) can take a minute at interpreter exit. A
    pytest-xdist worker exits normally: its last report to the controller may still be in flight, and the
    controller ends a worker that has not left after its own timeout."""
    import sys

    if "value" in _EXIT_STATUS and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["value"])
