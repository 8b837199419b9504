import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import testing
from rlhf_tf.agents.language import policy_gradient
from rlhf_tf.data.tokenizers import resolve_tokenizer

TARGET = ord("a")


def test_settings_are_checked():
    from rlhf_tf.errors import UserInputError

    with pytest.raises(UserInputError, match="samples_per_prompt"):
        policy_gradient.PolicyGradientHyperparameters(algorithm="rloo", samples_per_prompt=1)
    with pytest.raises(UserInputError, match="loss_normalization"):
        policy_gradient.PolicyGradientHyperparameters(loss_normalization="mean")


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_critic_free_methods_raise_a_toy_reward(algorithm, toy_collector):
    tokenizer = resolve_tokenizer("byte")
    batch, k, prompt, response = 32, 4, 8, 8
    policy_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0, hidden_dim=32)
    reference_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0, hidden_dim=32)

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        hits = tf.logical_and(tf.equal(response_ids, TARGET), response_mask)
        return tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)

    collector = toy_collector(policy_lm, reward_fn, batch, samples_per_prompt=k, prompt=prompt, response=response)
    hyperparameters = policy_gradient.PolicyGradientHyperparameters(
        algorithm=algorithm,
        samples_per_prompt=k,
        learning_rate=3e-3,
        epochs=2,
        minibatch_size=16,
        kl_coef=0.01,
        missing_end_penalty=0.0,
    )
    learner = policy_gradient.PolicyGradientLearner(
        policy_lm, reference_lm, tokenizer.end_id, hyperparameters, max_new_tokens=response
    )
    history = [learner.update(collector.collect(), iteration) for iteration in range(20)]
    assert all(np.isfinite(value) for metrics in history for value in metrics.values())
    early = np.mean([m["score"] for m in history[:2]])
    late = np.mean([m["score"] for m in history[-3:]])
    # An untrained byte model samples 'a' about once in 257 tokens: a score near 0.03 per 8-token response.
    assert late > max(0.8, 10 * early), (early, late)
    assert history[-1]["clip_fraction"] > 0  # the second epoch moves the ratio away from 1
