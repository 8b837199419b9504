import numpy as np

from rlhf_tf.envs import recommend


def test_the_simulated_people_show_position_bias_popularity_clicks_fatigue_and_consistent_choices():
    world = recommend.make_world(seed=0)
    rng = np.random.default_rng(1)
    visits = [world.visit(rng) for _ in range(3000)]
    # Position bias: the same items are clicked less the lower they are shown.
    slate = np.argsort(-world.popularity)[:5]
    by_position = np.mean([recommend.clicks(world, v, slate, rng) for v in visits], axis=0)
    reversed_clicks = np.mean([recommend.clicks(world, v, slate[::-1], rng) for v in visits], axis=0)[::-1]
    assert by_position[0] > reversed_clicks[0] * 1.3 and reversed_clicks[-1] > by_position[-1] * 1.3
    # A click is not satisfaction: at equal satisfaction, popular items are clicked more.
    popular, obscure = [], []
    order = np.argsort(-world.popularity)
    for visit in visits:
        hot, cold = rng.choice(order[:10]), rng.choice(order[100:])
        value = world.satisfaction(visit[0], visit[1], visit[3], [hot, cold])
        if abs(value[0] - value[1]) < 0.15:
            popular.append(recommend.clicks(world, visit, [hot], rng)[0])
            obscure.append(recommend.clicks(world, visit, [cold], rng)[0])
    assert len(popular) > 100 and np.mean(popular) > 1.3 * np.mean(obscure)
    # Fatigue: an item of a genre the user just had three times satisfies less than after other genres.
    user, time, _, _ = visits[0]
    item = 7
    tired = world.satisfaction(user, time, (world.genre[item],) * 3, [item])[0]
    fresh = world.satisfaction(user, time, tuple((world.genre[item] + k) % 8 for k in (1, 2, 3)), [item])[0]
    assert abs(fresh - tired - 3 * recommend.FATIGUE) < 1e-9
    # Ratings and slate choices follow satisfaction.
    values, ratings = [], []
    for visit in visits[:800]:
        item = int(rng.integers(world.num_items))
        values.append(world.satisfaction(visit[0], visit[1], visit[3], [item])[0])
        ratings.append(recommend.rating(world, visit, item, rng))
    assert np.corrcoef(values, ratings)[0, 1] > 0.5 and set(ratings) <= {1, 2, 3, 4, 5}
    agree = []
    for visit in visits[:800]:
        first, second = (rng.choice(world.num_items, size=5, replace=False) for _ in range(2))
        better = int(recommend.slate_value(world, visit, second) > recommend.slate_value(world, visit, first))
        agree.append(recommend.slate_choice(world, visit, first, second, rng) == better)
    assert np.mean(agree) > 0.6  # a coin gives 0.5; close slates are hard to tell apart
    features = recommend.contexts(world, visits[:3])
    assert features.shape == (3, len(recommend.GENRES) + len(recommend.TIMES) + len(recommend.DEVICES))
    assert world.item_features().shape == (world.num_items, len(recommend.ITEM_FEATURE_NAMES))
