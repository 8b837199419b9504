import json
import math

import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import testing, training
from rlhf_tf.agents import kto
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import policy as policy_lib


def test_kto_loss_by_hand():
    logprobs = tf.constant([-1.0, -3.0])
    reference = tf.constant([-2.0, -2.0])
    losses, rewards, z = kto.kto_loss(logprobs, reference, tf.constant([1.0, 0.0]), beta=1.0)
    assert list(rewards.numpy()) == [1.0, -1.0] and float(z) == 0.0  # the batch mean (0) clamped at 0
    sigmoid = lambda x: 1 / (1 + math.exp(-x))
    np.testing.assert_allclose(losses.numpy(), [1 - sigmoid(1.0), 1 - sigmoid(1.0)], rtol=1e-6)
    # A desirable response the policy already prefers more than the reference costs less than one it does not.
    worse, _, _ = kto.kto_loss(tf.constant([-3.0, -1.0]), reference, tf.constant([1.0, 0.0]), beta=1.0)
    assert float(worse[0]) > float(losses[0]) and float(worse[1]) > float(losses[1])


def _ratings(count, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        good = bool(rng.integers(2))
        response = (" yes" + "s" * int(rng.integers(3))) if good else (" no" + "o" * int(rng.integers(3)))
        rows.append({"prompt": f"Q{rng.integers(1000)}:", "response": response, "score": float(good)})
    return rows


def test_kto_learns_from_thumbs_and_refuses_non_binary_scores(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    causal_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=2, hidden_dim=32)
    policy_lib.save_policy(tmp_path / "sft", causal_lm, tokenizer)
    for name, count, seed in (("train.jsonl", 256, 0), ("eval.jsonl", 64, 1)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in _ratings(count, seed)))
    base = kto.KTOConfig(output_dir=str(tmp_path / "kto"), policy=str(tmp_path / "sft"), data="x")
    import dataclasses

    config = dataclasses.replace(
        base,
        data=str(tmp_path / "train.jsonl"),
        eval_data=str(tmp_path / "eval.jsonl"),
        beta=0.5,
        learning_rate=3e-3,
        epochs=4.0,
        pipeline=dataclasses.replace(base.pipeline, seq_len=24, max_prompt_tokens=8, batch_size=32, buckets=(24,)),
        loop=training.LoopConfig(steps=1, log_every=8, checkpoint_every=1000, progress=False),
        task="",
        export=False,
    )
    metrics = kto.train_kto(config)
    assert metrics["kto/steps"] == 32
    assert metrics["kto/eval_reward_auc"] > 0.9  # untrained: every implicit reward is 0, AUC 0.5
    assert metrics["kto/desirable_reward"] > metrics["kto/undesirable_reward"]

    (tmp_path / "stars.jsonl").write_text(json.dumps({"prompt": "a", "response": "b", "score": 4.0}) + "\n")
    with pytest.raises(UserInputError, match="binary ratings"):
        kto.train_kto(dataclasses.replace(config, data=str(tmp_path / "stars.jsonl"), output_dir=str(tmp_path / "k2")))
