"""What a recommender logs and what people answer: a behaviour policy's lists, and clicks, ratings and slate choices
from the simulated population, as training examples for `rlhf_tf.reward.item_reward`.

The behaviour policy is popularity with exploration: the top slot is drawn from
mu(a | x) = (1 - epsilon) softmax(popularity / temperature) + epsilon / candidates, and the rest of the list the same
way without replacement (Plackett-Luce). `mu` is logged as the propensity of the top item, which off-policy
evaluation needs.

People's answers are records (`logged`: the visit's context, item ids, the answer), which `logged.examples` turns
into training examples (numpy, one row per label; `ARM` the per-arm feature width, K the list length):
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


def slate_choices(world, visits, first, second, rng):
    """Records (`logged`) of people choosing between two lists (candidate positions [visits, K] each)."""
    items_first = np.take_along_axis(visits.candidates, first, axis=1)
    items_second = np.take_along_axis(visits.candidates, second, axis=1)
    return [
        {"visit": v, "first": a, "second": b, "preferred": recommend.slate_choice(world, v, a, b, rng)}
        for v, a, b in zip(visits.visits, items_first, items_second)
    ]


def clicks(world, visits, lists, rng):
    """Records (`logged`) of clicks on shown lists (candidate positions [visits, K])."""
    items = np.take_along_axis(visits.candidates, lists, axis=1)
    return [
        {"visit": v, "slate": shown, "clicks": recommend.clicks(world, v, shown, rng).astype(np.float32)}
        for v, shown in zip(visits.visits, items)
    ]


def ratings(world, visits, lists, rng, count):
    """Up to `count` records (`logged`) of people rating an item they clicked in a shown list (one per visit with a
    click)."""
    items = np.take_along_axis(visits.candidates, lists, axis=1)
    records = []
    for visit, shown in zip(visits.visits, items):
        clicked = np.flatnonzero(recommend.clicks(world, visit, shown, rng))
        if len(clicked) == 0:
            continue
        item = int(shown[int(rng.choice(clicked))])
        records.append({"visit": visit, "item": item, "rating": recommend.rating(world, visit, item, rng)})
        if len(records) == count:
            break
    return records


def concatenate(parts):
    """One example set from several (rounds of labels)."""
    parts = [part for part in parts if len(part["global"])]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
