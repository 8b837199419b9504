"""Pure TensorFlow math shared by the learners: masked statistics, whitening, GAE and KL estimators.

Shapes are [batch, time] with a boolean or 0/1 `mask` of real tokens unless stated. Nothing here knows about
models or strategies; under several replicas, wrap the reductions with `rlhf_tf.training.global_mean`.
"""

import tensorflow as tf


def masked_sum(values, mask, axis=None):
    return tf.reduce_sum(tf.cast(values, tf.float32) * tf.cast(mask, tf.float32), axis=axis)


def masked_mean(values, mask, axis=None):
    """sum(values * mask) / max(sum(mask), 1)."""
    mask = tf.cast(mask, tf.float32)
    return masked_sum(values, mask, axis) / tf.maximum(tf.reduce_sum(mask, axis=axis), 1.0)


def masked_variance(values, mask, unbiased=True):
    """Variance of the masked-in values (Bessel-corrected when `unbiased`)."""
    mask = tf.cast(mask, tf.float32)
    mean = masked_mean(values, mask)
    count = tf.reduce_sum(mask)
    squares = masked_sum(tf.square(tf.cast(values, tf.float32) - mean), mask)
    if unbiased:
        return squares / tf.maximum(count - 1.0, 1.0)
    return squares / tf.maximum(count, 1.0)


def masked_whiten(values, mask, shift_mean=True, epsilon=1e-8):
    """(values - mean) / std over the masked-in values (mean kept when not `shift_mean`); masked-out entries -> 0."""
    values = tf.cast(values, tf.float32)
    mean = masked_mean(values, mask)
    whitened = (values - mean) * tf.math.rsqrt(masked_variance(values, mask) + epsilon)
    if not shift_mean:
        whitened += mean
    return tf.where(tf.cast(mask, tf.bool), whitened, tf.zeros_like(whitened))


def generalized_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
    """GAE over each row's real tokens (Schulman et al. 2016), no bootstrap past the last real token.

    delta_t = r_t + gamma * V_{t+1} - V_t (V past the end is 0);  A_t = delta_t + gamma * lam * A_{t+1}.
    Returns (advantages, returns = advantages + values), both zero where the mask is off. Shapes [batch, time];
    a row's real tokens must be contiguous from its start (responses are).
    """
    mask = tf.cast(mask, tf.float32)
    rewards = tf.cast(rewards, tf.float32) * mask
    values = tf.cast(values, tf.float32) * mask
    next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)
    deltas = rewards + gamma * next_values - values

    def step(carry, inputs):
        delta, live = inputs
        advantage = (delta + gamma * lam * carry) * live
        return advantage

    reversed_inputs = (tf.reverse(tf.transpose(deltas), [0]), tf.reverse(tf.transpose(mask), [0]))
    advantages = tf.scan(step, reversed_inputs, initializer=tf.zeros_like(deltas[:, 0]))
    advantages = tf.transpose(tf.reverse(advantages, [0]))
    return advantages * mask, (advantages + values) * mask


def kl_estimate(logprobs, reference_logprobs, kind="k1"):
    """Per-token estimators of KL(policy || reference) from log-probs of tokens sampled from the policy
    (Schulman 2020, "Approximating KL divergence"): with log_ratio = logp - logq,
    k1 = log_ratio (unbiased, high variance, can be negative), k2 = log_ratio^2 / 2 (biased, low variance),
    k3 = (exp(-log_ratio) - 1) + log_ratio (unbiased, always >= 0)."""
    log_ratio = tf.cast(logprobs, tf.float32) - tf.cast(reference_logprobs, tf.float32)
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * tf.square(log_ratio)
    if kind == "k3":
        return tf.exp(-log_ratio) - 1.0 + log_ratio
    raise ValueError(f"`kind` must be 'k1', 'k2' or 'k3'. Received: kind={kind!r}")


def explained_variance(predictions, targets, mask):
    """1 - Var(targets - predictions) / Var(targets) over the masked-in entries (1 is perfect, <= 0 is useless)."""
    residual = tf.cast(targets, tf.float32) - tf.cast(predictions, tf.float32)
    variance = masked_variance(targets, mask, unbiased=False)
    return 1.0 - masked_variance(residual, mask, unbiased=False) / tf.maximum(variance, 1e-8)
