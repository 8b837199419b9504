import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf.reward import item_reward, losses


def test_click_loss_on_hand_computed_clicks():
    attraction = np.array([[0.0, 2.0]], np.float32)
    clicks = np.array([[1.0, 0.0]], np.float32)
    # naive: -log sigmoid(0) - log(1 - sigmoid(2))
    naive = -np.log(0.5) - np.log(1.0 - 1.0 / (1.0 + np.exp(-2.0)))
    assert float(losses.click_loss(attraction, clicks)[0]) == pytest.approx(naive, rel=1e-5)
    # examination: looked at with sigmoid(e_k); P(click) = sigmoid(e_k) sigmoid(a_k)
    examination = np.array([0.0, -1.0], np.float32)
    p0, p1 = 0.5 * 0.5, (1.0 / (1.0 + np.exp(1.0))) * (1.0 / (1.0 + np.exp(-2.0)))
    expected = -np.log(p0) - np.log(1.0 - p1)
    assert float(losses.click_loss(attraction, clicks, examination)[0]) == pytest.approx(expected, rel=1e-5)


def _click_logs(rng, count=3000, positions=3):
    """Clicks on lists whose items are worth their one feature; lower positions are looked at less and always
    hold the worse items (as a popularity-ranked logger shows them)."""
    worth = rng.uniform(-1.0, 1.0, size=(count, positions))
    worth = -np.sort(-worth, axis=1)  # the best item on top
    looked = rng.uniform(size=(count, positions)) < np.array([1.0, 0.5, 0.25])
    clicked = looked & (rng.uniform(size=(count, positions)) < 1.0 / (1.0 + np.exp(-3.0 * worth)))
    arms = np.stack([worth, np.zeros_like(worth)], axis=2).astype(np.float32)  # feature 1: popularity (unused)
    return {"global": np.zeros((count, 1), np.float32), "slate": arms, "clicks": clicked.astype(np.float32)}


@pytest.mark.parametrize("click_model", ["examination", "naive"])
def test_the_examination_click_model_learns_position_bias_and_the_naive_one_cannot(click_model):
    examples = _click_logs(np.random.default_rng(0))
    config = item_reward.ItemRewardConfig(
        kind="clicks", click_model=click_model, ensemble_size=1, layers=(8,), max_epochs=30, patience=5
    )
    model = item_reward.FeedbackModel(config, num_arm_features=2, slate_size=3, popularity_index=1)
    results = item_reward.train_feedback_model(model, examples, config)
    assert results["best_epoch"] >= 1
    examination = model.examination().numpy()
    if click_model == "examination":
        # The true examination is 1, 0.5, 0.25: the learned one falls with position.
        assert examination[0] > examination[1] > examination[2] and examination[2] < 0.5
    # Either way the reward ranks the items by their worth.
    worth = tf.constant(np.linspace(-1, 1, 5, dtype=np.float32)[None, :, None] * np.array([1.0, 0.0], np.float32))
    scores = model.member_scores({"global": tf.zeros((1, 1)), "per_arm": worth})[0, 0].numpy()
    # Never lower for a better item (a ReLU tower may be flat below the worst items it saw) and far higher at the top.
    assert np.all(np.diff(scores) > -1e-3) and scores[-1] - scores[0] > 1.0 and scores[-1] > scores[2] > scores[0]


def test_slate_choices_train_a_reward_that_ranks_items_and_a_disagreement_per_pair():
    rng = np.random.default_rng(1)
    count, size = 1500, 3
    first, second = rng.uniform(-1, 1, size=(2, count, size, 1)).astype(np.float32)
    weights = np.array([1.0, 0.6, 0.3])
    gap = 2.0 * ((second[..., 0] * weights).sum(1) - (first[..., 0] * weights).sum(1))
    preferred = (rng.uniform(size=count) < 1.0 / (1.0 + np.exp(-gap))).astype(np.int32)
    examples = {"global": np.zeros((count, 1), np.float32), "first": first, "second": second, "preferred": preferred}
    config = item_reward.ItemRewardConfig(kind="slates", ensemble_size=2, layers=(8,), max_epochs=40, patience=5)
    model = item_reward.FeedbackModel(config, num_arm_features=1, slate_size=size)
    results = item_reward.train_feedback_model(model, examples, config)
    # A coin gets 0.5; the labels' own noise caps accuracy near 0.8.
    assert results["held_out_accuracy"] > 0.7
    weights_learned = model.position_weights().numpy()
    assert weights_learned[0] == pytest.approx(1.0) and weights_learned[2] < weights_learned[0]
    spread = model.disagreement(tf.zeros((4, 1)), first[:4], second[:4]).numpy()
    assert spread.shape == (4,) and np.all(spread >= 0)
