"""KTO (Ethayarajh et al. 2024): a policy learns from unpaired thumbs-up / thumbs-down feedback.

Data: rating records `{"prompt", "response", "score"}` with a binary score (1: desirable, 0: undesirable), the
form the feedback store exports thumbs in. The loss, with its formula, is in `kto_losses`; lambda_D and lambda_U
default to balancing the two classes (lambda_D n_D = lambda_U n_U). Reference log-probs are computed once before
training.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from rlhf_tf import configs, training
from rlhf_tf.agents.language import dpo, kto_losses, offline
from rlhf_tf.data import pipelines
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import lora


@dataclasses.dataclass(frozen=True)
class KTOConfig(offline.OfflineConfig):
    """`rlhf-tf kto`: learn a policy from binary ratings. The shared fields: `offline.OfflineConfig` (`data` and
    `eval_data` hold rating records with scores 0 or 1).

    Attributes:
      desirable_weight, undesirable_weight: lambda_D, lambda_U; 0 balances them from the class counts.
    """

    desirable_weight: float = 0.0
    undesirable_weight: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        configs.require_non_negative(desirable_weight=self.desirable_weight, undesirable_weight=self.undesirable_weight)


def _tokenized(records, config, tokenizer, reference_backbone, path):
    scores = {record.score for record in records}
    if not scores <= {0.0, 1.0}:
        raise UserInputError(
            f"KTO needs binary ratings (score 0 or 1, thumbs down or up). Received scores {sorted(scores)[:5]} "
            f"in {path}"
        )
    fixed = dataclasses.replace(
        config.pipeline, buckets=(config.pipeline.seq_len,), repeat=False, shuffle_buffer=0, drop_remainder=False
    )
    dataset = pipelines.rating_dataset_fn(pipelines.TextSource(records, "rating"), fixed, tokenizer)(None)
    dataset = dataset.map(lambda batch: {**batch, "desirable": tf.cast(batch["score"] > 0.5, tf.float32)})
    reference = dpo.reference_pass(reference_backbone, config)
    return offline.with_reference(dataset, reference, ("token_ids", "padding_mask", "response_mask", "desirable"))


def train_kto(config):
    """Runs KTO; returns the final metrics (also in metrics.json)."""
    strategy = training.create_strategy(config.strategy)
    train, evaluation, stats = offline.load_split(config, "rating")
    loop_config = offline.loop_config(config, len(train))
    loop = training.TrainLoop(
        loop_config, config.output_dir, strategy=strategy, run_config=config, metrics_prefix="kto"
    )
    causal_lm, reference_lm, tokenizer, optimizer = offline.policies_and_optimizer(config, strategy, loop_config.steps)
    data = _tokenized(train, config, tokenizer, reference_lm.backbone, config.data)
    held_out = _tokenized(evaluation, config, tokenizer, reference_lm.backbone, config.eval_data or config.data)
    share = float(data["desirable"].mean())
    desirable_weight = config.desirable_weight or (1.0 if share <= 0.5 else (1 - share) / max(share, 1e-6))
    undesirable_weight = config.undesirable_weight or (1.0 if share >= 0.5 else share / max(1 - share, 1e-6))

    def batch_loss(batch):
        logprobs = dpo.sequence_logprobs(
            causal_lm.backbone, batch["token_ids"], batch["padding_mask"], batch["response_mask"], config.pass_dtype
        )
        return kto_losses.kto_loss(
            logprobs, batch["reference_logprobs"], batch["desirable"], config.beta, desirable_weight, undesirable_weight
        )

    def loss_fn(batch):
        losses, rewards, z = batch_loss(batch)
        desirable = batch["desirable"]
        return training.global_mean(losses), {
            "desirable_reward": training.global_mean(rewards, desirable),
            "undesirable_reward": training.global_mean(rewards, 1.0 - desirable),
            "reference_point": training.global_mean(z),
        }

    step = training.GradientStep(
        loss_fn, causal_lm.trainable_variables, optimizer, clip_norm=config.clip_norm, jit_compile=config.use_xla
    )

    evaluate_batch = tf.function(lambda batch: batch_loss(batch)[:2], jit_compile=config.use_xla)

    def evaluate(step_number):
        del step_number
        losses, rewards = [], []
        for batch in offline.evaluation_batches(held_out, config.pipeline.batch_size):
            loss, reward = evaluate_batch(batch)
            losses.append(loss.numpy())
            rewards.append(reward.numpy())
        losses, rewards = np.concatenate(losses), np.concatenate(rewards)
        up = held_out["desirable"] > 0.5
        return {
            "kto/eval_loss": float(losses.mean()),
            # How well the implicit reward separates thumbs up from thumbs down: AUC over all (up, down) pairs.
            "kto/eval_reward_auc": _auc(rewards[up], rewards[~up]),
        }

    evaluate_with_frontier, make_evaluator = offline.with_frontier(
        evaluate, config, loop, causal_lm, reference_lm, tokenizer
    )
    metrics = loop.run(
        step,
        offline.dataset_fn(data, config.pipeline.batch_size, config.loop.seed),
        checkpoint={"policy": lora.trainable_state(causal_lm), "optimizer": optimizer},
        evaluate=evaluate_with_frontier,
        description="kto",
    )
    metrics.update(stats)
    metrics["kto/desirable_share"] = share
    return offline.finish(config, loop, causal_lm, reference_lm, tokenizer, metrics, make_evaluator)


def _auc(positives, negatives):
    if not len(positives) or not len(negatives):
        return float("nan")
    wins = (positives[:, None] > negatives[None, :]).mean() + 0.5 * (positives[:, None] == negatives[None, :]).mean()
    return float(wins)
