"""The main job in miniature: every stage, the report, and a kill -9 during PPO followed by a resuming rerun."""

import json
import os
import re
import signal
import subprocess
import sys
import time

from rlhf_tf import training

TINY = [
    "--sft_steps=80",
    "--num_pairs=96",
    "--ppo_iterations=30",
    "--num_eval_prompts=32",
    "--max_new_tokens=12",
    "--rollout_batch_size=16",
    "--num_layers=1",
    "--hidden_dim=32",
    "--progress=false",
]


def _command(output_dir):
    return [sys.executable, "-m", "rlhf_tf.bin.quickstart", f"--output_dir={output_dir}", *TINY]


def _environment():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_quickstart_killed_during_ppo_resumes_and_writes_the_report(tmp_path):
    output_dir = tmp_path / "qs"
    checkpoint_index = output_dir / "ppo" / "ckpt" / "checkpoint"
    process = subprocess.Popen(
        _command(output_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_environment()
    )
    deadline = time.time() + 400
    while not checkpoint_index.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert checkpoint_index.exists(), "PPO never wrote a checkpoint"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    state = json.loads((output_dir / "stages.json").read_text())
    assert state["finished"] == ["sft", "labels", "reward"]  # killed during PPO

    # The rerun as a user types it (`rlhf-tf quickstart`, TensorFlow's logging at its default): a quiet console.
    command = [sys.executable, "-m", "rlhf_tf.bin.cli", "quickstart", f"--output_dir={output_dir}", *TINY]
    environment = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    rerun = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "stage 4/4: ppo" in rerun.stdout and "stage 1/4" not in rerun.stdout  # finished stages are skipped
    assert "Resumed from" in rerun.stderr  # PPO continued from its checkpoint (our log line, shown bare)
    assert not re.search(r"^[IWEF]\d{4} \d\d:\d\d:\S+\s+\d+ \S+:\d+\]", rerun.stderr, re.MULTILINE), rerun.stderr[
        -3000:
    ]
    logged = (output_dir / "console.log").read_text(errors="replace")
    assert re.search(r"loop\.py:\d+\] Resumed from", logged)  # the log keeps every line as it was written
    state = json.loads((output_dir / "stages.json").read_text())
    assert state["finished"] == ["sft", "labels", "reward", "ppo"]

    metrics = json.loads((output_dir / "metrics.json").read_text())
    for name in (
        "rl/win_rate_vs_sft_gold",
        "rl/kl_to_reference",
        "rl/gold_score",
        "sft/gold_score",
        "reward/eval_accuracy",
    ):
        assert name in metrics, name
    assert metrics["rl/steps"] == 30 and metrics["rl/prompts"] == 32
    # One entry per iteration in the history, although two processes wrote it.
    assert [step for step, _ in training.read_scalars(str(output_dir / "ppo" / "tb"))["rl/kl"]] == list(range(1, 31))
    report = (output_dir / "report.md").read_text()
    assert report.index("beat the SFT policy") < report.index("## The story in numbers") < report.index("## Plots")
    for plot in ("rl_reward_and_gold.png", "rl_kl_and_length.png", "reward_accuracy.png"):
        assert (output_dir / "plots" / plot).stat().st_size > 1000
        assert f"plots/{plot}" in report
    assert "## Before and after" in report
    assert (output_dir / "reward" / "export" / "reward" / "saved_model.pb").exists()
    assert (output_dir / "ppo" / "export" / "policy" / "saved_model.pb").exists()
