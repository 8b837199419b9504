"""`rlhf-tf launch` and TF_CONFIG checking: every bad launch fails fast with the worker and the fix named."""

import json
import socket

import pytest

from rlhf_tf.bin import launch
from rlhf_tf.errors import UserInputError
from rlhf_tf.training import distribution


@pytest.fixture
def listening():
    """A port some other program listens on."""
    handle = socket.socket()
    handle.bind(("127.0.0.1", 0))
    handle.listen()
    yield handle.getsockname()[1]
    handle.close()


def _tf_config(monkeypatch, config, workers=None):
    monkeypatch.setenv("TF_CONFIG", config if isinstance(config, str) else json.dumps(config))
    if workers is not None:
        monkeypatch.setenv("RLHF_TF_WORKERS", str(workers))


CLUSTER = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}


def test_launcher_splits_its_own_flags_from_the_subcommand():
    assert launch.split_arguments(["--workers=2", "sft", "--steps=3", "x"]) == (
        ["--workers=2"],
        "sft",
        ["--steps=3", "x"],
    )
    assert launch.split_arguments(["--workers=2"]) == (["--workers=2"], None, [])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--workers=2", "info"], "`info` (an rlhf-tf subcommand) does not train on several workers; these do: sft"),
        (["--workers=2", "sfft"], "`sfft` (not an rlhf-tf subcommand)"),
        (["--workers=1", "sft"], "--workers must be 2 or more"),
        (["--workers=2", "--join_timeout=0", "sft"], "--join_timeout must be positive"),
        (["--workers=2", "sft", "--strategy=mirrored"], "drop --strategy"),
        (["--workers=2"], "Name the subcommand to run"),
    ],
)
def test_bad_launches_exit_2_naming_the_fix(arguments, message, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert launch.main(arguments) == 2
    assert message in capsys.readouterr().err


def test_a_tf_config_naming_another_worker_count_is_refused(capsys, monkeypatch):
    _tf_config(monkeypatch, {"cluster": {"worker": ["a:1", "b:1", "c:1"]}, "task": {"type": "worker", "index": 0}})
    assert launch.main(["--workers=2", "sft", "--output_dir=x"]) == 2
    assert "TF_CONFIG in the environment names 3 workers" in capsys.readouterr().err


def test_a_port_range_already_in_use_names_the_worker(listening, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert launch.main(["--workers=2", f"--port={listening - 1}", "sft", "--output_dir=x"]) == 2
    assert f"Worker 1's port {listening} (--port={listening - 1} gives ports" in capsys.readouterr().err


def test_worker_environments_share_the_cluster_and_number_the_tasks():
    addresses = ["127.0.0.1:1", "127.0.0.1:2"]
    for index in range(2):
        environment = launch.worker_environment(addresses, index, 30.0)
        config = json.loads(environment["TF_CONFIG"])
        assert config == {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        assert environment["RLHF_TF_WORKERS"] == "2" and environment["RLHF_TF_JOIN_TIMEOUT"] == "30"
    ports = launch.free_ports(3)
    assert len(set(ports)) == 3


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"cluster": {"worker": ["a:1", "b:1"]', "TF_CONFIG is not valid JSON"),
        ({"cluster": {"worker": ["a:1"], "ps": ["c:1"]}, "task": {"type": "worker"}}, 'names a "ps" job'),
        ({"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker"}}, "cluster.worker[1] = 'b', not"),
        ({"cluster": CLUSTER}, "names 2 tasks but not which one this process is"),
        ({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}, "has task index 2, but cluster.worker has 2"),
    ],
)
def test_malformed_tf_config_is_a_clear_error(config, message, monkeypatch):
    _tf_config(monkeypatch, config)
    with pytest.raises(UserInputError, match="TF_CONFIG") as raised:
        distribution.cluster_from_environment()
    assert message in str(raised.value) and "It should look like" in str(raised.value)


def test_tf_config_must_match_the_launched_worker_count(monkeypatch):
    _tf_config(monkeypatch, {"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}, workers=3)
    with pytest.raises(UserInputError, match="names 2 workers but `rlhf-tf launch --workers=3`"):
        distribution.cluster_from_environment()


def test_cluster_numbers_the_chief_first(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.cluster_from_environment() is None
    _tf_config(
        monkeypatch, {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", "index": 1}}
    )
    cluster = distribution.cluster_from_environment()
    assert cluster.workers == ["c:1", "w:1", "w:2"] and cluster.index == 2 and cluster.address == "w:2"
    _tf_config(monkeypatch, {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}})
    assert distribution.cluster_from_environment() is None  # one task: not a multi-worker run


def test_a_worker_whose_port_is_taken_is_told_so(listening, monkeypatch):
    cluster_config = {"worker": ["127.0.0.1:1", f"127.0.0.1:{listening}"]}
    _tf_config(monkeypatch, {"cluster": cluster_config, "task": {"type": "worker", "index": 1}})
    with pytest.raises(
        UserInputError, match=f"Worker 1 \\(worker 1 in TF_CONFIG\\) cannot listen on 127.0.0.1:{listening}"
    ):
        distribution.check_port_free(distribution.cluster_from_environment())
