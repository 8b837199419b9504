import math

import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf.agents.language import grpo_losses


def test_group_advantages_by_hand():
    scores = tf.constant([1.0, 2.0, 3.0, 6.0])
    rloo = grpo_losses.group_advantages(scores, 2, "rloo").numpy()
    np.testing.assert_allclose(rloo, [-1.0, 1.0, -3.0, 3.0])
    grpo = grpo_losses.group_advantages(scores, 2, "grpo").numpy()
    np.testing.assert_allclose(grpo, [-0.5 / 0.5001, 0.5 / 0.5001, -1.5 / 1.5001, 1.5 / 1.5001], rtol=1e-6)
    dr_grpo = grpo_losses.group_advantages(scores, 2, "grpo", scale_rewards=False).numpy()
    np.testing.assert_allclose(dr_grpo, [-0.5, 0.5, -1.5, 1.5])
    reinforce = grpo_losses.group_advantages(scores, 1, "reinforce", baseline=2.0).numpy()
    np.testing.assert_allclose(reinforce, [-1.0, 0.0, 1.0, 4.0])
    # RLOO with k samples is k/(k-1) times the group-centred score.
    groups = tf.constant(np.random.default_rng(0).normal(size=12), tf.float32)
    centred = tf.reshape(groups, [-1, 4]) - tf.reduce_mean(tf.reshape(groups, [-1, 4]), axis=1, keepdims=True)
    np.testing.assert_allclose(
        grpo_losses.group_advantages(groups, 4, "rloo").numpy(), 4 / 3 * tf.reshape(centred, [-1]), rtol=1e-5
    )


def test_loss_normalizations_by_hand():
    per_token = tf.constant([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    mask = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert float(grpo_losses.normalize(per_token, mask, "token", 3)) == pytest.approx(4 / 3)
    assert float(grpo_losses.normalize(per_token, mask, "sequence", 3)) == pytest.approx((1.0 + 2.0) / 2)
    assert float(grpo_losses.normalize(per_token, mask, "constant", 3)) == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_surrogate_loss_by_hand():
    old = tf.math.log([[0.5, 0.5, 0.5]])
    new = tf.math.log([[0.8, 0.2, 0.9]])  # ratios 1.6, 0.4 and (padding) 1.8
    mask = tf.constant([[1.0, 1.0, 0.0]])
    loss, clipped = grpo_losses.surrogate_loss(new, old, tf.constant([1.0]), mask, 0.2, "token", 3)
    # A = 1 on both real tokens: -min(1.6, 1.2) = -1.2 and -min(0.4, 0.8) = -0.4; the token mean is -0.8.
    assert float(loss) == pytest.approx(-0.8, abs=1e-6)
    np.testing.assert_array_equal(clipped.numpy()[0, :2], [1.0, 0.0])
    sequence, _ = grpo_losses.surrogate_loss(new, old, tf.constant([1.0]), mask, 0.2, "constant", 4)
    assert float(sequence) == pytest.approx(-1.6 / 4, abs=1e-6)
    assert math.isfinite(float(loss))
