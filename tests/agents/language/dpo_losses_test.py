import math

import pytest
import tensorflow as tf

from rlhf_tf.agents.language import dpo_losses


def test_losses_and_implicit_rewards_by_hand():
    policy = (tf.constant([-1.0]), tf.constant([-3.0]))
    reference = (tf.constant([-2.0]), tf.constant([-2.0]))
    losses, chosen, rejected = dpo_losses.dpo_loss(*policy, *reference, beta=0.5)
    assert float(chosen[0]) == pytest.approx(0.5) and float(rejected[0]) == pytest.approx(-0.5)
    assert float(losses[0]) == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))  # h = 2, beta h = 1
    assert float(dpo_losses.dpo_loss(*policy, *reference, beta=0.5, loss="ipo")[0][0]) == pytest.approx((2 - 1) ** 2)
    assert float(dpo_losses.dpo_loss(*policy, *reference, beta=0.5, loss="hinge")[0][0]) == pytest.approx(0.0)
    # At the start (policy = reference) every implicit reward is 0 and the DPO loss is log 2.
    start = dpo_losses.dpo_loss(*reference, *reference, beta=0.1)
    assert float(start[0][0]) == pytest.approx(math.log(2)) and float(start[1][0]) == 0.0
    # The gradient weighs a pair by sigma(-beta h): most where the implicit reward ranks it wrongly.
    for h in (-2.0, 0.0, 2.0):
        value = tf.Variable(h)
        with tf.GradientTape() as tape:
            loss = dpo_losses.dpo_loss(value, tf.constant(0.0), tf.constant(0.0), tf.constant(0.0), beta=0.5)[0]
        grad = float(tape.gradient(loss, value))
        assert grad == pytest.approx(-0.5 / (1 + math.exp(0.5 * h)), rel=1e-5)
