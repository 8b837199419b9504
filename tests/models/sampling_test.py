import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf.errors import UserInputError
from rlhf_tf.models import families, sampling, transformer


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=40,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=48,
        dropout=0.0,
    )


def _prompts():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 40, size=(4, 8)).astype(np.int32)
    mask = np.ones((4, 8), bool)
    mask[1, :3] = False
    mask[2, :7] = False
    ids[~mask] = 0
    return ids, mask


def test_forward_matches_keras_hub_backbone(backbone):
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 40, size=(3, 12))
    mask = np.ones((3, 12), bool)
    mask[2, 9:] = False
    reference = backbone.token_embedding(backbone({"token_ids": ids, "padding_mask": mask}), reverse=True)
    weights = families.read_weights(backbone)
    positions = np.tile(np.arange(12), (3, 1))
    ours = transformer.logits(weights, transformer.forward(weights, ids, positions, transformer.causal_mask(mask)))
    np.testing.assert_allclose(np.array(ours)[mask], np.array(reference)[mask], atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_forward_gradients_match_keras_hub_backbone(backbone, jit_compile):
    # `forward` trains through `dense`, whose backward pass is written by hand: every variable's gradient must be
    # the one autodiff gives through keras-hub's own layers, in graph mode and under XLA.
    rng = np.random.default_rng(2)
    ids = tf.constant(rng.integers(1, 40, size=(3, 12)), tf.int32)
    mask = np.ones((3, 12), bool)
    mask[1, 7:] = False
    mask = tf.constant(mask)
    weights_out = tf.constant(rng.normal(size=(3, 12, 16)), tf.float32)
    positions = tf.constant(np.tile(np.arange(12), (3, 1)), tf.int32)

    def loss(hidden):
        return tf.reduce_sum(tf.where(mask[..., None], hidden * weights_out, 0.0))

    @tf.function(jit_compile=jit_compile)
    def gradients():
        with tf.GradientTape(persistent=True) as tape:
            theirs = loss(backbone({"token_ids": ids, "padding_mask": mask}))
            weights = families.read_weights(backbone)
            ours = loss(
                transformer.final_norm(
                    weights, transformer.forward(weights, ids, positions, transformer.causal_mask(mask))
                )
            )
        variables = backbone.trainable_variables
        return tape.gradient(theirs, variables), tape.gradient(ours, variables)

    theirs, ours = gradients()
    assert len(theirs) == len(ours) > 20
    for variable, expected, got in zip(backbone.trainable_variables, theirs, ours):
        np.testing.assert_allclose(
            tf.convert_to_tensor(got), tf.convert_to_tensor(expected), atol=2e-4, rtol=1e-4, err_msg=variable.path
        )


def test_hidden_at_equals_the_full_pass_at_that_position(backbone):
    rng = np.random.default_rng(4)
    ids = tf.constant(rng.integers(1, 40, size=(3, 12)), tf.int32)
    mask = np.ones((3, 12), bool)
    mask[1, 7:] = False
    mask = tf.constant(mask)
    positions = tf.constant(np.tile(np.arange(12), (3, 1)), tf.int32)
    index = tf.constant([11, 6, 3])
    with tf.GradientTape(persistent=True) as tape:
        weights = families.read_weights(backbone)
        full = transformer.forward(weights, ids, positions, transformer.causal_mask(mask))
        expected = transformer.final_norm(weights, tf.gather(full, index, batch_dims=1))
        got = transformer.final_norm(
            weights, transformer.hidden_at(weights, ids, positions, transformer.causal_mask(mask), index)
        )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for expected_gradient, got_gradient in zip(
        tape.gradient(expected, backbone.trainable_variables), tape.gradient(got, backbone.trainable_variables)
    ):
        np.testing.assert_allclose(
            tf.convert_to_tensor(got_gradient), tf.convert_to_tensor(expected_gradient), atol=1e-4
        )


def test_dense_gradient_is_the_matmul_gradient():
    rng = np.random.default_rng(3)
    for inputs, outputs in [(8, 24), (24, 8)]:  # both ways of transposing the narrower side
        x = tf.constant(rng.normal(size=(10, inputs)), tf.float32)
        kernel = tf.constant(rng.normal(size=(inputs, outputs)), tf.float32)
        bias = tf.constant(rng.normal(size=(outputs,)), tf.float32)
        upstream = tf.constant(rng.normal(size=(10, outputs)), tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, kernel, bias])
            ours = tf.reduce_sum(transformer.dense(x, kernel, bias) * upstream)
            plain = tf.reduce_sum((tf.matmul(x, kernel) + bias) * upstream)
        for ours_gradient, plain_gradient in zip(
            tape.gradient(ours, [x, kernel, bias]), tape.gradient(plain, [x, kernel, bias])
        ):
            np.testing.assert_allclose(ours_gradient, plain_gradient, rtol=1e-5, atol=1e-5)


