"""Families without fast passes run every stage through the generic path: SFT -> reward -> PPO -> GRPO -> DPO on
tiny OPT, GPT-NeoX, Falcon and Phi-3 models, with the sampler's log-probs equal to a teacher-forced pass."""

import json

import numpy as np
import pytest

from rlhf_tf import training
from rlhf_tf.agents.language import dpo, policy_gradient, ppo, rl, sft
from rlhf_tf.data import pipelines
from rlhf_tf.models import families, sampling
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.reward import trainer

TINY = policy_lib.PolicyConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64)
LOOP = training.LoopConfig(steps=2, log_every=1, checkpoint_every=100, progress=False)


def _comparisons(path, count, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        word = ["great", "lovely", "fine"][rng.integers(3)]
        rows.append({"prompt": "Review:", "chosen": f" {word} film", "rejected": " awful film"})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _rollouts(policy, reward):
    return rl.RolloutConfig(
        policy=policy,
        reward=reward,
        task="reviews",
        num_prompts=64,
        num_eval_prompts=8,
        batch_size=8,
        max_prompt_tokens=12,
        max_new_tokens=6,
    )


@pytest.mark.parametrize("architecture", ["opt", "gpt_neox", "falcon", "phi3"])
def test_sft_reward_ppo_grpo_dpo_chain(architecture, tmp_path):
    policy_config = policy_lib.PolicyConfig(**{**TINY.__dict__, "architecture": architecture})
    sft_metrics = sft.train_sft(
        sft.SFTConfig(
            output_dir=str(tmp_path / "sft"),
            num_examples=64,
            num_eval_examples=16,
            policy=policy_config,
            loop=LOOP,
            num_samples=2,
            max_new_tokens=6,
            export=False,
            jit_compile=False,
            strategy="default",
        )
    )
    assert np.isfinite(sft_metrics["sft/eval_perplexity"])
    causal_lm, tokenizer = policy_lib.load_policy(tmp_path / "sft")
    assert type(causal_lm).__name__.lower().startswith(architecture.replace("_", "")[:3])
    assert not families.supports(causal_lm.backbone)

    # The generic sampler's log-probs are the teacher-forced ones.
    batch = next(iter(pipelines.prompt_batches(["A film that", "Plot:"], tokenizer, 8, 2)))
    ids, mask = batch["token_ids"], batch["padding_mask"]
    out = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, sampling.SamplingConfig(max_new_tokens=6))
    out = out.generate(ids, mask, [0, 1])
    forced = sampling.teacher_forced(causal_lm.backbone, ids, mask, out["token_ids"], out["mask"])
    assert np.abs(forced["logprobs"].numpy() - out["logprobs"].numpy()).max() < sampling.LOGPROB_TOLERANCE

    train = _comparisons(tmp_path / "train.jsonl", 48, 0)
    reward_metrics = trainer.train_reward(
        trainer.RewardConfig(
            output_dir=str(tmp_path / "rm"),
            train=train,
            eval=_comparisons(tmp_path / "eval.jsonl", 16, 1),
            init_from=str(tmp_path / "sft"),
            pipeline=trainer.pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=12, batch_size=8),
            epochs=0,
            loop=training.LoopConfig(steps=4, log_every=2, checkpoint_every=100, eval_every=4, progress=False),
            jit_compile=False,
            strategy="default",
        )
    )
    assert 0.0 <= reward_metrics["reward/eval_accuracy"] <= 1.0

    ppo_metrics = ppo.train_ppo(
        ppo.PPOConfig(
            output_dir=str(tmp_path / "ppo"),
            rollouts=_rollouts(str(tmp_path / "sft"), str(tmp_path / "rm")),
            hyperparameters=ppo.PPOHyperparameters(minibatch_size=4, ppo_epochs=1, jit_compile=False),
            loop=LOOP,
            num_samples=2,
            export=False,
            strategy="default",
        )
    )
    assert ppo_metrics["rl/steps"] == 2 and np.isfinite(ppo_metrics["rl/kl_to_reference"])

    grpo_metrics = policy_gradient.train_policy_gradient(
        policy_gradient.PolicyGradientConfig(
            output_dir=str(tmp_path / "grpo"),
            rollouts=_rollouts(str(tmp_path / "ppo"), "gold"),
            hyperparameters=policy_gradient.PolicyGradientHyperparameters(
                samples_per_prompt=4, minibatch_size=4, jit_compile=False
            ),
            loop=LOOP,
            num_samples=2,
            export=False,
            strategy="default",
        )
    )
    assert grpo_metrics["rl/steps"] == 2

    dpo_metrics = dpo.train_dpo(
        dpo.DPOConfig(
            output_dir=str(tmp_path / "dpo"),
            policy=str(tmp_path / "grpo"),
            data=train,
            epochs=0,
            task="",
            pipeline=trainer.pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=12, batch_size=8, buckets=(32,)),
            loop=LOOP,
            export=False,
        )
    )
    assert dpo_metrics["dpo/steps"] == 2 and np.isfinite(dpo_metrics["dpo/eval_loss"])
