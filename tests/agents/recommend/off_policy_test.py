import numpy as np
import pytest

from rlhf_tf.agents.recommend import off_policy
from rlhf_tf.envs import recommend
from rlhf_tf.errors import UserInputError


def test_estimators_on_hand_computed_logs():
    target = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    actions, propensities, rewards = np.array([0, 1, 1]), np.array([0.5, 0.5, 0.25]), np.array([1.0, 0.0, 2.0])
    # weights: 1 / 0.5 = 2, 0.5 / 0.5 = 1, 1 / 0.25 = 4
    assert off_policy.ips(target, actions, propensities, rewards)[0] == pytest.approx((2 * 1 + 1 * 0 + 4 * 2) / 3)
    assert off_policy.snips(target, actions, propensities, rewards)[0] == pytest.approx((2 + 0 + 8) / (2 + 1 + 4))
    predicted = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # per log: sum_a pi q + w (r - q(x, a)) = 1 + 2 (1 - 1); 0.5 + 1 (0 - 0.5); 1 + 4 (2 - 1)
    assert off_policy.doubly_robust(target, actions, propensities, rewards, predicted)[0] == pytest.approx(
        (1 + 0 + 5) / 3
    )
    with pytest.raises(UserInputError, match=r"propensity must be in \(0, 1\]. Received: 0.0 at log 1"):
        off_policy.ips(target, actions, [0.5, 0.0, 0.25], rewards)


def test_estimates_from_a_uniform_logger_bracket_a_policys_online_value():
    world = recommend.make_world(seed=1)
    rng = np.random.default_rng(0)
    visits = [world.visit(rng) for _ in range(4000)]
    features = recommend.contexts(world, visits)
    # Behaviour: uniform over the 20 most popular items; target: the 5 best-matching items of the recent genres.
    candidates = np.argsort(-world.popularity)[:20]
    genre_match = features[:, world.genre[candidates]]  # [visits, candidates]: recent count of each item's genre
    target = np.zeros((len(visits), len(candidates)))
    best = np.argsort(-(genre_match + 0.01 * np.arange(len(candidates))[::-1]), axis=1)[:, :5]
    np.put_along_axis(target, best, 0.2, axis=1)
    actions = rng.integers(len(candidates), size=len(visits))
    value = lambda visit, item: float(world.satisfaction(visit[0], visit[1], visit[3], [item])[0])  # noqa: E731
    rewards = np.array([value(v, candidates[a]) for v, a in zip(visits, actions)])
    online = np.mean([np.sum(target[i] * [value(v, c) for c in candidates]) for i, v in enumerate(visits)])
    propensities = np.full(len(visits), 1.0 / len(candidates))
    for estimate, low, high in (
        off_policy.ips(target, actions, propensities, rewards),
        off_policy.snips(target, actions, propensities, rewards),
    ):
        assert low <= online <= high and high - low < 0.4 and abs(estimate - online) < 0.15
