"""PPO for language policies: the reward shaping, the clipped losses and the KL controllers, as pure functions.

Shapes are [batch, response_length] with a response `mask` unless stated.
"""

import math

import tensorflow as tf

from rlhf_tf import ops


def shape_rewards(scores, logprobs, reference_logprobs, mask, kl_coef, ended=None, missing_end_penalty=0.0):
    """Per-token rewards: -kl_coef * (logp - logp_ref) on every response token, plus the reward model's score
    (minus `missing_end_penalty` for a response that never emitted the end token) on its last token
    (Ziegler et al. 2019; Ouyang et al. 2022).

    Args:
      scores: [batch] reward-model scores of the whole responses.
      logprobs, reference_logprobs: [batch, length] sampling log-probs of the policy and of the frozen reference.
      mask: [batch, length] response tokens.
      kl_coef: the KL penalty coefficient (scalar).
      ended: optional [batch] bool, whether each response emitted the end token.
      missing_end_penalty: subtracted from the score of responses that did not end.

    Returns:
      (rewards [batch, length], kl [batch, length]) with zeros outside the mask.
    """
    mask = tf.cast(mask, tf.float32)
    kl = ops.kl_estimate(logprobs, reference_logprobs, "k1") * mask
    scores = tf.cast(scores, tf.float32)
    if ended is not None and missing_end_penalty:
        scores = scores - missing_end_penalty * (1.0 - tf.cast(ended, tf.float32))
    lengths = tf.cast(tf.reduce_sum(mask, axis=1), tf.int32)
    last = tf.one_hot(tf.maximum(lengths - 1, 0), tf.shape(mask)[1]) * tf.cast(lengths > 0, tf.float32)[:, None]
    return -kl_coef * kl + scores[:, None] * last, kl


def policy_loss(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    """The clipped surrogate, per token: max(-A r, -A clip(r, 1 - eps, 1 + eps)) with r = exp(logp - logp_old).

    Returns (per-token loss, per-token clipped indicator, per-token approximate KL 0.5 (logp - logp_old)^2), all
    zero outside the mask; average them with `ops.masked_mean` (or `training.global_mean` under a strategy).
    """
    mask = tf.cast(mask, tf.float32)
    log_ratio = tf.cast(logprobs, tf.float32) - tf.cast(old_logprobs, tf.float32)
    ratio = tf.exp(log_ratio)
    advantages = tf.cast(advantages, tf.float32)
    unclipped = -advantages * ratio
    clipped = -advantages * tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = tf.maximum(unclipped, clipped) * mask
    was_clipped = tf.cast(clipped > unclipped, tf.float32) * mask
    approximate_kl = 0.5 * tf.square(log_ratio) * mask
    return loss, was_clipped, approximate_kl


def value_loss(values, old_values, returns, mask, clip_range=0.2):
    """The clipped value loss, per token: 0.5 max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)."""
    values = tf.cast(values, tf.float32)
    returns = tf.cast(returns, tf.float32)
    clipped_values = old_values + tf.clip_by_value(values - old_values, -clip_range, clip_range)
    loss = 0.5 * tf.maximum(tf.square(values - returns), tf.square(clipped_values - returns))
    return loss * tf.cast(mask, tf.float32)


def adaptive_kl_coef(kl_coef, observed_kl, target, steps, horizon=10_000.0):
    """Ziegler et al. (2019)'s adaptive KL coefficient after one batch:
    beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * steps / horizon).

    Args:
      kl_coef: the current coefficient beta.
      observed_kl: the batch's mean KL (nats per response).
      target: the KL to hold.
      steps: responses in the batch.
      horizon: how many responses the adjustment is spread over.
    """
    error = min(max(observed_kl / target - 1.0, -0.2), 0.2)
    value = kl_coef * (1.0 + error * steps / horizon)
    if not math.isfinite(value):
        raise FloatingPointError(f"The KL coefficient diverged. Received: observed_kl={observed_kl}")
    return value
