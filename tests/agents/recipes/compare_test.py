"""`rlhf-tf compare` in miniature: every method from one SFT policy, label set and reward model, in one table."""

import json
import os
import subprocess
import sys

TINY = [
    "--sft_steps=60",
    "--num_pairs=96",
    "--num_eval_prompts=16",
    "--max_new_tokens=8",
    "--rollout_batch_size=16",
    "--num_layers=1",
    "--hidden_dim=32",
    "--progress=false",
    "--iterations=2",
    "--best_of_n=2",
]


def test_compare_runs_every_method_and_writes_one_table(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_tf.bin.compare", f"--output_dir={tmp_path}", *TINY],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "comparison.md").read_text()
    for method in ("sft", "best-of-n", "ppo", "grpo", "rloo", "online-dpo", "dpo"):
        assert f"| {method} | 1 |" in table, method
    assert (tmp_path / "comparison.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "comparison.json").read_text())["summary"]
    for method in ("ppo", "grpo", "rloo", "online-dpo", "dpo", "best-of-n"):
        assert 0 <= summary[method]["win_rate_vs_sft_gold"][0] <= 1
        assert summary[method]["kl_to_sft"][0] > -0.05  # a sampled estimate: near 0 for tiny updates
    for method in ("ppo", "grpo", "dpo"):
        assert (tmp_path / "seed0" / method / "export" / "policy" / "saved_model.pb").exists()
    # Every method's reward-KL frontier on one figure: the online methods evaluated along their runs (here each of
    # their 2 iterations), DPO at its evaluations, best-of-n at its one point.
    assert "![frontier_seed0.png](frontier_seed0.png)" in table
    assert (tmp_path / "frontier_seed0.png").stat().st_size > 1000
    from rlhf_tf.agents.language import frontier

    for method in ("ppo", "grpo", "rloo", "online-dpo"):
        assert [point["step"] for point in frontier.points(tmp_path / "seed0" / method)] == [0, 1, 2], method
    assert len(frontier.points(tmp_path / "seed0" / "dpo")) >= 3
