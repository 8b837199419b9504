"""Reward-model losses: pure functions with their formulas, shapes [batch] unless stated.

Each returns per-example losses; reduce them with `rlhf_tf.training.global_mean` (or `tf.reduce_mean` on one
device) so that the reduction is right under every distribution strategy.
"""

import tensorflow as tf


def preference_probability(chosen, rejected, margin=0.0, label_noise=0.0):
    """P(chosen preferred) = (1 - label_noise) * sigmoid(r_chosen - r_rejected - margin) + label_noise / 2.

    `label_noise` is the assumed rate at which labelers answer at random (Christiano et al. 2017 use 0.1).
    """
    return (1.0 - label_noise) * tf.sigmoid(chosen - rejected - margin) + label_noise / 2.0


def bradley_terry_loss(chosen, rejected, margin=0.0, label_noise=0.0, tie=None):
    """-[t log p + (1 - t) log(1 - p)] with p = `preference_probability(...)` and target t = 1, or 0.5 for ties.

    With no noise and no ties this is -log sigmoid(r_chosen - r_rejected - margin), computed stably.

    Args:
      chosen, rejected: rewards [batch].
      margin: [batch] or scalar; how much better the chosen response must score (0 for ties).
      label_noise: assumed random-answer rate in [0, 1).
      tie: optional [batch] (1 where the pair is a tie, learned as probability 0.5).
    """
    chosen = tf.convert_to_tensor(chosen, tf.float32)
    rejected = tf.cast(rejected, tf.float32)
    target = tf.ones_like(chosen) if tie is None else 1.0 - 0.5 * tf.cast(tie, tf.float32)
    margin = tf.cast(margin, tf.float32) * (tf.ones_like(chosen) if tie is None else 1.0 - tf.cast(tie, tf.float32))
    difference = chosen - rejected - margin
    if label_noise == 0.0:
        # log sigmoid(d) and log sigmoid(-d), stable for large |d|.
        return -(target * tf.math.log_sigmoid(difference) + (1.0 - target) * tf.math.log_sigmoid(-difference))
    probability = preference_probability(chosen, rejected, margin, label_noise)
    return -(target * tf.math.log(probability) + (1.0 - target) * tf.math.log(1.0 - probability))


def plackett_luce_loss(scores, present=None):
    """-sum_k log( exp(s_k) / sum_{j >= k, present} exp(s_j) ) over the present responses, best first.

    Args:
      scores: [batch, K] rewards of responses ordered best first.
      present: optional [batch, K] bool; absent responses (short rankings) take no part. The last present
        response's term is log 1 = 0.
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    present = tf.ones_like(scores, tf.bool) if present is None else tf.cast(present, tf.bool)
    masked = tf.where(present, scores, tf.cast(-1e9, scores.dtype))
    # log sum_{j >= k} exp(s_j): a reversed cumulative logsumexp.
    tail = tf.reverse(tf.math.cumulative_logsumexp(tf.reverse(masked, [1]), axis=1), [1])
    terms = tf.where(present, masked - tail, 0.0)
    return -tf.reduce_sum(terms, axis=1)


def regression_loss(predictions, targets, kind="mse", delta=1.0):
    """(prediction - target)^2 ("mse"), or Huber with threshold `delta` ("huber"): 0.5 e^2 if |e| <= delta else
    delta (|e| - 0.5 delta)."""
    error = tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32)
    if kind == "mse":
        return tf.square(error)
    if kind == "huber":
        absolute = tf.abs(error)
        return tf.where(absolute <= delta, 0.5 * tf.square(error), delta * (absolute - 0.5 * delta))
    raise ValueError(f"`kind` must be 'mse' or 'huber'. Received: kind={kind!r}")


def centering_penalty(rewards):
    """(mean reward)^2 over all rewards given: keeps the scale anchored at 0 (Eisenstein et al. 2023 use
    coefficient 0.01); Bradley-Terry alone leaves the offset free. Returns a scalar."""
    return tf.square(tf.reduce_mean(tf.cast(rewards, tf.float32)))


def click_loss(attraction_logits, clicks, examination_logits=None):
    """Clicks on the positions of a shown list, as binary cross-entropy summed over positions ([batch, K] -> [batch]).

    Under the examination hypothesis (Richardson et al. 2007; Chuklin et al. 2015) a person clicks position k when
    they look at it, with probability sigmoid(e_k), and find the item attractive, sigmoid(a):
        P(click at k) = sigmoid(e_k) * sigmoid(a_k).
    Without `examination_logits` every position is looked at (the naive model, P = sigmoid(a_k)), so positions
    that are looked at less teach that their items are worse.

    Args:
      attraction_logits: [batch, K].
      clicks: [batch, K] 0/1.
      examination_logits: optional [K] or [batch, K].
    """
    attraction_logits = tf.convert_to_tensor(attraction_logits, tf.float32)
    clicks = tf.cast(clicks, tf.float32)
    if examination_logits is None:
        log_click = tf.math.log_sigmoid(attraction_logits)
        log_no_click = tf.math.log_sigmoid(-attraction_logits)
    else:
        log_click = tf.math.log_sigmoid(tf.cast(examination_logits, tf.float32)) + tf.math.log_sigmoid(
            attraction_logits
        )
        # log(1 - p), stably: log1p(-exp(log p)), with p < 1.
        log_no_click = tf.math.log1p(-tf.minimum(tf.exp(log_click), 1.0 - 1e-6))
    return -tf.reduce_sum(clicks * log_click + (1.0 - clicks) * log_no_click, axis=1)
