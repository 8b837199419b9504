"""The fast passes of every Llama-style family against keras-hub's own layers: logits, per-token log-probs, sampled
log-probs and every variable's gradient, in graph mode and under XLA; and the check catches a perturbed detail."""

import dataclasses

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf.models import families, passes, sampling, transformer
from rlhf_tf.models import policy as policy_lib

VOCABULARY = 64
BASE = policy_lib.PolicyConfig(
    num_layers=2, num_heads=4, num_key_value_heads=2, hidden_dim=32, intermediate_dim=48, max_sequence_length=64
)


def _gemma2_style():
    # Gemma 2's extras, absent from the Gemma 3 defaults: attention and final soft-caps, alternating windows,
    # hidden_dim / heads != head_dim for the query scale.
    return keras_hub.models.GemmaCausalLM(
        backbone=keras_hub.models.GemmaBackbone(
            vocabulary_size=VOCABULARY,
            num_layers=2,
            num_query_heads=4,
            num_key_value_heads=2,
            hidden_dim=32,
            intermediate_dim=48,
            head_dim=16,
            query_head_dim_normalize=False,
            use_post_ffw_norm=True,
            use_post_attention_norm=True,
            attention_logit_soft_cap=5.0,
            final_logit_soft_cap=3.0,
            use_sliding_window_attention=True,
            sliding_window_size=5,
        ),
        preprocessor=None,
    )


def _build(name):
    """A tiny causal LM whose windows (where the family has them) are shorter than the test's sequences."""
    keras.utils.set_random_seed(0)
    if name == "gemma2_style":
        causal_lm = _gemma2_style()
    else:
        causal_lm = policy_lib.build_policy(dataclasses.replace(BASE, architecture=name), VOCABULARY)
    for layer in causal_lm.backbone.transformer_layers:
        # keras-hub keeps the window in the attention layer, and Mistral's decoder masks with its own copy.
        for holder in (layer, getattr(layer, "attention", None), getattr(layer, "_self_attention_layer", None)):
            for attribute in ("sliding_window", "_sliding_window", "sliding_window_size"):
                if getattr(holder, attribute, None):
                    setattr(holder, attribute, 5)
    # Norm scales start at 1 (or 0 for Gemma's 1 + scale) and biases at 0: move every weight off its initial value
    # so that each detail shows in the outputs.
    rng = np.random.default_rng(0)
    for variable in causal_lm.backbone.weights:
        variable.assign(variable.numpy() + rng.normal(0, 0.1, variable.shape).astype(variable.dtype))
    return causal_lm


def _batch():
    """Left-padded prompts [4, 9] and right-padded responses [4, 7] (one row with an empty prompt tail)."""
    rng = np.random.default_rng(1)
    prompt_mask = np.arange(9)[None] >= np.array([0, 3, 6, 2])[:, None]
    response_mask = np.arange(7)[None] < np.array([7, 5, 7, 2])[:, None]
    prompt_ids = np.where(prompt_mask, rng.integers(3, VOCABULARY, (4, 9)), 0).astype(np.int32)
    response_ids = np.where(response_mask, rng.integers(3, VOCABULARY, (4, 7)), 0).astype(np.int32)
    return prompt_ids, prompt_mask, response_ids, response_mask


def _keras_hub_logits(causal_lm, prompt_ids, prompt_mask, response_ids, response_mask):
    """keras-hub's own logits for each row's prompt + response, laid out from index 0 (as keras-hub expects)."""
    rows, masks = [], []
    for p, pm, r, rm in zip(prompt_ids, prompt_mask, response_ids, response_mask):
        tokens = np.concatenate([p[pm], r[rm]])
        rows.append(np.pad(tokens, (0, 16 - len(tokens))))
        masks.append(np.arange(16) < len(tokens))
    hidden = causal_lm.backbone({"token_ids": np.stack(rows), "padding_mask": np.stack(masks)})
    return causal_lm.backbone.token_embedding(hidden, reverse=True).numpy()


