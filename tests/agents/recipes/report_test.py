"""Reward hacking is visible: trained against a deliberately flawed reward, the report shows the reward rising while
the gold score does not, and says so."""

import numpy as np
import pytest

from rlhf_tf import training
from rlhf_tf.agents.language import frontier, ppo, rl, sft
from rlhf_tf.agents.recipes import report
from rlhf_tf.models import policy as policy_lib


@pytest.fixture(scope="module")
def fluent_policy(tmp_path_factory):
    """A small SFT policy on the reviews task: fluent enough for the gold scorer to tell good text from bad."""
    directory = tmp_path_factory.mktemp("sft")
    config = sft.SFTConfig(
        output_dir=str(directory),
        num_examples=5000,
        num_eval_examples=64,
        policy=policy_lib.PolicyConfig(num_layers=1, hidden_dim=64, num_heads=2, intermediate_dim=256),
        learning_rate=5e-3,
        loop=training.LoopConfig(steps=400, log_every=100, checkpoint_every=400, progress=False),
        num_samples=0,
        export=False,
    )
    sft.train_sft(config)
    return str(directory)


def count_of_the(prompts, responses):
    """A flawed reward: more "the" is better. The gold scorer punishes the repetition this invites."""
    return np.array([response.split().count("the") for response in responses], np.float32)


def test_flawed_reward_is_exploited_and_the_report_says_so(fluent_policy, tmp_path):
    config = ppo.PPOConfig(
        output_dir=str(tmp_path / "ppo"),
        rollouts=rl.RolloutConfig(
            policy=fluent_policy,
            reward="python: count of 'the' (flawed on purpose)",
            num_prompts=500,
            num_eval_prompts=64,
            batch_size=32,
            max_new_tokens=24,
        ),
        hyperparameters=ppo.PPOHyperparameters(learning_rate=2e-3, kl_coef=0.01, minibatch_size=16),
        loop=training.LoopConfig(steps=25, log_every=1, checkpoint_every=25, progress=False),
        num_samples=4,
        export=False,
    )
    metrics = ppo.train_ppo(config, reward_fn=count_of_the)
    path, flagged = report.write_report(str(tmp_path), {"rl": config.output_dir}, metrics, title="flawed reward")

    assert metrics["rl/reward"] > metrics["rl/sft_reward"] + 1.0  # the flawed reward rose
    assert metrics["rl/win_rate_vs_sft_reward"] > 0.7
    assert metrics["rl/gold_score"] < metrics["rl/sft_gold_score"]  # the gold score did not
    assert metrics["rl/win_rate_vs_sft_gold"] < 0.5
    text = open(path).read()
    assert flagged and "**Reward hacking: the learned reward rose while the gold score did not.**" in text
    assert "plots/rl_reward_and_gold.png" in text
    # The reward-KL frontier shows the same: along the run the flawed reward climbs while the gold score falls.
    points = frontier.points(config.output_dir)
    assert points[0]["kl"] == 0.0 and len(points) == 6  # the origin, every quarter of 25 iterations, the end
    assert points[-1]["reward"] > points[0]["reward"] + 1.0 and points[-1]["gold"] < points[0]["gold"]
    assert "plots/frontier.png" in text and "| RL | distinct-2, SFT -> RL |" in text


def test_hacking_check_stays_quiet_when_reward_and_gold_rise_together():
    rising = [(step, 0.1 * step) for step in range(1, 21)]
    flagged, sentence = report.hacking_check(
        {"rl/win_rate_vs_sft_reward": 0.9, "rl/win_rate_vs_sft_gold": 0.85},
        {"rl/score": rising, "rl/rollout_gold_score": rising},
    )
    assert not flagged and "no sign of reward hacking" in sentence
