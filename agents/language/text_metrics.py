"""Judging sets of responses as the field does: win rates with and without length control, and diversity.

Pure numpy over strings and scores; `evaluation.judge` reports them for every judge.
"""

import numpy as np


def win_rate(ours, theirs):
    """The share of prompts where `ours` scores higher than `theirs`, ties counting one half. Shapes: [prompts]."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.mean((ours > theirs) + 0.5 * (ours == theirs)))


def distinct_n(texts, n):
    """Distinct-n (Li et al., 2016): distinct word n-grams over all n-grams, pooled over `texts` (words split on
    whitespace, lowercased). 0.0 when the texts hold no n-gram."""
    grams, total = set(), 0
    for text in texts:
        words = text.lower().split()
        for start in range(len(words) - n + 1):
            grams.add(tuple(words[start : start + n]))
            total += 1
    return len(grams) / total if total else 0.0


def diversity(texts):
    """{"distinct_1", "distinct_2", "distinct_3", "unique_responses"}: distinct-n of the pooled responses and the
    share of responses that no other response repeats exactly (after stripping surrounding whitespace)."""
    metrics = {f"distinct_{n}": distinct_n(texts, n) for n in (1, 2, 3)}
    stripped = [text.strip() for text in texts]
    counts = {}
    for text in stripped:
        counts[text] = counts.get(text, 0) + 1
    metrics["unique_responses"] = sum(1 for text in stripped if counts[text] == 1) / len(texts) if texts else 0.0
    return metrics


def length_controlled_win_rate(ours, theirs, our_lengths, their_lengths, l2=1e-3, iterations=50):
    """The win rate of `ours` over `theirs` with the part explained by length taken out: a logistic regression of
    the outcome (1 win, 0.5 tie, 0 loss) on z = tanh((len_ours - len_theirs) / std(len_ours - len_theirs)),
    P(win) = sigmoid(a + b z), fitted by Newton's method (an L2 penalty `l2` on b keeps it finite when length alone
    separates wins from losses), reported at equal lengths: sigmoid(a). This is AlpacaEval 2's length control with
    one judge and no per-instruction term. Where lengths never differ it is the raw win rate. Shapes: [prompts]."""
    outcome = (np.asarray(ours, np.float64) > np.asarray(theirs, np.float64)) + 0.5 * (
        np.asarray(ours, np.float64) == np.asarray(theirs, np.float64)
    )
    difference = np.asarray(our_lengths, np.float64) - np.asarray(their_lengths, np.float64)
    scale = np.std(difference)
    if scale == 0.0 or np.mean(outcome) in (0.0, 1.0):  # nothing for length to explain
        return float(np.mean(outcome))
    features = np.stack([np.ones_like(difference), np.tanh(difference / scale)], axis=1)
    penalty = np.diag([0.0, l2 * len(outcome)])
    weights = np.zeros(2)
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-np.clip(features @ weights, -30.0, 30.0)))
        gradient = features.T @ (probability - outcome) + penalty @ weights
        hessian = features.T @ (features * (probability * (1.0 - probability))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(1.0 / (1.0 + np.exp(-weights[0])))
