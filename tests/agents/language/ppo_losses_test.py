import math

import numpy as np
import pytest

from rlhf_tf.agents.language import ppo_losses


def test_shape_rewards_put_the_score_on_the_last_token_and_penalise_kl_everywhere():
    logprobs = np.log([[0.5, 0.5, 0.5, 1.0]])
    reference = np.log([[0.25, 0.5, 1.0, 1.0]])
    mask = np.array([[1, 1, 1, 0]])
    rewards, kl = ppo_losses.shape_rewards([2.0], logprobs, reference, mask, kl_coef=0.1)
    expected_kl = [math.log(2), 0.0, math.log(0.5), 0.0]
    np.testing.assert_allclose(kl.numpy()[0], expected_kl, atol=1e-6)
    np.testing.assert_allclose(rewards.numpy()[0], [-0.1 * math.log(2), 0.0, 2.0 - 0.1 * math.log(0.5), 0.0], atol=1e-6)
    penalised, _ = ppo_losses.shape_rewards(
        [2.0], logprobs, reference, mask, 0.0, ended=[False], missing_end_penalty=1.5
    )
    np.testing.assert_allclose(penalised.numpy()[0], [0.0, 0.0, 0.5, 0.0], atol=1e-6)


def test_clipped_policy_loss_hand_computed():
    old = np.log([[0.5, 0.5]])
    new = np.log([[0.8, 0.2]])  # ratios 1.6 and 0.4
    advantages = np.array([[1.0, -1.0]])
    loss, clipped, approximate_kl = ppo_losses.policy_loss(new, old, advantages, [[1, 1]], clip_range=0.2)
    # Positive advantage: min(1.6, 1.2) * 1 -> loss -1.2 (clipped). Negative: max(-0.4*-1, -0.8*-1)... -> 0.8.
    np.testing.assert_allclose(loss.numpy()[0], [-1.2, 0.8], atol=1e-6)
    np.testing.assert_array_equal(clipped.numpy()[0], [1.0, 1.0])
    np.testing.assert_allclose(approximate_kl.numpy()[0], 0.5 * np.square(np.log([1.6, 0.4])), atol=1e-6)
    same, clipped_same, _ = ppo_losses.policy_loss(old, old, advantages, [[1, 0]])
    np.testing.assert_allclose(same.numpy()[0], [-1.0, 0.0])
    np.testing.assert_array_equal(clipped_same, 0)


def test_clipped_value_loss_hand_computed():
    loss = ppo_losses.value_loss([[1.0, 0.0]], [[0.0, 0.0]], [[1.0, 1.0]], [[1, 1]], clip_range=0.2).numpy()[0]
    # First: unclipped error 0, clipped value 0.2 -> error 0.8: max -> 0.5 * 0.64. Second: both 1 -> 0.5.
    np.testing.assert_allclose(loss, [0.32, 0.5], atol=1e-6)


def test_adaptive_kl_coefficient_by_hand():
    # KL twice the target: the error clips at +0.2, spread over 100 of 1000 responses: beta * (1 + 0.2 * 0.1).
    assert ppo_losses.adaptive_kl_coef(0.1, 12.0, 6.0, 100, 1000) == pytest.approx(0.1 * 1.02)
    # Half the target: error -0.5 clips at -0.2.
    assert ppo_losses.adaptive_kl_coef(0.1, 3.0, 6.0, 100, 1000) == pytest.approx(0.1 * 0.98)
    # On target: unchanged; a small miss moves it by the miss itself.
    assert ppo_losses.adaptive_kl_coef(0.1, 6.0, 6.0, 100, 1000) == pytest.approx(0.1)
    assert ppo_losses.adaptive_kl_coef(0.1, 6.6, 6.0, 1000, 1000) == pytest.approx(0.1 * 1.1)
    with pytest.raises(FloatingPointError):
        ppo_losses.adaptive_kl_coef(float("inf"), 6.0, 6.0, 100)
