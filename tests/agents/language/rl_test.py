"""PPO as a command: run directory, exact resume, evaluation and export; evaluate-policy on its outputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rlhf_tf import tasks, testing, training
from rlhf_tf.agents.language import frontier, ppo, rl
from rlhf_tf.models import policy as policy_lib


@pytest.fixture(scope="module")
def saved_policy(tmp_path_factory):
    tokenizer = tasks.get_task("reviews").tokenizer()
    path = tmp_path_factory.mktemp("policy") / "start"
    causal_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=1, hidden_dim=32, max_sequence_length=64)
    policy_lib.save_policy(path, causal_lm, tokenizer)
    return str(path)


def _config(output_dir, policy, steps, reward="gold", frontier_prompts=256):
    return ppo.PPOConfig(
        output_dir=str(output_dir),
        rollouts=rl.RolloutConfig(
            policy=policy,
            reward=reward,
            task="reviews",
            num_prompts=200,
            num_eval_prompts=32,
            batch_size=16,
            max_prompt_tokens=16,
            max_new_tokens=8,
        ),
        hyperparameters=ppo.PPOHyperparameters(learning_rate=1e-3, minibatch_size=8, ppo_epochs=2),
        loop=training.LoopConfig(steps=steps, log_every=1, checkpoint_every=2, progress=False, seed=3),
        num_samples=5,
        frontier_prompts=frontier_prompts,
    )


def test_ppo_run_directory_resume_and_evaluation(saved_policy, tmp_path):
    whole = ppo.train_ppo(_config(tmp_path / "whole", saved_policy, 4))
    ppo.train_ppo(_config(tmp_path / "split", saved_policy, 2))
    resumed = ppo.train_ppo(_config(tmp_path / "split", saved_policy, 4))

    # A run stopped after 2 iterations and resumed to 4 ends where the uninterrupted run ends.
    a, _ = policy_lib.load_policy(tmp_path / "whole")
    b, _ = policy_lib.load_policy(tmp_path / "split")
    for left, right in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(left, right, atol=1e-6)
    assert resumed["rl/steps"] == whole["rl/steps"] == 4
    assert resumed["rl/rollout_gold_score"] == pytest.approx(whole["rl/rollout_gold_score"], abs=1e-5)

    for name in ("rl/win_rate_vs_sft_gold", "rl/win_rate_vs_sft_reward"):
        assert 0.0 <= whole[name] <= 1.0
    assert np.isfinite(whole["rl/kl_to_reference"]) and whole["rl/prompts"] == 32
    assert whole["rl/sft_gold_score"] < 0  # an untrained policy writes gibberish, which the judge punishes
    saved = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert saved["rl/win_rate_vs_sft_gold"] == whole["rl/win_rate_vs_sft_gold"]
    samples = [json.loads(line) for line in (tmp_path / "whole" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 5 and {"prompt", "policy", "baseline", "policy_gold"} <= set(samples[0])
    assert (tmp_path / "whole" / "export" / "policy" / "saved_model.pb").exists()
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["rollouts"]["policy"] == saved_policy and config["hyperparameters"]["clip_range"] == 0.2
    scalars = training.read_scalars(str(tmp_path / "whole" / "tb"))
    assert [step for step, _ in scalars["rl/kl"]] == [1, 2, 3, 4]

    # The reward-KL frontier: an evaluation every quarter of the run (here every iteration) on the first held-out
    # prompts (all 32), sampled as the final evaluation samples, so its last point is the final evaluation.
    assert [step for step, _ in scalars["frontier/kl_to_reference"]] == [1, 2, 3, 4]
    for name in ("kl_to_reference", "gold_score", "win_rate_vs_sft_gold", "distinct_2"):
        assert whole[f"frontier/{name}"] == pytest.approx(whole[f"rl/{name}"], abs=1e-6), name
        assert resumed[f"frontier/{name}"] == pytest.approx(whole[f"frontier/{name}"], abs=1e-5), name
    points = frontier.points(tmp_path / "split")
    assert [point["step"] for point in points] == [0, 1, 2, 3, 4] and points[0]["kl"] == 0.0
    assert points[0]["gold"] == pytest.approx(whole["rl/sft_gold_score"], abs=1e-6)
    assert (tmp_path / "whole" / "plots" / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert 0.0 <= whole["rl/length_controlled_win_rate_vs_sft_gold"] <= 1.0
    assert 0.0 < whole["rl/sft_distinct_2"] <= 1.0

    # Evaluating along the way leaves training as it was: the same run without a frontier ends with the same weights.
    ppo.train_ppo(_config(tmp_path / "plain", saved_policy, 4, frontier_prompts=0))
    c, _ = policy_lib.load_policy(tmp_path / "plain")
    for left, right in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_allclose(left, right, atol=1e-6)
    assert "frontier/kl_to_reference" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())


def test_evaluate_policy_command_on_a_saved_model_against_a_run(saved_policy, tmp_path):
    ppo.train_ppo(_config(tmp_path / "run", saved_policy, 1))
    output = tmp_path / "eval.json"
    (tmp_path / "house_judges.py").write_text(
        "def chars(prompts, responses):\n    return [len(r) for r in responses]\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlhf_tf.bin.evaluate_policy",
            f"--policy={tmp_path / 'run' / 'export' / 'policy'}",
            f"--baseline={saved_policy}",
            "--reward=gold",
            "--num_prompts=8",
            "--max_prompt_tokens=16",
            "--judge=house_judges:chars",
            "--judge=twice=house_judges:chars",
            f"--output={output}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "win_rate_vs_baseline_gold" in result.stdout
    report = json.loads(output.read_text())
    metrics, samples = report["metrics"], report["samples"]
    assert metrics["prompts"] == 8 and len(samples) == 8
    assert 0 <= metrics["win_rate_vs_baseline_gold"] <= 1
    # A judge of one's own, reported beside the gold scorer: here the length in characters.
    assert samples[0]["policy_judge_chars"] == len(samples[0]["policy"])
    assert metrics["judge_chars_score"] == pytest.approx(np.mean([len(row["policy"]) for row in samples]))
    assert metrics["win_rate_vs_baseline_judge_twice"] == metrics["win_rate_vs_baseline_judge_chars"]
    for name in ("length_controlled_win_rate_vs_baseline_gold", "distinct_2", "baseline_unique_responses"):
        assert 0 <= metrics[name] <= 1, name


def test_reward_must_be_a_run_directory_saved_model_or_gold(tmp_path):
    from rlhf_tf.errors import UserInputError

    with pytest.raises(UserInputError, match="reward run directory"):
        rl.load_reward(str(tmp_path))


def test_ppo_under_mirrored_strategy_over_two_devices(saved_policy, tmp_path):
    import dataclasses

    config = dataclasses.replace(_config(tmp_path / "mirrored", saved_policy, 2), strategy="mirrored", export=False)
    metrics = ppo.train_ppo(config)
    assert training.create_strategy("mirrored").num_replicas_in_sync == 2
    assert metrics["rl/steps"] == 2 and np.isfinite(metrics["rl/loss"]) and metrics["rl/grad_norm"] > 0
    assert 0 <= metrics["rl/win_rate_vs_sft_gold"] <= 1


def test_grpo_command_writes_the_same_run_directory(saved_policy, tmp_path):
    from rlhf_tf.agents.language import policy_gradient

    base = _config(tmp_path / "grpo", saved_policy, 2)
    config = policy_gradient.PolicyGradientConfig(
        output_dir=base.output_dir,
        rollouts=base.rollouts,
        hyperparameters=policy_gradient.PolicyGradientHyperparameters(samples_per_prompt=4, minibatch_size=8),
        loop=base.loop,
        num_samples=3,
    )
    metrics = policy_gradient.train_policy_gradient(config)
    assert metrics["rl/steps"] == 2 and np.isfinite(metrics["rl/kl_loss"])
    assert 0 <= metrics["rl/win_rate_vs_sft_gold"] <= 1
    assert (tmp_path / "grpo" / "export" / "policy" / "saved_model.pb").exists()
    saved = json.loads((tmp_path / "grpo" / "config.json").read_text())
    assert saved["hyperparameters"]["algorithm"] == "grpo"


def test_rollout_prompts_reach_python_scorers_as_written():
    """A WordPiece round trip lowercases and respaces a prompt, and the gold scorer no longer finds the sentence to
    translate in it; `prompts_as_written` gives the scorer the prompt back."""
    task = tasks.get_task("translate")
    tokenizer = task.tokenizer()
    demonstrations = task.demonstrations(40)
    prompts, responses = [d.prompt for d in demonstrations], [d.completion for d in demonstrations]
    round_trip = [text.decode() for text in tokenizer.detokenize(tokenizer.tokenize(prompts)).numpy()]
    as_written = rl.prompts_as_written(tokenizer, prompts)
    assert as_written(round_trip) == prompts and as_written(["a prompt cut short"]) == ["a prompt cut short"]
    gold = task.gold_score(prompts, responses).mean()
    assert task.gold_score(round_trip, responses).mean() < gold - 1.0  # what the scorer saw before
    assert task.gold_score(as_written(round_trip), responses).mean() == gold
