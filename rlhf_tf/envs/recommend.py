"""A simulated user population for recommendation from human feedback (`--task=recommend`).

A catalogue of items with features people can see (genre, price, popularity, freshness) and users with tastes
they do not state. Each visit has a context the recommender sees (time of day, device, the genres of the user's
last three items) and a hidden satisfaction utility, used only to evaluate, never given to a learner:

    satisfaction(user, item, context) = taste[user] . genre[item] + novelty[user] x freshness[item]
                                        - thrift[user] x price[item] + evening boost for long items
                                        - fatigue x (times the item's genre is in the recent history)

People's feedback is what they would really give, with its distortions:
- clicks on a slate of k items: position k is looked at with probability `examination[k]` (position bias), and a
  looked-at item is clicked with probability sigmoid(2 x satisfaction + 1.5 x popularity - 1) (popular items draw
  clicks beyond how much they satisfy: a click is not satisfaction);
- 1-5 ratings of an item consumed: 3 for a typical item, 2 points per unit of satisfaction, plus noise, rounded
  onto the scale;
- a choice between two slates ("which list would you rather get?"): Bradley-Terry on the slates'
  position-discounted satisfaction.

Deterministic in its seed; `World.visit(rng)` draws (user, context), `contexts` featurises them.
"""

import dataclasses
import math

import numpy as np
from tf_agents.bandits.environments import bandit_py_environment
from tf_agents.specs import array_spec

GENRES = ("drama", "comedy", "thriller", "documentary", "animation", "romance", "sci-fi", "news")
TIMES = ("morning", "afternoon", "evening", "night")
DEVICES = ("phone", "desktop")
HISTORY = 3
FATIGUE = 0.35
ITEM_FEATURE_NAMES = tuple(f"genre={g}" for g in GENRES) + ("price", "popularity", "freshness", "long")
CONTEXT_FEATURE_NAMES = (
    tuple(f"recent={g}" for g in GENRES) + tuple(f"time={t}" for t in TIMES) + tuple(f"device={d}" for d in DEVICES)
)
POPULARITY = ITEM_FEATURE_NAMES.index("popularity")
# What a recommender sees of a candidate in a visit: the item's features and two crosses with the context.
ARM_FEATURE_NAMES = ITEM_FEATURE_NAMES + ("recent_same_genre", "evening_long")


@dataclasses.dataclass(frozen=True)
class World:
    """The catalogue and the population (arrays; see the module docstring)."""

    genre: np.ndarray  # [items] genre index
    price: np.ndarray  # [items] in [0, 1]
    popularity: np.ndarray  # [items] in [0, 1] (Zipf-like)
    freshness: np.ndarray  # [items] in [0, 1]
    long: np.ndarray  # [items] bool: long-form items, better in the evening
    taste: np.ndarray  # [users, genres]
    novelty: np.ndarray  # [users]
    thrift: np.ndarray  # [users]
    examination: np.ndarray  # [slate positions] probability a position is looked at

    @property
    def num_items(self):
        return len(self.genre)

    @property
    def num_users(self):
        return len(self.taste)

    def item_features(self):
        """[items, ITEM_FEATURES] what a recommender may know of each item: genre one-hot, price, popularity,
        freshness, long-form (see `ITEM_FEATURE_NAMES`)."""
        one_hot = np.eye(len(GENRES), dtype=np.float32)[self.genre]
        rest = np.stack([self.price, self.popularity, self.freshness, self.long], axis=1).astype(np.float32)
        return np.concatenate([one_hot, rest], axis=1)

    def visit(self, rng):
        """(user, time, device, history) of one visit: history the genres of the user's last HISTORY items."""
        user = int(rng.integers(self.num_users))
        liked = self.taste[user] / self.taste[user].sum()
        history = tuple(int(g) for g in rng.choice(len(GENRES), size=HISTORY, p=liked))
        return user, int(rng.integers(len(TIMES))), int(rng.integers(len(DEVICES))), history

    def satisfaction(self, user, time, history, items):
        """[len(items)] the hidden utility of each item for this visit (see the module docstring)."""
        items = np.asarray(items)
        genre = self.genre[items]
        value = self.taste[user, genre] * 2.0 - 1.0
        value = value + self.novelty[user] * self.freshness[items] - self.thrift[user] * self.price[items]
        if TIMES[time] == "evening":
            value = value + 0.3 * self.long[items]
        repeats = np.array([sum(g == h for h in history) for g in genre])
        return value - FATIGUE * repeats


