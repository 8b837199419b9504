import math

import numpy as np
import tensorflow as tf

from rlhf_tf.agents.language import kto_losses


def test_kto_loss_by_hand():
    logprobs = tf.constant([-1.0, -3.0])
    reference = tf.constant([-2.0, -2.0])
    losses, rewards, z = kto_losses.kto_loss(logprobs, reference, tf.constant([1.0, 0.0]), beta=1.0)
    assert list(rewards.numpy()) == [1.0, -1.0] and float(z) == 0.0  # the batch mean (0) clamped at 0
    sigmoid = lambda x: 1 / (1 + math.exp(-x))
    np.testing.assert_allclose(losses.numpy(), [1 - sigmoid(1.0), 1 - sigmoid(1.0)], rtol=1e-6)
    # A desirable response the policy already prefers more than the reference costs less than one it does not.
    worse, _, _ = kto_losses.kto_loss(tf.constant([-3.0, -1.0]), reference, tf.constant([1.0, 0.0]), beta=1.0)
    assert float(worse[0]) > float(losses[0]) and float(worse[1]) > float(losses[1])
