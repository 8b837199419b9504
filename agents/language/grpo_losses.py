"""REINFORCE, RLOO and GRPO advantages, the clipped surrogate with one advantage per response, and the three loss
normalisations (GRPO, DAPO, Dr. GRPO), as pure functions.

Advantages (r_i is the score of response i of a prompt's group of k, after the optional KL-in-reward term):
- "reinforce": A_i = r_i - b, with b an exponential moving average of past batch means (checkpointed);
- "rloo" (Ahmadian et al. 2024): A_i = r_i - 1/(k-1) sum_{j != i} r_j, the leave-one-out mean of the others;
- "grpo" (Shao et al. 2024): A_i = (r_i - mean_group(r)) / (std_group(r) + 1e-4); with `scale_rewards=False`
  (Dr. GRPO, Liu et al. 2025) the division by the group's std is left out.

The per-token loss is the PPO-style clipped surrogate with that advantage on every token of the response,
l_t = -min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A), rho_t = pi(y_t) / pi_old(y_t) (rho = 1 on the first pass
over a batch, so one epoch is plain REINFORCE), plus `kl_coef` x the k3 estimator
exp(ref - logp) - (ref - logp) - 1 of KL(pi || pi_ref) per token when `kl_in_reward` is False. With `kl_in_reward`
the sequence KL sum_t (logp_t - ref_t) is subtracted from the score before the advantages instead.

Loss normalisation (`loss_normalization`), for tokens t of responses i with |y_i| real tokens, T = max_new_tokens and
N responses in the minibatch (global across replicas):
- "sequence" (GRPO as published): L = 1/N sum_i 1/|y_i| sum_t l_it, each response weighs the same, so tokens of
  short responses weigh more (a length bias);
- "token" (DAPO): L = sum_i sum_t l_it / sum_i |y_i|, each token weighs the same;
- "constant" (Dr. GRPO): L = 1/(N T) sum_i sum_t l_it, a constant normaliser, no length bias in either direction.
"""

import tensorflow as tf

from rlhf_tf import training
from rlhf_tf.agents.language import ppo_losses

NORMALIZATIONS = ("sequence", "token", "constant")


def group_advantages(scores, samples_per_prompt, algorithm, baseline=0.0, scale_rewards=True):
    """[batch] scores (groups of k consecutive rows) -> [batch] advantages (see the module docstring)."""
    scores = tf.cast(scores, tf.float32)
    if algorithm == "reinforce":
        return scores - baseline
    k = samples_per_prompt
    groups = tf.reshape(scores, [-1, k])
    if algorithm == "rloo":
        others = (tf.reduce_sum(groups, axis=1, keepdims=True) - groups) / (k - 1)
        return tf.reshape(groups - others, [-1])
    centred = groups - tf.reduce_mean(groups, axis=1, keepdims=True)
    if scale_rewards:
        centred = centred / (tf.math.reduce_std(groups, axis=1, keepdims=True) + 1e-4)
    return tf.reshape(centred, [-1])


def surrogate_loss(logprobs, old_logprobs, advantages, mask, clip_range, normalization, max_length):
    """(loss share, per-token clipped indicator) of the clipped surrogate with one advantage per response."""
    mask = tf.cast(mask, tf.float32)
    per_token, clipped, _ = ppo_losses.policy_loss(logprobs, old_logprobs, advantages[:, None] * mask, mask, clip_range)
    return normalize(per_token, mask, normalization, max_length), clipped


def normalize(per_token, mask, normalization, max_length):
    """This replica's share of the normalised loss (see the module docstring); correct under any strategy."""
    mask = tf.cast(mask, tf.float32)
    if normalization == "token":
        return training.global_mean(per_token, mask)
    if normalization == "constant":
        return training.global_mean(tf.reduce_sum(per_token, axis=1) / float(max_length))
    lengths = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    return training.global_mean(tf.reduce_sum(per_token, axis=1) / lengths)
