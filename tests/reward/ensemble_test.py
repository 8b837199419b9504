import keras
import numpy as np
import tensorflow as tf

from rlhf_tf.reward import control_model, ensemble, losses


def test_bootstrap_weights_are_poisson_reproducible_and_member_specific():
    weights = ensemble.bootstrap_weights(seed=3, step=5, num_members=4, batch_size=20000).numpy()
    assert weights.shape == (4, 20000)
    np.testing.assert_allclose(weights.mean(axis=1), 1.0, atol=0.03)
    np.testing.assert_allclose(weights.var(axis=1), 1.0, atol=0.05)
    np.testing.assert_array_equal(weights, ensemble.bootstrap_weights(3, 5, 4, 20000).numpy())
    assert not np.array_equal(weights[0], weights[1])
    assert not np.array_equal(weights, ensemble.bootstrap_weights(3, 6, 4, 20000).numpy())


def test_disagreement_is_zero_when_members_agree_and_grows_when_they_do_not():
    agree = ensemble.disagreement([[1.0], [1.0], [1.0]], [[0.0], [0.0], [0.0]]).numpy()
    split = ensemble.disagreement([[3.0], [-3.0], [0.0]], [[0.0], [0.0], [0.0]]).numpy()
    assert agree[0] == 0.0 and split[0] > 0.3


def test_control_ensemble_learns_and_disagrees_more_off_distribution():
    # Segments whose true reward is the first observation coordinate; members trained on x in [-1, 1].
    rng = np.random.default_rng(0)
    members = [control_model.ControlRewardModel(num_actions=2, hidden_sizes=(32, 32)) for _ in range(4)]
    model = ensemble.RewardEnsemble(members)
    optimizer = keras.optimizers.Adam(1e-2)

    def segments(size, scale):
        observations = rng.uniform(-scale, scale, size=(size, 2, 5, 3)).astype(np.float32)
        actions = rng.integers(0, 2, size=(size, 2, 5))
        returns = observations[..., 0].sum(-1)
        return {"observations": observations, "actions": actions}, returns

    inputs, returns = segments(256, 1.0)
    model.member_scores({"observations": inputs["observations"][:1], "actions": inputs["actions"][:1]})
    optimizer.build(model.trainable_variables)
    first_better = tf.constant(returns[:, 0] > returns[:, 1])
    for step in range(150):
        weights = ensemble.bootstrap_weights(0, step, 4, 256)
        with tf.GradientTape() as tape:
            segment_returns = tf.reduce_sum(model.member_scores(inputs, training=True), axis=-1)  # [K, batch, 2]
            chosen = tf.where(first_better, segment_returns[..., 0], segment_returns[..., 1])
            rejected = tf.where(first_better, segment_returns[..., 1], segment_returns[..., 0])
            loss = tf.reduce_mean(weights * losses.bradley_terry_loss(chosen, rejected))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    test_inputs, test_returns = segments(256, 1.0)
    mean_returns = tf.reduce_sum(model.mean_scores(test_inputs), -1).numpy()
    accuracy = np.mean((mean_returns[:, 0] > mean_returns[:, 1]) == (test_returns[:, 0] > test_returns[:, 1]))
    assert accuracy > 0.9
    far_inputs, _ = segments(256, 8.0)
    near = tf.reduce_sum(model.member_scores(test_inputs), -1)
    far = tf.reduce_sum(model.member_scores(far_inputs), -1)
    assert np.mean(ensemble.disagreement(far[..., 0], far[..., 1])) > np.mean(
        ensemble.disagreement(near[..., 0], near[..., 1])
    )
