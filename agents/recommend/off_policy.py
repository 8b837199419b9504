"""Off-policy evaluation: a new policy's value estimated from a behaviour policy's logs before it is deployed.

Logs are (context, action, propensity, reward) with the propensity mu(a | x) > 0 the behaviour policy gave the
logged action; the target policy gives pi(a | x) for every action. With importance weights w = pi(a|x) / mu(a|x):

    IPS   = mean(w r)                                   (unbiased; high variance when w is large)
    SNIPS = sum(w r) / sum(w)                           (self-normalised: a little bias, much less variance)
    DR    = mean(sum_a pi(a|x) q(x, a) + w (r - q(x, a)))  (doubly robust: q a reward model; unbiased if either
                                                          the propensities or q are right)

Each comes with a 95% interval: a normal interval on the per-log terms for IPS and DR, a bootstrap over logs
(seeded) for SNIPS, whose ratio form has no per-log term.
"""

import numpy as np

from rlhf_tf.errors import UserInputError


def _checked(target_probabilities, actions, propensities, rewards):
    pi = np.asarray(target_probabilities, np.float64)
    actions = np.asarray(actions, np.int64)
    mu = np.asarray(propensities, np.float64)
    rewards = np.asarray(rewards, np.float64)
    if pi.ndim != 2 or not len(pi) == len(actions) == len(mu) == len(rewards):
        raise UserInputError(
            "Off-policy evaluation needs target probabilities [logs, actions] and one action, propensity and reward "
            f"per log. Received: {pi.shape}, {actions.shape}, {mu.shape}, {rewards.shape}"
        )
    if not np.all((mu > 0) & (mu <= 1)):
        bad = int(np.argmax(~((mu > 0) & (mu <= 1))))
        raise UserInputError(f"Every propensity must be in (0, 1]. Received: {mu[bad]} at log {bad}")
    weights = pi[np.arange(len(actions)), actions] / mu
    return pi, actions, weights, rewards


def _interval(terms):
    mean = float(np.mean(terms))
    half = 1.96 * float(np.std(terms, ddof=1)) / np.sqrt(len(terms)) if len(terms) > 1 else float("inf")
    return mean, mean - half, mean + half


def ips(target_probabilities, actions, propensities, rewards):
    """(estimate, low, high) by inverse propensity scoring."""
    _, _, weights, rewards = _checked(target_probabilities, actions, propensities, rewards)
    return _interval(weights * rewards)


def snips(target_probabilities, actions, propensities, rewards, resamples=1000, seed=0):
    """(estimate, low, high) by self-normalised inverse propensity scoring (bootstrap interval)."""
    _, _, weights, rewards = _checked(target_probabilities, actions, propensities, rewards)
    estimate = float(np.sum(weights * rewards) / np.sum(weights))
    rng = np.random.default_rng(seed)
    draws = rng.integers(len(weights), size=(resamples, len(weights)))
    values = np.sum(weights[draws] * rewards[draws], axis=1) / np.maximum(np.sum(weights[draws], axis=1), 1e-12)
    low, high = np.percentile(values, [2.5, 97.5])
    return estimate, float(low), float(high)


def doubly_robust(target_probabilities, actions, propensities, rewards, predicted):
    """(estimate, low, high) doubly robust, with `predicted` [logs, actions] a reward model's q(x, a)."""
    pi, actions, weights, rewards = _checked(target_probabilities, actions, propensities, rewards)
    q = np.asarray(predicted, np.float64)
    if q.shape != pi.shape:
        raise UserInputError(
            f"`predicted` must be [logs, actions] like the target's. Received: {q.shape} vs {pi.shape}"
        )
    logged = q[np.arange(len(actions)), actions]
    return _interval(np.sum(pi * q, axis=1) + weights * (rewards - logged))