def make_world(seed=0, num_items=200, num_users=500, slate_size=5):
    rng = np.random.default_rng(seed)
    ranks = rng.permutation(num_items) + 1
    popularity = (1.0 / ranks) ** 0.6
    return World(
        genre=rng.integers(len(GENRES), size=num_items),
        price=rng.uniform(size=num_items),
        popularity=popularity / popularity.max(),
        freshness=rng.uniform(size=num_items),
        long=rng.uniform(size=num_items) < 0.3,
        taste=rng.dirichlet(np.full(len(GENRES), 0.5), size=num_users),
        novelty=rng.uniform(0.0, 0.6, size=num_users),
        thrift=rng.uniform(0.0, 0.8, size=num_users),
        examination=1.0 / (1.0 + np.arange(slate_size)) ** 0.8,
    )


def contexts(world, visits):
    """[visits, genres + times + devices] what a recommender sees of each visit: the recent genres (counts), the
    time of day and the device, one-hot."""
    rows = []
    for _, time, device, history in visits:
        recent = np.bincount(history, minlength=len(GENRES)).astype(np.float32)
        rows.append(np.concatenate([recent, np.eye(len(TIMES))[time], np.eye(len(DEVICES))[device]]))
    return np.asarray(rows, np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def clicks(world, visit, slate, rng):
    """[len(slate)] 0/1 clicks on a slate shown in order (position-biased, popularity-drawn)."""
    slate = np.asarray(slate)
    looked = rng.uniform(size=len(slate)) < world.examination[: len(slate)]
    return (looked & (rng.uniform(size=len(slate)) < attraction(world, visit, slate))).astype(np.int32)


def attraction(world, visit, items):
    """[len(items)] the probability a person clicks each item once they look at it: satisfaction, and popularity's
    pull (clicks do not always mean satisfaction)."""
    user, time, _, history = visit
    items = np.asarray(items)
    return _sigmoid(2.0 * world.satisfaction(user, time, history, items) + 1.5 * world.popularity[items] - 1.0)


RATING_CENTER = -0.9  # the median satisfaction of an item picked at random: what people rate 3


def rating(world, visit, item, rng, noise=0.75):
    """A 1-5 rating of one consumed item: 3 for the typical item, 2 points per unit of satisfaction, and `noise`
    rating points of a person's inconsistency."""
    user, time, _, history = visit
    value = world.satisfaction(user, time, history, [item])[0]
    return int(np.clip(np.round(3.0 + 2.0 * (value - RATING_CENTER) + rng.normal(0.0, noise)), 1, 5))


def expected_rating(world, visit, items, noise=0.75):
    """[len(items)] the mean of `rating` over people's inconsistency (for online values without sampling noise):
    with m = 3 + 2 (satisfaction - RATING_CENTER), E[rating] = 5 - sum_k P(rating <= k) over k = 1..4, with
    P(rating <= k) = Phi((k + 0.5 - m) / noise)."""
    user, time, _, history = visit
    mean = 3.0 + 2.0 * (world.satisfaction(user, time, history, items) - RATING_CENTER)
    cuts = (np.arange(1, 5) + 0.5)[None, :] - mean[:, None]
    at_most = 0.5 * (1.0 + _erf(cuts / (noise * np.sqrt(2.0))))
    return 5.0 - at_most.sum(axis=1)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def slate_value(world, visit, slate):
    """Position-discounted satisfaction of a slate (what people weigh when they compare two lists)."""
    user, time, _, history = visit
    return float(np.sum(world.examination[: len(slate)] * world.satisfaction(user, time, history, slate)))


def slate_choice(world, visit, first, second, rng, temperature=0.5):
    """0 when the person prefers `first`, 1 for `second` (Bradley-Terry on `slate_value`)."""
    gap = (slate_value(world, visit, second) - slate_value(world, visit, first)) / temperature
    return int(rng.uniform() < _sigmoid(gap))


def describe_visit(visit):
    """What a labeler is told of a visit: the context a recommender sees (never who the user is)."""
    _, time, device, history = visit
    recent = ", ".join(GENRES[g] for g in history)
    return f"A visitor in the {TIMES[time]}, on a {DEVICES[device]}. Their last three items: {recent}."


def describe_item(world, item):
    """One line a labeler sees for an item of a list."""
    form = "long-form" if world.long[item] else "short"
    return (
        f"#{item} {GENRES[world.genre[item]]}, {form} · price {world.price[item]:.2f} · "
        f"popularity {world.popularity[item]:.2f} · freshness {world.freshness[item]:.2f}"
    )


# Visits with candidates, and the TF-Agents environment -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Visits:
    """A batch of visits, each with the candidate items a retrieval stage offers for it.

    Attributes:
      visits: [(user, time, device, history)].
      candidates: [visits, num_candidates] item ids, distinct within a visit.
    """

    visits: list
    candidates: np.ndarray

    def __len__(self):
        return len(self.visits)

    def observations(self, world):
        """{"global": [visits, contexts], "per_arm": [visits, candidates, arm features]} (TF-Agents' per-arm
        observation layout; `ARM_FEATURE_NAMES`: the item's features, the share of the recent history in its genre
        and whether it is long-form in the evening)."""
        items = world.item_features()[self.candidates]
        history = np.asarray([visit[3] for visit in self.visits])  # [visits, HISTORY]
        genre = world.genre[self.candidates]  # [visits, candidates]
        same = (genre[:, :, None] == history[:, None, :]).mean(axis=2)
        evening = np.asarray([TIMES[visit[1]] == "evening" for visit in self.visits], np.float32)
        evening_long = evening[:, None] * world.long[self.candidates]
        return {
            "global": contexts(world, self.visits),
            "per_arm": np.concatenate([items, same[..., None], evening_long[..., None]], axis=2).astype(np.float32),
        }

    def satisfaction(self, world):
        """[visits, candidates] the hidden utility of every candidate (evaluation only)."""
        return np.stack(
            [
                world.satisfaction(user, time, history, items)
                for (user, time, _, history), items in zip(self.visits, self.candidates)
            ]
        )

    def subset(self, rows):
        return Visits([self.visits[row] for row in rows], self.candidates[rows])


def draw_visits(world, count, rng, num_candidates=20):
    """`count` visits, each with `num_candidates` distinct items drawn uniformly from the catalogue."""
    visits = [world.visit(rng) for _ in range(count)]
    keys = rng.uniform(size=(count, world.num_items))
    candidates = np.argsort(keys, axis=1)[:, :num_candidates]
    return Visits(visits, candidates)


def true_reward(world, visits, actions):
    """[visits] the hidden satisfaction of the chosen candidate of each visit (the oracle's reward)."""
    return visits.satisfaction(world)[np.arange(len(visits)), actions].astype(np.float32)


class RecommendEnvironment(bandit_py_environment.BanditPyEnvironment):
    """A per-arm contextual bandit over the simulated population: each step is `batch_size` visits with
    `num_candidates` candidate items each; the action picks one candidate, and the reward is `reward_fn(visits,
    actions)`: the learned reward model's score in RLHF, the hidden satisfaction for the oracle (`true_reward`).

    Observations are TF-Agents' per-arm layout {"global": [contexts], "per_arm": [candidates, item features]}.
    """

    def __init__(self, world, reward_fn, batch_size=8, num_candidates=20, seed=0):
        self.world = world
        self._reward_fn = reward_fn
        self._batch_size = batch_size
        self._num_candidates = num_candidates
        self._rng = np.random.default_rng(seed)
        self.current = None
        observation_spec = {
            "global": array_spec.ArraySpec((len(CONTEXT_FEATURE_NAMES),), np.float32),
            "per_arm": array_spec.ArraySpec((num_candidates, len(ARM_FEATURE_NAMES)), np.float32),
        }
        action_spec = array_spec.BoundedArraySpec((), np.int32, minimum=0, maximum=num_candidates - 1, name="action")
        super().__init__(observation_spec, action_spec, name="recommend")

    def batched(self):
        return True

    @property
    def batch_size(self):
        return self._batch_size

    def _observe(self):
        self.current = draw_visits(self.world, self._batch_size, self._rng, self._num_candidates)
        return self.current.observations(self.world)

    def _apply_action(self, action):
        return np.asarray(self._reward_fn(self.current, np.asarray(action)), np.float32)
