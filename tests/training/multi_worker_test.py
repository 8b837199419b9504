"""Learners on two local workers (`rlhf-tf launch --workers=2`): the numbers of one process, and preemption-safe.

Every test here starts real worker processes under MultiWorkerMirroredStrategy on this machine.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rlhf_tf import testing, training
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.models import policy as policy_lib

SFT = [
    "--task=reviews",
    "--num_examples=200",
    "--num_layers=1",
    "--hidden_dim=32",
    "--num_heads=2",
    "--num_samples=0",
    "--noexport",
    "--noprogress",
    "--seed=1",
]
# Wall-clock and memory figures differ between any two runs; everything else must not.
_UNTIMED = ("steps_per_second", "peak_memory_mb", "seconds")


def _environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _command(subcommand, arguments, workers):
    launcher = ["launch", f"--workers={workers}", "--join_timeout=120"] if workers > 1 else []
    return [sys.executable, "-m", "rlhf_tf.bin.cli", *launcher, subcommand, *arguments]


def _run(subcommand, arguments, workers=1):
    done = subprocess.run(
        _command(subcommand, arguments, workers), capture_output=True, text=True, timeout=600, env=_environment()
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _metrics(run):
    metrics = json.loads((run / "metrics.json").read_text())
    return {name: value for name, value in metrics.items() if not name.endswith(_UNTIMED)}


def _assert_same_numbers(left, right, rtol):
    assert sorted(left) == sorted(right)
    for name in left:
        assert math.isclose(left[name], right[name], rel_tol=rtol, abs_tol=1e-6), (name, left[name], right[name])


def _worker_pid(launcher, index, deadline):
    """The pid of worker `index` of a launcher process (found by its TF_CONFIG)."""
    while time.time() < deadline:
        children_file = f"/proc/{launcher.pid}/task/{launcher.pid}/children"
        for pid in open(children_file).read().split():
            try:
                environment = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            except OSError:
                continue
            for entry in environment:
                if entry.startswith(b"TF_CONFIG=") and json.loads(entry[10:])["task"]["index"] == index:
                    return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"worker {index} never started")


def _interrupt(run, sent, steps):
    """Launches two-worker SFT into `run`, sends `sent` to worker 1 once the first checkpoint exists; returns the
    launcher's exit status and stderr."""
    arguments = [f"--output_dir={run}", f"--steps={steps}", "--checkpoint_every=20", "--log_every=20", *SFT]
    launcher = subprocess.Popen(
        _command("sft", arguments, 2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_environment()
    )
    deadline = time.time() + 300
    worker = _worker_pid(launcher, 1, deadline)
    while not (run / "ckpt" / "ckpt-20.index").exists() and launcher.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert launcher.poll() is None, "the run ended before it could be interrupted; raise `steps`"
    os.kill(worker, sent)
    _, stderr = launcher.communicate(timeout=300)
    return launcher.returncode, stderr


def _checkpoint_steps(run):
    return sorted(int(name.split("-")[1].split(".")[0]) for name in os.listdir(run / "ckpt") if name.endswith(".index"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds worker processes through /proc")
def test_two_worker_sft_matches_one_process_and_resumes_after_sigterm_or_kill_9(tmp_path):
    steps = 300
    arguments = [f"--steps={steps}", "--checkpoint_every=20", "--log_every=20", *SFT]
    _run("sft", [f"--output_dir={tmp_path / 'one'}", *arguments])
    launched = _run("sft", [f"--output_dir={tmp_path / 'two'}", *arguments], workers=2)
    assert "[worker 1] " in launched.stderr  # the other worker's lines, prefixed
    reference = _metrics(tmp_path / "two")
    assert reference["sft/steps"] == steps
    # The same global batches (each worker takes every other example of the same shuffled stream) and the same
    # update; only the order of float additions differs (an all-reduce of two halves). The logged losses agree
    # to 1e-5 early on; the rounding differences grow as the model overfits its 200 examples.
    one, two = (training.read_scalars(str(tmp_path / run / "tb"))["sft/loss"] for run in ("one", "two"))
    assert [step for step, _ in two] == list(range(20, steps + 1, 20))
    for (_, alone), (_, together) in zip(one[:3], two[:3]):
        assert math.isclose(alone, together, rel_tol=1e-5), (one[:3], two[:3])
    _assert_same_numbers(reference, _metrics(tmp_path / "one"), rtol=1e-2)
    assert not (tmp_path / "two" / "ckpt" / "worker-temp-1").exists()  # the other worker's scratch is cleaned up

    # SIGTERM to one worker (a spot VM's notice): every worker saves at the same step and the job exits 42.
    status, stderr = _interrupt(tmp_path / "term", signal.SIGTERM, steps)
    assert status == 42, stderr[-4000:]
    assert "preempted: the workers saved a checkpoint and stopped" in stderr
    saved = _checkpoint_steps(tmp_path / "term")[-1]
    assert 20 <= saved < steps and f"saved a checkpoint at step {saved}" in stderr
    # kill -9 of one worker: the launcher stops the job and names the worker.
    status, stderr = _interrupt(tmp_path / "kill", signal.SIGKILL, steps)
    assert status == 128 + 9, stderr[-4000:]
    assert "worker 1 was killed by SIGKILL; stopped the other workers" in stderr
    assert _checkpoint_steps(tmp_path / "kill")[-1] < steps

    # Rerunning either ends exactly where the uninterrupted two-worker run ended.
    for run in ("term", "kill"):
        rerun = _run("sft", [f"--output_dir={tmp_path / run}", *arguments], workers=2)
        assert "Resumed from" in rerun.stderr
        assert _metrics(tmp_path / run) == reference


def _pairs(count, seed):
    rng = np.random.default_rng(seed)
    rows = [
        {"prompt": f"Q{rng.integers(1000)}:", "chosen": " yes" + "s" * int(rng.integers(3)), "rejected": " no"}
        for _ in range(count)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_two_worker_reward_training_and_dpo_match_one_process(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    policy = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=2, hidden_dim=32, max_sequence_length=96)
    policy_lib.save_policy(tmp_path / "sft", policy, tokenizer)
    (tmp_path / "pairs.jsonl").write_text(_pairs(128, 0))
    commands = {
        "train-reward": [
            f"--train={tmp_path / 'pairs.jsonl'}",
            "--tokenizer=byte",
            "--num_layers=1",
            "--hidden_dim=32",
            "--steps=12",
            "--noexport",
        ],
        "dpo": [f"--policy={tmp_path / 'sft'}", f"--data={tmp_path / 'pairs.jsonl'}", "--task=", "--steps=12"],
    }
    for subcommand, arguments in commands.items():
        arguments = [*arguments, "--noexport", "--noprogress", "--seed=3", "--log_every=4", "--checkpoint_every=6"]
        _run(subcommand, [f"--output_dir={tmp_path / subcommand / 'one'}", *arguments])
        _run(subcommand, [f"--output_dir={tmp_path / subcommand / 'two'}", *arguments], workers=2)
        two = _metrics(tmp_path / subcommand / "two")
        assert any(name.endswith("/steps") and value == 12 for name, value in two.items()), two
        _assert_same_numbers(two, _metrics(tmp_path / subcommand / "one"), rtol=1e-4)


def test_two_worker_ppo_and_grpo_sample_their_shares_and_match_one_process(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    policy = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=4, hidden_dim=32, max_sequence_length=48)
    policy_lib.save_policy(tmp_path / "sft", policy, tokenizer)
    common = [
        f"--policy={tmp_path / 'sft'}",
        "--reward=gold",
        "--task=reviews",
        "--steps=4",
        "--batch_size=8",
        "--minibatch_size=8",
        "--max_prompt_tokens=24",
        "--max_new_tokens=8",
        "--num_eval_prompts=8",
        "--frontier_prompts=0",
        "--noexport",
        "--noprogress",
        "--seed=5",
    ]
    for subcommand, extra in (("ppo", []), ("grpo", ["--samples_per_prompt=4"])):
        for workers in (1, 2):
            _run(subcommand, [f"--output_dir={tmp_path / subcommand / str(workers)}", *common, *extra], workers)
        one, two = (training.read_scalars(str(tmp_path / subcommand / str(workers) / "tb")) for workers in (1, 2))
        # Each worker sampled 4 of the 8 rows, drawing the tokens one process draws for them (the scores, a
        # function of the sampled text alone, are equal), then the update ran on the gathered batch.
        assert [value for _, value in two["rl/score"]] == [value for _, value in one["rl/score"]], subcommand
        for name in ("rl/loss", "rl/kl", "rl/policy_loss"):
            assert [step for step, _ in two[name]] == [1, 2, 3, 4]
            for (_, alone), (_, together) in zip(one[name], two[name]):
                assert math.isclose(alone, together, rel_tol=1e-3, abs_tol=1e-6), (subcommand, name, alone, together)
        evaluations = [_metrics(tmp_path / subcommand / str(workers)) for workers in (1, 2)]
        _assert_same_numbers(*evaluations, rtol=1e-3)


def test_a_worker_that_never_joins_is_an_error_naming_it_within_the_timeout(tmp_path):
    from rlhf_tf.bin import launch

    ports = launch.free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    environment = {
        **_environment(),
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}),
        "RLHF_TF_JOIN_TIMEOUT": "3",
    }
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "rlhf_tf.bin.cli", "sft", f"--output_dir={tmp_path / 'run'}", *SFT],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "gave up after 3 s waiting for the cluster" in done.stderr
    assert f"worker 1 (127.0.0.1:{ports[1]}) did not start or cannot be reached" in done.stderr
    assert time.time() - started < 60
