"""What a recommender logs and what people answer: a behaviour policy's lists, and clicks, ratings and slate choices
from the simulated population, as training examples for `rlhf_tf.reward.item_reward`.

The behaviour policy is popularity with exploration: the top slot is drawn from
mu(a | x) = (1 - epsilon) softmax(popularity / temperature) + epsilon / candidates, and the rest of the list the same
way without replacement (Plackett-Luce). `mu` is logged as the propensity of the top item, which off-policy
evaluation needs.

Examples (numpy, one row per label; `ARM` the per-arm feature width, K the list length):
- slates: {"global": [N, G], "first": [N, K, ARM], "second": [N, K, ARM], "preferred": [N] (1: the second list)};
- ratings: {"global", "items": [N, 1, ARM], "rating": [N]} (a person rates an item they clicked);
- clicks: {"global", "slate": [N, K, ARM], "clicks": [N, K]}.
"""

import numpy as np

from rlhf_tf.envs import recommend


def behaviour_probabilities(world, visits, temperature=0.3, epsilon=0.2):
    """[visits, candidates] mu(a | x) of popularity with exploration (module docstring)."""
    logits = world.popularity[visits.candidates] / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return (1.0 - epsilon) * softmax + epsilon / visits.candidates.shape[1]


def sample_lists(probabilities, k, rng):
    """[visits, k] candidate indices drawn without replacement in proportion to `probabilities` (Gumbel top-k,
    which is Plackett-Luce sampling)."""
    gumbel = -np.log(-np.log(rng.uniform(size=probabilities.shape)))
    return np.argsort(-(np.log(probabilities) + gumbel), axis=1)[:, :k]


def _rows(observations, positions):
    """[visits, k, ARM] the per-arm features of the candidates at `positions` [visits, k]."""
    return np.take_along_axis(observations["per_arm"], positions[:, :, None], axis=1)


def slate_choices(world, visits, first, second, rng):
    """Examples of people choosing between two lists (candidate positions [visits, K] each)."""
    observations = visits.observations(world)
    items_first = np.take_along_axis(visits.candidates, first, axis=1)
    items_second = np.take_along_axis(visits.candidates, second, axis=1)
    preferred = np.array(
        [recommend.slate_choice(world, v, a, b, rng) for v, a, b in zip(visits.visits, items_first, items_second)]
    )
    return {
        "global": observations["global"],
        "first": _rows(observations, first),
        "second": _rows(observations, second),
        "preferred": preferred.astype(np.int32),
    }


def clicks(world, visits, lists, rng):
    """Examples of clicks on shown lists (candidate positions [visits, K])."""
    observations = visits.observations(world)
    items = np.take_along_axis(visits.candidates, lists, axis=1)
    clicked = np.stack([recommend.clicks(world, v, shown, rng) for v, shown in zip(visits.visits, items)])
    return {"global": observations["global"], "slate": _rows(observations, lists), "clicks": clicked.astype(np.float32)}


def ratings(world, visits, lists, rng, count):
    """Up to `count` examples of people rating an item they clicked in a shown list (one per visit with a click)."""
    observations = visits.observations(world)
    items = np.take_along_axis(visits.candidates, lists, axis=1)
    rows, positions, values = [], [], []
    for row, (visit, shown) in enumerate(zip(visits.visits, items)):
        clicked = np.flatnonzero(recommend.clicks(world, visit, shown, rng))
        if len(clicked) == 0:
            continue
        position = int(rng.choice(clicked))
        rows.append(row)
        positions.append(lists[row, position])
        values.append(recommend.rating(world, visit, int(shown[position]), rng))
        if len(rows) == count:
            break
    rows, positions = np.asarray(rows, np.int64), np.asarray(positions, np.int64)
    return {
        "global": observations["global"][rows],
        "items": observations["per_arm"][rows, positions][:, None, :],
        "rating": np.asarray(values, np.float32),
    }


def concatenate(parts):
    """One example set from several (rounds of labels)."""
    parts = [part for part in parts if len(part["global"])]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
