import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import errors, testing, training

SCRIPT = os.path.join(os.path.dirname(__file__), "regression_script.py")


def _weights(model):
    return [np.array(weight) for weight in model.weights]


def _npz_weights(path):
    with np.load(path) as archive:
        return [archive[f"arr_{index}"] for index in range(len(archive.files))]


def _assert_close(left, right, atol):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def test_mirrored_over_two_cpus_matches_one_device(tmp_path):
    assert len(tf.config.list_logical_devices("CPU")) == 2
    config = training.LoopConfig(steps=60, log_every=20, checkpoint_every=60, progress=False)
    single, single_metrics, _ = testing.train_regression(tmp_path / "one", config, clip_norm=0.5)
    mirrored_strategy = training.create_strategy("mirrored")
    assert mirrored_strategy.num_replicas_in_sync == 2
    mirrored, mirrored_metrics, _ = testing.train_regression(
        tmp_path / "two", config, strategy=mirrored_strategy, clip_norm=0.5
    )
    _assert_close(_weights(single), _weights(mirrored), atol=1e-5)
    for name in ("regression/loss", "regression/abs_error", "regression/grad_norm", "regression/eval_mse"):
        assert mirrored_metrics[name] == pytest.approx(single_metrics[name], rel=1e-4), name


def test_global_mean_weights_replicas_by_their_real_elements():
    strategy = training.create_strategy("mirrored")
    # Replica 0 holds 3 real values, replica 1 holds 1: the global mean is over all 4, not a mean of means.
    values = tf.constant([[1.0, 2.0, 3.0, 0.0], [10.0, 0.0, 0.0, 0.0]])
    masks = tf.constant([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])

    @tf.function
    def run():
        def replica_fn():
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            return training.global_mean(tf.gather(values, index), tf.gather(masks, index))

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_fn), axis=None)

    assert float(run()) == pytest.approx(16.0 / 4.0)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def test_multi_worker_mirrored_two_local_workers_agree_with_one_device(tmp_path):
    steps = 60
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        environment = dict(
            os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    SCRIPT,
                    str(tmp_path / "multi"),
                    str(steps),
                    str(tmp_path / f"worker{index}.npz"),
                    "--strategy=multi_worker",
                    "--no_shuffle",
                    "--checkpoint_every=30",
                ],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]

    config = training.LoopConfig(steps=steps, log_every=100, checkpoint_every=30, progress=False)
    single, _, _ = testing.train_regression(tmp_path / "single", config, shuffle_seed=None)
    chief, other = _npz_weights(tmp_path / "worker0.npz"), _npz_weights(tmp_path / "worker1.npz")
    _assert_close(chief, other, atol=1e-6)
    _assert_close(chief, _weights(single), atol=1e-5)
    # Only the chief writes the run directory; the other worker's scratch checkpoints are gone.
    assert sorted(os.listdir(tmp_path / "multi" / "ckpt")) == [
        "checkpoint",
        "ckpt-30.data-00000-of-00001",
        "ckpt-30.index",
        "ckpt-60.data-00000-of-00001",
        "ckpt-60.index",
    ]
    assert json.loads((tmp_path / "multi" / "metrics.json").read_text())["regression/steps"] == steps


def test_kill_9_then_rerun_resumes_and_ends_where_an_uninterrupted_run_ends(tmp_path):
    steps = 3000
    command = [
        sys.executable,
        SCRIPT,
        str(tmp_path / "killed"),
        str(steps),
        str(tmp_path / "killed.npz"),
        "--checkpoint_every=100",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint_dir = tmp_path / "killed" / "ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and tf.train.latest_checkpoint(str(checkpoint_dir)) is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed; raise `steps`"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = int(tf.train.latest_checkpoint(str(checkpoint_dir)).rsplit("-", 1)[1])
    assert 0 < killed_at < steps
    assert not (tmp_path / "killed.npz").exists()

    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    uninterrupted = [
        sys.executable,
        SCRIPT,
        str(tmp_path / "whole"),
        str(steps),
        str(tmp_path / "whole.npz"),
        "--checkpoint_every=100",
    ]
    subprocess.run(uninterrupted, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    _assert_close(_npz_weights(tmp_path / "killed.npz"), _npz_weights(tmp_path / "whole.npz"), atol=1e-6)


def test_bad_config_values_raise_clear_errors():
    with pytest.raises(errors.UserInputError, match=r"`steps` must be > 0\. Received: steps=0"):
        training.LoopConfig(steps=0)
    with pytest.raises(ValueError, match=r"`log_every` must be a whole number\. Received: log_every=2\.5"):
        training.LoopConfig(log_every=2.5)
    with pytest.raises(ValueError, match=r"`eval_every` must be >= 0\. Received: eval_every=-1"):
        training.LoopConfig(eval_every=-1)
    with pytest.raises(ValueError, match=r"`strategy` must be one of .*Received: strategy='gpu'"):
        training.create_strategy("gpu")
    with pytest.raises(ValueError, match=r"`clip_norm` must be > 0\. Received: clip_norm=-1"):
        training.GradientStep(lambda batch: (0.0, {}), [tf.Variable(1.0)], None, clip_norm=-1)
    with pytest.raises(ValueError, match="global batch size must divide evenly"):
        training.per_replica_batch_size(7, tf.distribute.InputContext(num_replicas_in_sync=2))