def test_left_padding_does_not_change_a_prompts_logits(backbone):
    weights = families.read_weights(backbone)
    ids = np.array([[5, 6, 7, 8]], np.int32)
    padded = np.array([[0, 0, 5, 6, 7, 8]], np.int32)
    padded_mask = padded != 0

    def last_logits(token_ids, mask):
        hidden = transformer.forward(
            weights, token_ids, transformer.positions_from_mask(mask), transformer.causal_mask(mask)
        )
        return transformer.logits(weights, hidden)[:, -1]

    np.testing.assert_allclose(last_logits(ids, ids != 0), last_logits(padded, padded_mask), atol=1e-5)


def test_sampling_logprobs_match_a_teacher_forced_pass(backbone):
    ids, mask = _prompts()
    sampler = sampling.Sampler(backbone, end_id=2, pad_id=0, config=sampling.SamplingConfig(max_new_tokens=16))
    out = sampler.generate(ids, mask, [3, 4])
    logprobs, entropy = sampling.response_logprobs(backbone, ids, mask, out["token_ids"], out["mask"])
    difference = np.abs(logprobs.numpy() - out["logprobs"].numpy()).max()
    assert difference < sampling.LOGPROB_TOLERANCE
    assert np.all(entropy.numpy()[out["mask"].numpy()] > 0)
    # Rows that emitted the end token stop there: the end token is the last masked-in token.
    for row, row_mask in zip(out["token_ids"].numpy(), out["mask"].numpy()):
        if 2 in row[row_mask]:
            assert row[row_mask][-1] == 2 and list(row[row_mask]).count(2) == 1
    # Same seed, same samples; another seed, other samples.
    again = sampler.generate(ids, mask, [3, 4])
    np.testing.assert_array_equal(again["token_ids"], out["token_ids"])
    assert not np.array_equal(sampler.generate(ids, mask, [5, 6])["token_ids"], out["token_ids"])


def test_without_end_token_every_row_makes_max_new_tokens(backbone):
    ids, mask = _prompts()
    config = sampling.SamplingConfig(max_new_tokens=10, stop_at_end=False)
    out = sampling.Sampler(backbone, end_id=2, pad_id=0, config=config).generate(ids, mask, [0, 0])
    assert out["mask"].numpy().all() and out["token_ids"].shape == (4, 10)


def test_top_k_and_top_p_restrict_the_distribution():
    logits = tf.constant([[4.0, 3.0, 2.0, 1.0, 0.0]])
    top_k = sampling.filter_logits(logits, 1.0, top_k=2).numpy()
    assert np.isfinite(top_k[0, :2]).all() and np.isinf(top_k[0, 2:]).all()
    probabilities = tf.nn.softmax(logits).numpy()[0]  # 0.64, 0.24, 0.09, ...
    top_p = sampling.filter_logits(logits, 1.0, top_p=0.8).numpy()
    assert np.isfinite(top_p[0, :2]).all() and np.isinf(top_p[0, 2:]).all() and probabilities[0] < 0.8
    np.testing.assert_allclose(sampling.filter_logits(logits, 2.0).numpy(), logits.numpy() / 2)


def test_generic_backbones_need_their_causal_lm_and_bad_settings_are_refused():
    opt = keras_hub.models.OPTBackbone(
        vocabulary_size=40, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=24
    )
    with pytest.raises(UserInputError, match="give the Sampler its causal LM"):
        sampling.Sampler(opt, 2, 0)
    with pytest.raises(UserInputError, match="`top_p` must be in"):
        sampling.SamplingConfig(top_p=0.0)


def test_sequences_past_learned_positions_are_refused_before_sampling(backbone):
    """GPT-2 numbers 48 positions here: 8 prompt tokens + 40 new fit, + 41 would fail inside XLA's gather."""
    ids, mask = _prompts()
    fits = sampling.Sampler(backbone, 2, 0, sampling.SamplingConfig(max_new_tokens=40, stop_at_end=False))
    assert fits.generate(ids, mask, [0, 1])["token_ids"].shape == (4, 40)
    too_long = sampling.Sampler(backbone, 2, 0, sampling.SamplingConfig(max_new_tokens=41))
    expected = r"learned positions for 48 tokens, but sequences here need 49 \(8 prompt tokens plus max_new_tokens=41\)"
    with pytest.raises(UserInputError, match=expected):
        too_long.generate(ids, mask, [0, 1])


def test_value_head_reads_the_same_pass(backbone):
    from rlhf_tf.models.value import ValueHead

    ids, mask = _prompts()
    out = sampling.Sampler(backbone, 2, 0, sampling.SamplingConfig(max_new_tokens=6)).generate(ids, mask, [1, 1])
    head = ValueHead(hidden_dim=16)
    with tf.GradientTape() as tape:
        outputs = sampling.teacher_forced(backbone, ids, mask, out["token_ids"], out["mask"], value_head=head)
        loss = tf.reduce_sum(outputs["values"] ** 2) - tf.reduce_sum(outputs["logprobs"])
    assert outputs["values"].shape == (4, 6)
    assert np.all(outputs["values"].numpy()[~out["mask"].numpy()] == 0)
    gradients = tape.gradient(loss, head.trainable_variables + backbone.trainable_variables)
    assert all(gradient is not None for gradient in gradients[:2])
    np.testing.assert_allclose(outputs["logprobs"], out["logprobs"], atol=sampling.LOGPROB_TOLERANCE)
