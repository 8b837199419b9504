"""Test session setup: quiet TensorFlow logs and two logical CPU devices for the multi-device paths."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (routes tf.keras before TensorFlow loads)
from rlhf_tf.training import distribution  # noqa: E402

# Must happen before any TensorFlow op runs in this process; MirroredStrategy tests use both devices, every other
# test runs on the first.
distribution.configure_cpu_devices(2)


# The heaviest test files, heaviest first (seconds on one worker, `pytest --durations=0`, 2026-12-03). With
# `--dist loadfile --no-loadscope-reorder` (setup.cfg) pytest-xdist hands whole files to the workers in collection
# order, so long files start first and the workers finish together instead of one idling through a long last file.
_HEAVIEST_FIRST = (
    "tests/training/multi_worker_test.py",  # 431 (2026-12-05: two-worker launches, cores shared)
    "tests/agents/control/control_loop_test.py",  # 454
    "tests/agents/language/generic_chain_test.py",  # 388
    "tests/agents/language/rl_test.py",  # 243
    "tests/agents/language/lora_learners_test.py",  # 229
    "tests/agents/recipes/compare_test.py",  # 217
    "tests/reward/active_test.py",  # 191
    "tests/agents/language/sft_test.py",  # 190
    "tests/colab/notebook_test.py",  # 190 with three notebooks (2026-12-04, cores shared)
    "tests/reward/trainer_test.py",  # 165
    "tests/agents/language/best_of_n_test.py",  # 160
    "tests/models/lora_test.py",  # 128
    "tests/models/families_test.py",  # 111
    "tests/agents/recipes/quickstart_test.py",  # 98
    "tests/agents/control/control_web_test.py",  # 98
    "tests/training/distribution_test.py",  # 78
    "tests/agents/recipes/report_test.py",  # 63
    "tests/agents/recommend/run_test.py",  # 75
    "tests/agents/recommend/web_test.py",  # 50
    "tests/agents/recommend/logged_test.py",  # 35
)


def pytest_collection_modifyitems(session, config, items):
    rank = {path: index for index, path in enumerate(_HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: files stay whole


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
