import dataclasses
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import testing, training
from rlhf_tf.agents.language import dpo
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.training import run_directory


def _pairs(count, seed):
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(count):
        prompt = f"Q{rng.integers(1000)}:"
        records.append(
            {
                "prompt": prompt,
                "chosen": " yes" + "s" * int(rng.integers(3)),
                "rejected": " no" + "o" * int(rng.integers(3)),
            }
        )
    return records


def test_dpo_learns_a_preference_and_its_implicit_reward_ranks_held_out_pairs(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    policy_lib.save_policy(
        tmp_path / "sft", testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=2, hidden_dim=32), tokenizer
    )
    for name, count, seed in (("train.jsonl", 256, 0), ("eval.jsonl", 64, 1)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in _pairs(count, seed)))
    base = dpo.DPOConfig(output_dir=str(tmp_path / "dpo"), policy=str(tmp_path / "sft"), data="x")
    config = dpo.DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        policy=str(tmp_path / "sft"),
        data=str(tmp_path / "train.jsonl"),
        eval_data=str(tmp_path / "eval.jsonl"),
        beta=0.5,
        learning_rate=3e-3,
        epochs=4.0,
        pipeline=training_pipeline(base),
        loop=training.LoopConfig(steps=1, log_every=8, checkpoint_every=1000, progress=False),
        task="",
        export=False,
    )
    metrics = dpo.train_dpo(config)
    assert metrics["dpo/steps"] == 32 and metrics["dpo/train_pairs"] == 256
    assert metrics["dpo/eval_reward_accuracy"] > 0.9  # untrained: 0 (every implicit reward is exactly 0)
    assert metrics["dpo/eval_loss"] < math.log(2) - 0.2  # untrained: log 2
    assert metrics["dpo/eval_reward_margin"] > 0
    scalars = training.read_scalars(str(tmp_path / "dpo" / "tb"))
    assert scalars["dpo/eval_reward_accuracy"][0][1] < scalars["dpo/eval_reward_accuracy"][-1][1] + 1e-9


def test_pairs_longer_than_the_policys_positions_are_refused_before_training(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    policy_lib.save_policy(tmp_path / "sft", testing.tiny_causal_lm(tokenizer.vocabulary_size), tokenizer)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _pairs(16, 0)))
    base = dpo.DPOConfig(output_dir=str(tmp_path / "dpo"), policy=str(tmp_path / "sft"), data="x")
    config = dpo.DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        policy=str(tmp_path / "sft"),
        data=str(tmp_path / "train.jsonl"),
        pipeline=dataclasses.replace(base.pipeline, seq_len=40, max_prompt_tokens=8, batch_size=8, buckets=(40,)),
        task="",
        export=False,
    )
    expected = r"learned positions for 32 tokens, but sequences here need 40 \(the pipeline's seq_len\)"
    with pytest.raises(UserInputError, match=expected):
        dpo.train_dpo(config)
    assert not (tmp_path / "dpo" / run_directory.CHECKPOINTS).exists()


def test_bfloat16_pair_losses_stay_close_to_float32_and_run_as_a_graph_on_cpu(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    causal_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=3, hidden_dim=32)
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, tokenizer.vocabulary_size - 1, size=(4, 2, 24))
    response_mask = np.zeros((4, 2, 24), bool)
    response_mask[..., 8:] = True
    batch = {
        "token_ids": tf.constant(token_ids, tf.int32),
        "padding_mask": tf.ones((4, 2, 24), tf.bool),
        "response_mask": tf.constant(response_mask),
        "reference_logprobs": tf.constant(rng.normal(-60.0, 3.0, size=(4, 2)), tf.float32),
    }
    fp32, bf16 = (dpo.DPOConfig(output_dir="x", policy="p", data="d", compute_dtype=d) for d in ("float32", "bfloat16"))
    assert fp32.use_xla and not bf16.use_xla  # XLA:CPU would run bf16 dots through float32 kernels
    results = {}
    for config in (fp32, bf16):
        pair_losses = dpo.pair_losses_fn(causal_lm.backbone, 0.1, "sigmoid", 0.0, config.pass_dtype)
        results[config.compute_dtype] = [t.numpy() for t in tf.function(pair_losses, jit_compile=config.use_xla)(batch)]
    for exact, approximate in zip(results["float32"], results["bfloat16"]):
        assert approximate.dtype == np.float32
        np.testing.assert_allclose(approximate, exact, atol=0.05)
    # The implicit rewards differ pair to pair in float32, and bf16 keeps their order.
    chosen_minus_rejected = results["float32"][1] - results["float32"][2]
    assert np.ptp(chosen_minus_rejected) > 0.05
    np.testing.assert_array_equal(
        np.sign(results["bfloat16"][1] - results["bfloat16"][2]), np.sign(chosen_minus_rejected)
    )
    with pytest.raises(ValueError, match="compute_dtype"):
        dpo.DPOConfig(output_dir="x", policy="p", data="d", compute_dtype="float16")


def training_pipeline(base):
    return dataclasses.replace(base.pipeline, seq_len=24, max_prompt_tokens=8, batch_size=32, buckets=(24,))


def test_online_dpo_raises_a_toy_reward(toy_collector):
    tokenizer = resolve_tokenizer("byte")
    batch, prompt, response = 32, 8, 8
    policy_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0, hidden_dim=32)
    reference_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0, hidden_dim=32)

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        hits = tf.logical_and(response_ids < 64, response_mask)  # ids 0-63: a quarter of the byte vocabulary
        return tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)

    collector = toy_collector(policy_lm, reward_fn, batch, samples_per_prompt=2, prompt=prompt, response=response)
    learner = dpo.OnlineDPOLearner(
        policy_lm,
        reference_lm,
        tokenizer.end_id,
        dpo.OnlineDPOHyperparameters(beta=0.1, learning_rate=3e-3, minibatch_size=4, missing_end_penalty=0.0),
    )
    history = [learner.update(collector.collect(), iteration) for iteration in range(20)]
    assert all(np.isfinite(value) for metrics in history for value in metrics.values())
    early = np.mean([m["score"] for m in history[:2]])
    late = np.mean([m["score"] for m in history[-3:]])
    # Untrained: about 2 of 8 tokens below 64. Pairs with equal scores are skipped.
    assert late > early + 2.5, (early, late)
    assert late > 4.5