def _max_errors(causal_lm, jit_compile, read=families.read_weights):
    """Max |ours - keras-hub| over real tokens for the logits and the response log-probs."""
    prompt_ids, prompt_mask, response_ids, response_mask = _batch()
    reference = _keras_hub_logits(causal_lm, prompt_ids, prompt_mask, response_ids, response_mask)

    @tf.function(jit_compile=jit_compile)
    def ours(ids, mask):
        weights = read(causal_lm.backbone)
        hidden = transformer.forward(weights, ids, transformer.positions_from_mask(mask), transformer.causal_mask(mask))
        return transformer.logits(weights, hidden)

    logits = ours(tf.concat([prompt_ids, response_ids], 1), tf.concat([prompt_mask, response_mask], 1)).numpy()
    logit_error = logprob_error = 0.0
    for row in range(4):
        real = np.concatenate([prompt_mask[row], response_mask[row]])
        count = int(real.sum())
        theirs = reference[row, :count]
        logit_error = max(logit_error, np.abs(logits[row][real] - theirs).max())
        # Response token t is predicted at the position before it.
        start = int(prompt_mask[row].sum()) - 1
        targets = response_ids[row][response_mask[row]]
        steps = np.arange(start, start + len(targets))
        ours_lp = tf.nn.log_softmax(logits[row][real][steps]).numpy()[np.arange(len(targets)), targets]
        theirs_lp = tf.nn.log_softmax(theirs[steps]).numpy()[np.arange(len(targets)), targets]
        logprob_error = max(logprob_error, np.abs(ours_lp - theirs_lp).max())
    return logit_error, logprob_error


FAST = ["llama3", "mistral", "qwen3", "gemma3"]
OTHER_FAST = ["llama", "qwen2", "gemma", "gemma2_style"]


@pytest.fixture(scope="module", params=FAST + OTHER_FAST)
def model(request):
    return request.param, _build(request.param)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_logits_and_logprobs_equal_keras_hub(model, jit_compile):
    name, causal_lm = model
    if jit_compile and name in OTHER_FAST:
        pytest.skip("XLA is checked on the four named families")
    assert families.supports(causal_lm.backbone)
    logit_error, logprob_error = _max_errors(causal_lm, jit_compile)
    assert logit_error < 1e-4 and logprob_error < 1e-4, (name, logit_error, logprob_error)


def test_sampled_logprobs_equal_teacher_forced(model):
    name, causal_lm = model
    prompt_ids, prompt_mask, _, _ = _batch()
    for jit_compile in (False, True) if name in FAST else (False,):
        config = sampling.SamplingConfig(max_new_tokens=10, jit_compile=jit_compile)
        out = sampling.Sampler(causal_lm, end_id=1, pad_id=0, config=config).generate(prompt_ids, prompt_mask, [3, 4])
        forced = tf.function(sampling.teacher_forced, jit_compile=jit_compile)(
            causal_lm.backbone, prompt_ids, prompt_mask, out["token_ids"], out["mask"]
        )
        assert out["mask"].numpy().sum() > 20
        error = np.abs(forced["logprobs"].numpy() - out["logprobs"].numpy()).max()
        assert error < sampling.LOGPROB_TOLERANCE, (name, jit_compile, error)


def test_gradients_equal_autodiff_through_keras_hub_layers(model):
    name, causal_lm = model
    backbone = causal_lm.backbone
    prompt_ids, prompt_mask, response_ids, response_mask = _batch()
    coefficients = tf.constant(np.random.default_rng(2).normal(size=response_ids.shape), tf.float32)

    def gradients(make_passes, jit_compile):
        @tf.function(jit_compile=jit_compile)
        def run():
            with tf.GradientTape() as tape:
                outputs = sampling.teacher_forced(
                    backbone, prompt_ids, prompt_mask, response_ids, response_mask, model_passes=make_passes()
                )
                loss = tf.reduce_sum(outputs["logprobs"] * coefficients)
            return [tf.convert_to_tensor(g) for g in tape.gradient(loss, backbone.trainable_variables)]

        return [g.numpy() for g in run()]

    expected = gradients(lambda: passes.GenericPasses(backbone), False)
    for jit_compile in (False, True) if name in FAST else (False,):
        got = gradients(lambda: passes.FastPasses(backbone), jit_compile)
        for variable, e, g in zip(backbone.trainable_variables, expected, got):
            np.testing.assert_allclose(g, e, atol=2e-5, rtol=1e-3, err_msg=f"{name} {variable.path} xla={jit_compile}")


