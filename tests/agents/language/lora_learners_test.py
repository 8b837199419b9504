"""LoRA in the learners: PPO checkpoints the adapters alone and resumes exactly, its reference is the starting
policy (the frozen base), the base stays frozen, a run cannot resume with other LoRA settings; DPO with adapters
learns a preference; a reward model with adapters exports what it scored."""

import dataclasses
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import tasks, testing, training
from rlhf_tf.agents.language import dpo, ppo, rl
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import lora
from rlhf_tf.models import policy as policy_lib

ADAPTERS = lora.LoraConfig(rank=4, alpha=8)


def _pairs(count, seed):
    """Pairs whose chosen answer is always a "yes" and rejected a "no" (as in dpo_test)."""
    rng = np.random.default_rng(seed)
    return [
        {
            "prompt": f"Q{rng.integers(1000)}:",
            "chosen": " yes" + "s" * int(rng.integers(3)),
            "rejected": " no" + "o" * int(rng.integers(3)),
        }
        for _ in range(count)
    ]


def _write(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


@pytest.fixture(scope="module")
def saved_policy(tmp_path_factory):
    tokenizer = tasks.get_task("reviews").tokenizer()
    path = tmp_path_factory.mktemp("policy") / "start"
    causal_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=1, hidden_dim=32, max_sequence_length=64)
    policy_lib.save_policy(path, causal_lm, tokenizer)
    return str(path)


def _ppo(output_dir, policy, steps, adapters=ADAPTERS):
    return ppo.PPOConfig(
        output_dir=str(output_dir),
        rollouts=rl.RolloutConfig(
            policy=policy,
            reward="gold",
            task="reviews",
            num_prompts=200,
            num_eval_prompts=16,
            batch_size=16,
            max_prompt_tokens=16,
            max_new_tokens=8,
        ),
        hyperparameters=ppo.PPOHyperparameters(learning_rate=1e-2, minibatch_size=8, ppo_epochs=2),
        loop=training.LoopConfig(steps=steps, log_every=1, checkpoint_every=1, progress=False, seed=3),
        num_samples=16,
        export=False,  # the merged export is tested in tests/models/lora_test.py
        lora=adapters,
    )


def _samples(run):
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


def test_ppo_with_adapters_resumes_exactly_and_keeps_the_base_as_reference(saved_policy, tmp_path):
    whole = ppo.train_ppo(_ppo(tmp_path / "whole", saved_policy, 2))
    ppo.train_ppo(_ppo(tmp_path / "split", saved_policy, 1))
    resumed = ppo.train_ppo(_ppo(tmp_path / "split", saved_policy, 2))
    assert resumed["rl/rollout_gold_score"] == pytest.approx(whole["rl/rollout_gold_score"], abs=1e-6)

    start, _ = policy_lib.load_policy(saved_policy)
    # Checkpoints hold the adapters and the value head with their Adam moments, not the frozen base.
    saved = tf.train.list_variables(tf.train.latest_checkpoint(str(tmp_path / "whole" / "ckpt")))
    model_size = sum(int(np.prod(w.shape)) for w in start.backbone.weights)
    assert sum(int(np.prod(shape)) for _, shape in saved) < 0.1 * model_size
    assert [shape for _, shape in saved].count([32, 2, 4]) == 2 * 3  # query and value A, each with two moments

    trained, _ = policy_lib.load_policy(tmp_path / "whole")
    split, _ = policy_lib.load_policy(tmp_path / "split")
    changed = set()
    for variable, before, after, other in zip(
        start.backbone.weights, start.backbone.get_weights(), trained.backbone.get_weights(), split.get_weights()
    ):
        np.testing.assert_allclose(after, other, atol=1e-6)  # resumed == uninterrupted
        if not np.array_equal(before, after):
            changed.add(variable.path.split("/")[-2])
    assert changed == {"query", "value"}  # only the adapted kernels moved (merged into policy/); biases did not

    # The reference and the win-rate baseline are the starting policy: the same baseline samples as a full
    # fine-tuning run holding a separate copy of it, with the same seed.
    ppo.train_ppo(_ppo(tmp_path / "full", saved_policy, 1, adapters=lora.LoraConfig()))
    baseline = [row["baseline"] for row in _samples(tmp_path / "whole")]
    assert baseline == [row["baseline"] for row in _samples(tmp_path / "full")]
    assert [row["policy"] for row in _samples(tmp_path / "whole")] != baseline
    assert whole["rl/kl_to_reference"] > 0.01

    with pytest.raises(UserInputError, match="trained with LoRA .* asks for no LoRA"):
        ppo.train_ppo(_ppo(tmp_path / "whole", saved_policy, 3, adapters=lora.LoraConfig()))


