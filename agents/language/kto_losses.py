"""The KTO loss (Ethayarajh et al. 2024) for unpaired thumbs-up / thumbs-down feedback, as a pure function.

With r(x, y) = log pi(y|x) - log pi_ref(y|x) summed over the response tokens and z a reference point:

    desirable:    L = lambda_D (1 - sigma(beta (r(x, y) - z)))
    undesirable:  L = lambda_U (1 - sigma(beta (z - r(x, y))))

The paper's z is a biased estimate of KL(pi || pi_ref) from mismatched pairs, clamped at 0 and not differentiated.
Here z = max(0, mean over the batch of r(x, y)) (detached): the same role, computed on the batch itself.
"""

import tensorflow as tf


def kto_loss(logprobs, reference_logprobs, desirable, beta, desirable_weight=1.0, undesirable_weight=1.0):
    """Per-example loss [batch], the implicit rewards r [batch] and the reference point z (see the docstring)."""
    rewards = logprobs - reference_logprobs
    z = tf.stop_gradient(tf.maximum(0.0, tf.reduce_mean(rewards)))
    desirable = tf.cast(desirable, tf.float32)
    up = desirable_weight * (1.0 - tf.sigmoid(beta * (rewards - z)))
    down = undesirable_weight * (1.0 - tf.sigmoid(beta * (z - rewards)))
    return desirable * up + (1.0 - desirable) * down, rewards, z