def _perturbed(read_layer):
    """`families.read_weights` with each layer passed through `read_layer`."""

    def read(backbone):
        weights = families.read_weights(backbone)
        weights.layers = [read_layer(layer) for layer in weights.layers]
        return weights

    return read


def _scaled_positions(layer):
    return dataclasses.replace(layer, rotary=lambda x, positions, rotary=layer.rotary: rotary(x, 2 * positions))


def _plain_norm(layer):
    # The attention norm without its learned scale (x / rms(x)).
    return dataclasses.replace(
        layer, attention_norm=lambda x: x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), -1, keepdims=True) + 1e-6)
    )


def _no_qk_norm(layer):
    return dataclasses.replace(layer, query_norm=None, key_norm=None)


def _window_off(layer):
    return dataclasses.replace(layer, sliding_window=None)


@pytest.mark.parametrize(
    "name, perturbation",
    [
        ("llama3", _scaled_positions),
        ("llama3", _plain_norm),
        ("gemma3", _plain_norm),
        ("gemma3", _no_qk_norm),
        ("qwen3", _no_qk_norm),
        ("mistral", _window_off),
    ],
)
def test_the_check_fails_when_a_rotary_or_norm_detail_is_perturbed(name, perturbation):
    causal_lm = _build(name)
    logit_error, _ = _max_errors(causal_lm, False, read=_perturbed(perturbation))
    assert logit_error > 1e-3, (name, perturbation.__name__, logit_error)


def test_generic_path_numbers_positions_from_each_rows_first_token():
    # The generic pass shifts rows so their real tokens start at index 0, and back: with left padding it gives
    # the same logits as the same rows right-padded.
    causal_lm = policy_lib.build_policy(dataclasses.replace(BASE, architecture="opt", num_key_value_heads=0), 40)
    ids = np.array([[0, 0, 5, 6, 7], [4, 5, 6, 7, 8]], np.int32)
    mask = ids > 0
    generic = passes.GenericPasses(causal_lm.backbone)
    left = generic.logits(generic.hidden(ids, mask)).numpy()
    right = generic.logits(generic.hidden(np.array([[5, 6, 7, 0, 0]], np.int32), np.array([[1, 1, 1, 0, 0]], bool)))
    np.testing.assert_allclose(left[0, 2:], right.numpy()[0, :3], atol=1e-5)
    assert not np.allclose(left[0, 2:], left[1, 2:])


def test_a_model_whose_cache_disagrees_samples_through_its_full_call():
    # keras-hub 0.32's GPT-NeoX rotates cached queries as if at position 0: measurable once weights are off their
    # small initial values. The sampler decodes such models with the full call, so its log-probs still equal the
    # teacher-forced pass.
    causal_lm = _build("gpt_neox")
    assert not sampling.cache_matches_full_call(causal_lm)
    assert sampling.cache_matches_full_call(_build("opt"))
    try:
        sampling.CACHE_DISAGREES, known = (), sampling.CACHE_DISAGREES
        assert not sampling.cache_matches_full_call(causal_lm), "keras-hub fixed GPT-NeoX's cache: drop it"
    finally:
        sampling.CACHE_DISAGREES = known
    prompt_ids, prompt_mask, _, _ = _batch()
    out = sampling.Sampler(causal_lm, 1, 0, sampling.SamplingConfig(max_new_tokens=6)).generate(
        prompt_ids, prompt_mask, [0, 0]
    )
    forced = sampling.teacher_forced(causal_lm.backbone, prompt_ids, prompt_mask, out["token_ids"], out["mask"])
    assert np.abs(forced["logprobs"].numpy() - out["logprobs"].numpy()).max() < sampling.LOGPROB_TOLERANCE