def test_dpo_with_adapters_learns_a_preference(tmp_path):
    tokenizer = resolve_tokenizer("byte")
    start = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=2, hidden_dim=32)
    policy_lib.save_policy(tmp_path / "sft", start, tokenizer)
    _write(tmp_path / "train.jsonl", _pairs(256, 0))
    _write(tmp_path / "eval.jsonl", _pairs(64, 1))
    base = dpo.DPOConfig(output_dir=str(tmp_path / "dpo"), policy=str(tmp_path / "sft"), data="x")
    config = dpo.DPOConfig(
        output_dir=str(tmp_path / "dpo"),
        policy=str(tmp_path / "sft"),
        data=str(tmp_path / "train.jsonl"),
        eval_data=str(tmp_path / "eval.jsonl"),
        beta=0.5,
        learning_rate=2e-2,
        epochs=4.0,
        pipeline=dataclasses.replace(base.pipeline, seq_len=24, max_prompt_tokens=8, batch_size=32, buckets=(24,)),
        loop=training.LoopConfig(steps=1, log_every=8, checkpoint_every=1000, progress=False),
        task="",
        export=False,
        lora=lora.LoraConfig(rank=8, targets=("query", "value", "attention_output")),
    )
    metrics = dpo.train_dpo(config)
    assert metrics["dpo/eval_reward_accuracy"] > 0.9  # untrained: 0 (every implicit reward is exactly 0)
    assert metrics["dpo/eval_loss"] < math.log(2) - 0.2  # untrained: log 2
    trained, _ = policy_lib.load_policy(tmp_path / "dpo")
    for variable, before, after in zip(start.backbone.weights, start.backbone.get_weights(), trained.get_weights()):
        if variable.path.split("/")[-2] not in ("query", "value", "attention_output"):
            np.testing.assert_array_equal(before, after, err_msg=variable.path)


def test_reward_model_with_adapters_exports_what_it_scored(tmp_path):
    from rlhf_tf.data import pipelines
    from rlhf_tf.reward import loading, trainer

    tokenizer = resolve_tokenizer("byte")
    policy_lib.save_policy(
        tmp_path / "sft", testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=4, hidden_dim=32), tokenizer
    )
    _write(tmp_path / "train.jsonl", _pairs(160, 0))
    base = trainer.RewardConfig(output_dir="-", train="-")
    config = trainer.RewardConfig(
        output_dir=str(tmp_path / "rm"),
        train=str(tmp_path / "train.jsonl"),
        init_from=str(tmp_path / "sft"),
        pipeline=dataclasses.replace(base.pipeline, seq_len=24, max_prompt_tokens=8, batch_size=16),
        loop=training.LoopConfig(steps=30, log_every=10, checkpoint_every=10, eval_every=10, progress=False),
        epochs=0,
        learning_rate=1e-2,
        lora=lora.LoraConfig(rank=4),
    )
    metrics, model, _ = trainer.fit_reward(config)
    assert metrics["reward/eval_accuracy"] > 0.9  # the chosen answers all start with " yes"
    prompts, responses = ["Q1:", "Q2:", "Q3:"], [" yes", " no", " yess"]

    def keras_scores(reward_model):
        sequences, _, _ = pipelines.join_prompt_and_response(
            tokenizer.tokenize(prompts), tokenizer.tokenize(responses), 24, 8, tokenizer.end_id
        )
        ids = sequences.to_tensor(shape=[len(prompts), 24])
        mask = tf.sequence_mask(sequences.row_lengths(), 24)
        return reward_model.normalized(reward_model({"token_ids": ids, "padding_mask": mask})).numpy()

    in_run = keras_scores(model)
    exported = tf.saved_model.load(str(tmp_path / "rm" / "export" / "reward"))
    served = exported.signatures["serving_default"](prompt=tf.constant(prompts), response=tf.constant(responses))
    np.testing.assert_allclose(served["score"].numpy(), in_run, atol=1e-5)
    # Another command (PPO's critic from the reward model) rebuilds it without adapters from the final checkpoint.
    reloaded = loading.load_model(str(tmp_path / "rm"), tf.distribute.get_strategy())
    np.testing.assert_allclose(keras_scores(reloaded), in_run, atol=1e-5)
