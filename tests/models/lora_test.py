"""LoRA on keras-hub's adapters: only the adapters train, the fast passes read them (values and gradients equal to
keras-hub's own call), adapters off is exactly the base, merging changes nothing served, bad settings are refused."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import export, testing
from rlhf_tf.data import pipelines
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import lora, passes, sampling
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.training.run_directory import RunDirectory

VOCABULARY = 64
BASE = policy_lib.PolicyConfig(
    num_layers=2, num_heads=4, num_key_value_heads=2, hidden_dim=32, intermediate_dim=48, max_sequence_length=64
)
TARGETS = ("query", "value", "feedforward_output_dense")  # the attention's query and value, the MLP's output


def _adapted(architecture, vocabulary=VOCABULARY):
    """A tiny model with rank-4 adapters on three kinds of layer, B moved off its zero start (so they matter)."""
    keras.utils.set_random_seed(0)
    causal_lm = policy_lib.build_policy(dataclasses.replace(BASE, architecture=architecture), vocabulary)
    base_weights = [w.numpy() for w in causal_lm.backbone.weights]
    lora.enable(causal_lm, lora.LoraConfig(rank=4, alpha=8, targets=TARGETS), "tiny")
    rng = np.random.default_rng(1)
    for variable in lora.adapters(causal_lm):
        variable.assign(rng.normal(0, 0.2, variable.shape).astype(np.float32))
    return causal_lm, base_weights


def _batch():
    rng = np.random.default_rng(2)
    prompt_mask = np.arange(8)[None] >= np.array([0, 3, 5, 1])[:, None]
    response_mask = np.arange(6)[None] < np.array([6, 4, 6, 2])[:, None]
    prompt_ids = np.where(prompt_mask, rng.integers(3, VOCABULARY, (4, 8)), 0).astype(np.int32)
    response_ids = np.where(response_mask, rng.integers(3, VOCABULARY, (4, 6)), 0).astype(np.int32)
    return prompt_ids, prompt_mask, response_ids, response_mask


@pytest.mark.parametrize("architecture", ["gpt2", "llama3"])  # fused multi-head QKV; grouped-query
def test_only_adapters_train_and_the_fast_passes_read_them(architecture):
    causal_lm, base_weights = _adapted(architecture)
    backbone = causal_lm.backbone
    # Only the adapters train: A and B of each targeted layer (3 per block), nothing else, biases included.
    trainable = causal_lm.trainable_variables
    assert len(trainable) == 2 * 3 * BASE.num_layers
    assert all(v.path.endswith(("lora_kernel_a", "lora_kernel_b")) for v in trainable)
    assert lora.describe(causal_lm)["lora/trainable_fraction"] < 0.5

    batch = _batch()
    coefficients = tf.constant(np.random.default_rng(3).normal(size=batch[2].shape), tf.float32)

    def run(make_passes, jit_compile, adapters=True):
        @tf.function(jit_compile=jit_compile)
        def graph():
            with tf.GradientTape() as tape:
                outputs = sampling.teacher_forced(backbone, *batch, model_passes=make_passes())
                loss = tf.reduce_sum(outputs["logprobs"] * coefficients)
            return outputs["logprobs"], tape.gradient(loss, trainable)

        if not adapters:
            graph = lora.base_function(graph, causal_lm)
        logprobs, grads = graph()
        return logprobs.numpy(), [None if g is None else g.numpy() for g in grads]

    expected_logprobs, expected_grads = run(lambda: passes.GenericPasses(backbone), False)
    for jit_compile in (False, True):
        logprobs, grads = run(lambda: passes.FastPasses(backbone), jit_compile)
        np.testing.assert_allclose(logprobs, expected_logprobs, atol=1e-4)
        for variable, e, g in zip(trainable, expected_grads, grads):
            np.testing.assert_allclose(g, e, atol=2e-5, rtol=1e-3, err_msg=f"{architecture} {variable.path}")

    # Adapters off is the base model exactly, traced or not; with them on the outputs move.
    off, grads_off = run(lambda: passes.FastPasses(backbone), True, adapters=False)
    assert grads_off == [None] * len(trainable)  # the base pass does not touch the adapters
    fresh = policy_lib.build_policy(dataclasses.replace(BASE, architecture=architecture), VOCABULARY)
    fresh.backbone.set_weights(base_weights)
    plain = tf.function(lambda: sampling.teacher_forced(fresh.backbone, *batch)["logprobs"], jit_compile=True)()
    np.testing.assert_allclose(off, plain.numpy(), atol=1e-5)
    assert np.abs(off - expected_logprobs).max() > 0.05
    with lora.adapters_off(causal_lm):
        ids = tf.constant(batch[0])
        eager_off = backbone({"token_ids": ids, "padding_mask": tf.ones_like(ids, tf.bool)}).numpy()
    np.testing.assert_array_equal(
        eager_off, fresh.backbone({"token_ids": ids, "padding_mask": tf.ones_like(ids, tf.bool)}).numpy()
    )


def test_merged_model_and_its_export_serve_what_the_adapted_model_samples(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    causal_lm, _ = _adapted("gpt2", tokenizer.vocabulary_size)
    texts = ["great value for", "the plot of this", "I would not buy", "a", "shipping was slow and", "solid"]
    batch = next(iter(pipelines.prompt_batches(texts, tokenizer, 8, 8)))
    prompts, mask = batch["token_ids"], batch["padding_mask"]
    sampled = sampling.SamplingConfig(max_new_tokens=12)
    greedy = sampling.SamplingConfig(max_new_tokens=12, top_k=1)
    before = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, sampled).generate(prompts, mask, [5, 6])
    before_greedy = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, greedy).generate(
        prompts, mask, [0, 0]
    )

    expected = tokenizer.detokenize(before_greedy["token_ids"], before_greedy["mask"]).numpy()
    assert len(set(expected)) > 1

    lora.merge(causal_lm)
    after = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, sampled).generate(prompts, mask, [5, 6])
    np.testing.assert_array_equal(after["token_ids"].numpy(), before["token_ids"].numpy())
    np.testing.assert_allclose(after["logprobs"].numpy(), before["logprobs"].numpy(), atol=1e-6)

    # The export holds plain kernels (no adapter variables) and serves the adapted model's responses.
    path = export.export_policy(causal_lm, tokenizer, str(tmp_path / "policy"), greedy, max_prompt_tokens=8)
    loaded = tf.saved_model.load(path)
    saved_variables = [name for name, _ in tf.train.list_variables(f"{path}/variables/variables")]
    assert saved_variables and not [name for name in saved_variables if "lora" in name], saved_variables
    served = loaded.signatures["serving_default"](prompt=tf.constant(texts))["response"].numpy()
    assert list(served) == list(expected)

    # policy/ as saved after the run is the merged model too.
    policy_lib.save_policy(tmp_path / "saved", causal_lm, tokenizer)
    reloaded, _ = policy_lib.load_policy(tmp_path / "saved")
    assert not lora.is_enabled(reloaded)
    ids = tf.concat([prompts, before["token_ids"]], 1)
    inputs = {"token_ids": ids, "padding_mask": tf.ones_like(ids, tf.bool)}
    np.testing.assert_allclose(reloaded(inputs).numpy(), causal_lm(inputs).numpy(), atol=1e-5)


def test_bad_targets_ranks_and_resumes_are_refused_before_training(tmp_path):
    causal_lm = testing.tiny_causal_lm(VOCABULARY, hidden_dim=32)
    with pytest.raises(UserInputError, match=r"no layer named dense_q.*attention_output.*--lora_targets"):
        lora.enable(causal_lm, lora.LoraConfig(rank=2, targets=("query", "dense_q")), "my-model")
    with pytest.raises(
        UserInputError, match=r"--lora_rank=20 is larger than my-model's (query|value) layer .*at most 16"
    ):
        lora.enable(causal_lm, lora.LoraConfig(rank=20), "my-model")
    assert not lora.is_enabled(causal_lm)  # refused before any adapter was added

    run = RunDirectory(str(tmp_path / "run"))
    run.write_config({"lora": {"rank": 8, "alpha": 0.0, "targets": []}, "loop": {"steps": 1}})
    run.write_config({"lora": {"rank": 8, "alpha": 0.0, "targets": []}, "loop": {"steps": 2}})  # other changes: fine
    with pytest.raises(UserInputError, match=r"trained with LoRA .*'rank': 8.*asks for no LoRA"):
        run.write_config({"lora": {"rank": 0, "alpha": 0.0, "targets": []}, "loop": {"steps": 2}})
