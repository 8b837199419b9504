import json

import numpy as np
import pytest

from rlhf_tf import testing, training
from rlhf_tf.agents.language import kto
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import policy as policy_lib


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
