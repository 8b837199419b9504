import math

import numpy as np
import pytest

from rlhf_tf import ops


def test_masked_statistics_ignore_masked_entries():
    values = np.array([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    assert float(ops.masked_mean(values, mask)) == pytest.approx(2.0)
    assert float(ops.masked_variance(values, mask)) == pytest.approx(1.0)  # [1, 2, 3], Bessel-corrected
    whitened = ops.masked_whiten(values, mask).numpy()
    np.testing.assert_allclose(whitened[mask == 1], [-1.0, 0.0, 1.0], atol=1e-6)
    assert (whitened[mask == 0] == 0).all()
    np.testing.assert_allclose(ops.masked_mean(values, mask, axis=1).numpy(), [1.5, 3.0])


def test_gae_hand_computed():
    # One row, rewards only at the end (as in RLHF), values given; gamma 1, lambda 0.5.
    rewards = np.array([[0.0, 0.0, 1.0, 0.0]])
    values = np.array([[0.5, 0.25, 0.75, 9.0]])
    mask = np.array([[1, 1, 1, 0]])
    advantages, returns = ops.generalized_advantages(rewards, values, mask, gamma=1.0, lam=0.5)
    delta = [0.0 + 0.25 - 0.5, 0.0 + 0.75 - 0.25, 1.0 + 0.0 - 0.75]
    a2 = delta[2]
    a1 = delta[1] + 0.5 * a2
    a0 = delta[0] + 0.5 * a1
    np.testing.assert_allclose(advantages.numpy()[0], [a0, a1, a2, 0.0], atol=1e-6)
    np.testing.assert_allclose(returns.numpy()[0], [a0 + 0.5, a1 + 0.25, a2 + 0.75, 0.0], atol=1e-6)
    # lambda 1, gamma 1: advantages are the reward-to-go minus the value.
    advantages, _ = ops.generalized_advantages(rewards, values, mask, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(advantages.numpy()[0, :3], [1 - 0.5, 1 - 0.25, 1 - 0.75], atol=1e-6)


def test_kl_estimators():
    logp, logq = np.array([math.log(0.5)]), np.array([math.log(0.25)])
    ratio = math.log(2.0)
    assert float(ops.kl_estimate(logp, logq, "k1")[0]) == pytest.approx(ratio)
    assert float(ops.kl_estimate(logp, logq, "k2")[0]) == pytest.approx(ratio**2 / 2)
    assert float(ops.kl_estimate(logp, logq, "k3")[0]) == pytest.approx(0.5 - 1 + ratio)
    assert float(ops.kl_estimate(logq, logp, "k3")[0]) >= 0
    with pytest.raises(ValueError, match="`kind` must be"):
        ops.kl_estimate(logp, logq, "k4")


def test_explained_variance():
    targets = np.array([[1.0, 2.0, 3.0, 0.0]])
    mask = np.array([[1, 1, 1, 0]])
    assert float(ops.explained_variance(targets, targets, mask)) == pytest.approx(1.0)
    assert float(ops.explained_variance(np.full_like(targets, 2.0), targets, mask)) == pytest.approx(0.0, abs=1e-6)
