import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import testing
from rlhf_tf.agents.language import policy_gradient, ppo_losses
from rlhf_tf.data.tokenizers import resolve_tokenizer

TARGET = ord("a")


def test_settings_are_checked():
    from rlhf_tf.errors import UserInputError

    with pytest.raises(UserInputError, match="samples_per_prompt"):
        policy_gradient.PolicyGradientHyperparameters(algorithm="rloo", samples_per_prompt=1)
    with pytest.raises(UserInputError, match="loss_normalization"):
        policy_gradient.PolicyGradientHyperparameters(loss_normalization="mean")


BATCH, K, RESPONSE = 32, 4, 8


def _toy_run(toy_collector, iterations, **settings):
    """A tiny byte policy learning to write 'a' (score: how many it wrote) for `iterations` updates; the history."""
    tokenizer = resolve_tokenizer("byte")
    policy_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0, hidden_dim=32)
    reference_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0, hidden_dim=32)

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        hits = tf.logical_and(tf.equal(response_ids, TARGET), response_mask)
        return tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)

    collector = toy_collector(policy_lm, reward_fn, BATCH, samples_per_prompt=K, prompt=8, response=RESPONSE)
    hyperparameters = policy_gradient.PolicyGradientHyperparameters(
        samples_per_prompt=K, learning_rate=3e-3, minibatch_size=16, missing_end_penalty=0.0, **settings
    )
    learner = policy_gradient.PolicyGradientLearner(
        policy_lm, reference_lm, tokenizer.end_id, hyperparameters, max_new_tokens=RESPONSE
    )
    return learner, [learner.update(collector.collect(), iteration) for iteration in range(iterations)]


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_critic_free_methods_raise_a_toy_reward(algorithm, toy_collector):
    _, history = _toy_run(toy_collector, 20, algorithm=algorithm, epochs=2, kl_coef=0.01)
    assert all(np.isfinite(value) for metrics in history for value in metrics.values())
    early = np.mean([m["score"] for m in history[:2]])
    late = np.mean([m["score"] for m in history[-3:]])
    # An untrained byte model samples 'a' about once in 257 tokens: a score near 0.03 per 8-token response.
    assert late > max(0.8, 10 * early), (early, late)
    assert history[-1]["clip_fraction"] > 0  # the second epoch moves the ratio away from 1


def test_a_kl_target_raises_the_coefficient_while_the_policy_drifts_past_it(toy_collector):
    learner, history = _toy_run(toy_collector, 12, kl_coef=0.01, target_kl=0.05, kl_horizon=160.0)
    assert sum(m["kl"] > 0.05 for m in history) > len(history) / 2, [m["kl"] for m in history]
    # The controller ran after every batch on that batch's KL (replayed here), and it raised the coefficient.
    expected = 0.01
    for metrics in history:
        expected = ppo_losses.adaptive_kl_coef(expected, metrics["kl"], 0.05, BATCH, 160.0)
        assert metrics["kl_coef"] == pytest.approx(expected, rel=1e-4)
    assert history[-1]["kl_coef"] > 0.0105
    assert "kl_coef" in learner.checkpoint_objects()
    with pytest.raises(Exception, match="positive `kl_coef`"):
        policy_gradient.PolicyGradientHyperparameters(kl_coef=0.0, target_kl=1.0)


def test_grpo_holds_a_kl_target_by_default_and_a_zero_coefficient_turns_it_off():
    assert policy_gradient.PolicyGradientHyperparameters().target_kl == 6.0
    assert policy_gradient.PolicyGradientHyperparameters(kl_coef=0.0).target_kl == 0.0
    assert policy_gradient.PolicyGradientHyperparameters(algorithm="rloo").target_kl == 0.0
    assert policy_gradient.PolicyGradientHyperparameters(target_kl=0.0).target_kl == 0.0
