import keras
import keras_hub
import numpy as np
import tensorflow as tf

from rlhf_tf.models import families
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.reward import language_model

TINY = policy_lib.PolicyConfig(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=24)


def _inputs():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 257, size=(3, 2, 24)).astype(np.int32)
    mask = np.ones((3, 2, 24), bool)
    mask[0, 1, 10:] = False  # right padding, as the preference pipeline pads
    mask[2, 0, 3:] = False
    ids[~mask] = 0
    return {"token_ids": tf.constant(ids), "padding_mask": tf.constant(mask)}


def test_gpt2_scores_and_gradients_equal_the_backbones_own_call():
    keras.utils.set_random_seed(0)
    model = language_model.LanguageRewardModel(policy_lib.build_policy(TINY, 257).backbone)
    model.build()
    inputs = _inputs()
    assert families.supports(model.backbone) and not families.has_dropout(model.backbone)

    def backbone_call(token_ids, padding_mask, last, training):
        hidden = model.backbone({"token_ids": token_ids, "padding_mask": padding_mask}, training=training)
        return tf.gather(hidden, last, batch_dims=1)

    with tf.GradientTape(persistent=True) as tape:
        fast = model(inputs, training=True)
        model._last_hidden = backbone_call  # the backbone's own layers
        slow = model(inputs, training=True)
    del model._last_hidden
    assert fast.shape == (3, 2)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    for fast_gradient, slow_gradient in zip(
        tape.gradient(fast, model.trainable_variables), tape.gradient(slow, model.trainable_variables)
    ):
        np.testing.assert_allclose(tf.convert_to_tensor(fast_gradient), tf.convert_to_tensor(slow_gradient), atol=1e-4)


def test_dropout_and_other_architectures_use_the_backbones_call():
    keras.utils.set_random_seed(0)
    config = policy_lib.PolicyConfig(**{**TINY.__dict__, "dropout": 0.5})
    model = language_model.LanguageRewardModel(policy_lib.build_policy(config, 257).backbone)
    model.build()
    inputs = _inputs()
    assert families.has_dropout(model.backbone)
    # Dropout on while training: two calls differ; scoring is deterministic and equals the GPT-2 pass.
    assert not np.allclose(model(inputs, training=True), model(inputs, training=True))
    np.testing.assert_allclose(model(inputs), model(inputs))

    other = keras_hub.models.OPTBackbone(
        vocabulary_size=257, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=24
    )
    assert not families.supports(other)
    scores = language_model.LanguageRewardModel(other)(inputs)
    assert scores.shape == (3, 2) and np.all(np.isfinite(scores))
