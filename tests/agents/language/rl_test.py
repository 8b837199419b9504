"""PPO as a command: run directory, exact resume, evaluation and export; evaluate-policy on its outputs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rlhf_tf import tasks, testing, training
from rlhf_tf.agents.language import ppo, rl
from rlhf_tf.models import policy as policy_lib


@pytest.fixture(scope="module")
def saved_policy(tmp_path_factory):
    tokenizer = tasks.get_task("reviews").tokenizer()
    path = tmp_path_factory.mktemp("policy") / "start"
    causal_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=1, hidden_dim=32, max_sequence_length=64)
    policy_lib.save_policy(path, causal_lm, tokenizer)
    return str(path)


def _config(output_dir, policy, steps, reward="gold"):
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


def test_evaluate_policy_command_on_a_saved_model_against_a_run(saved_policy, tmp_path):
    ppo.train_ppo(_config(tmp_path / "run", saved_policy, 1))
    output = tmp_path / "eval.json"
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
            f"--output={output}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "win_rate_vs_baseline_gold" in result.stdout
    report = json.loads(output.read_text())
    assert report["metrics"]["prompts"] == 8 and len(report["samples"]) == 8
    assert 0 <= report["metrics"]["win_rate_vs_baseline_gold"] <= 1


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
