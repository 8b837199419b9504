import math

import numpy as np
import pytest

from rlhf_tf.reward import losses


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_bradley_terry_hand_computed():
    values = losses.bradley_terry_loss([2.0, 0.0], [1.0, 0.0]).numpy()
    np.testing.assert_allclose(values, [-math.log(_sigmoid(1.0)), math.log(2.0)], rtol=1e-6)
    with_margin = losses.bradley_terry_loss([2.0], [1.0], margin=0.5).numpy()
    np.testing.assert_allclose(with_margin, [-math.log(_sigmoid(0.5))], rtol=1e-6)
    # Stable far out: no inf for a badly wrong pair.
    assert np.isfinite(losses.bradley_terry_loss([-100.0], [100.0]).numpy()).all()
    np.testing.assert_allclose(losses.bradley_terry_loss([-100.0], [100.0]).numpy(), [200.0], rtol=1e-6)


def test_label_noise_and_ties():
    noise = 0.1
    p = (1 - noise) * _sigmoid(1.0) + noise / 2
    np.testing.assert_allclose(losses.bradley_terry_loss([1.0], [0.0], label_noise=noise).numpy(), [-math.log(p)], 1e-6)
    # Noise caps the loss of a confidently wrong pair at -log(noise / 2).
    assert losses.bradley_terry_loss([-50.0], [50.0], label_noise=noise).numpy()[0] < -math.log(noise / 2) + 1e-4
    # A tie is learned as probability 0.5: the loss is smallest at equal rewards, and the margin does not apply.
    tie = losses.bradley_terry_loss([0.0, 1.0], [0.0, 0.0], margin=0.5, tie=[1.0, 1.0]).numpy()
    np.testing.assert_allclose(tie[0], math.log(2.0), rtol=1e-6)
    assert tie[1] > tie[0]


def test_plackett_luce_hand_computed_and_reduces_to_bradley_terry():
    scores = np.array([[2.0, 1.0, 0.0]])
    expected = -((2.0 - math.log(math.exp(2) + math.exp(1) + 1)) + (1.0 - math.log(math.exp(1) + 1)) + 0.0)
    np.testing.assert_allclose(losses.plackett_luce_loss(scores).numpy(), [expected], rtol=1e-6)
    pair = losses.plackett_luce_loss([[1.5, 0.5]]).numpy()
    np.testing.assert_allclose(pair, losses.bradley_terry_loss([1.5], [0.5]).numpy(), rtol=1e-6)
    # Absent responses take no part: a 3-slot ranking with 2 present equals the pair.
    padded = losses.plackett_luce_loss([[1.5, 0.5, 9.0]], present=[[True, True, False]]).numpy()
    np.testing.assert_allclose(padded, pair, rtol=1e-6)


def test_regression_and_centering():
    np.testing.assert_allclose(losses.regression_loss([3.0], [1.0]).numpy(), [4.0])
    np.testing.assert_allclose(losses.regression_loss([3.0, 1.5], [1.0, 1.0], "huber").numpy(), [1.5, 0.125])
    assert float(losses.centering_penalty([1.0, 3.0])) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="`kind` must be"):
        losses.regression_loss([1.0], [1.0], "l1")


def test_calibrated_loss_ignores_confidence_and_rewards_ranking():
    from rlhf_tf.reward import metrics

    rng = np.random.default_rng(0)
    signal = rng.normal(1.0, 1.0, size=2000)  # score differences of labelled pairs: 84% ranked right
    raw = lambda d: float(np.mean(np.logaddexp(0.0, -d)))  # noqa: E731
    # Ten times the confidence: the raw loss rises a lot, the calibrated loss does not move.
    assert raw(10 * signal) > raw(signal) + 0.4
    assert metrics.calibrated_loss(10 * signal) == pytest.approx(metrics.calibrated_loss(signal), abs=0.01)
    # Better ranking (fewer pairs the wrong way round) always lowers it.
    assert metrics.calibrated_loss(signal + 1.0) < metrics.calibrated_loss(signal) - 0.05
    assert metrics.pairwise_metrics(signal, np.zeros_like(signal))["calibrated_loss"] == metrics.calibrated_loss(signal)
