"""Direct preference optimisation (Rafailov et al. 2023) and its IPO and hinge variants: a policy learns from
comparisons without a reward model.

The losses, with their formulas, are in `dpo_losses`.

The implicit reward of a response is r(x, y) = beta [log pi(y|x) - log pi_ref(y|x)]; its pairwise accuracy (chosen
above rejected) and margin are reported. At the start pi = pi_ref, so h = 0, the DPO loss is log 2 and every implicit
reward is 0; the DPO gradient weighs each pair by sigma(-beta h), most where the implicit reward ranks the pair
wrongly (the paper's section 4). Ties are skipped (DPO has no tie term).

The reference log-probs are computed once, before training, and kept with the tokenized pairs, so training runs
one model. Pairs are padded to `seq_len` (one shape for XLA).
"""

import dataclasses
import logging

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, training
from rlhf_tf.agents.language import dpo_losses, offline, rl
from rlhf_tf.data import pipelines
from rlhf_tf.models import lora, passes, sampling


def sequence_logprobs(backbone, token_ids, padding_mask, response_mask, dtype=None):
    """Sum over response tokens of log p(token | prefix) for right-padded sequences [..., length] -> [...]."""
    length = tf.shape(token_ids)[-1]
    leading = tf.shape(token_ids)[:-1]
    ids = tf.reshape(token_ids, [-1, length])
    mask = tf.reshape(tf.cast(padding_mask, tf.bool), [-1, length])
    targets_mask = tf.cast(tf.reshape(response_mask, [-1, length])[:, 1:], tf.float32)
    model = passes.read(backbone, dtype)
    logits = tf.cast(model.logits(model.hidden(ids, mask)[:, :-1]), tf.float32)
    token_logprobs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids[:, 1:], logits=logits)
    return tf.reshape(tf.reduce_sum(token_logprobs * targets_mask, axis=1), leading)


@dataclasses.dataclass(frozen=True)
class DPOConfig(offline.OfflineConfig):
    """`rlhf-tf dpo`: learn a policy from comparisons, offline. The shared fields: `offline.OfflineConfig` (`data`
    and `eval_data` hold comparisons in any accepted shape; the held-out ones measure the implicit reward).

    Attributes:
      loss: "sigmoid" (DPO), "ipo" or "hinge".
      label_smoothing: cDPO's assumed label-flip rate (sigmoid loss only).
    """

    loss: str = "sigmoid"
    label_smoothing: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        configs.require_choice("loss", self.loss, dpo_losses.LOSSES)
        configs.require(
            0 <= self.label_smoothing < 0.5,
            "`label_smoothing` must be in [0, 0.5).",
            label_smoothing=self.label_smoothing,
        )


def reference_pass(reference_backbone, config):
    """The compiled pass giving a tokenized batch's sequence log-probs under the frozen reference (under LoRA the
    policy's own base, adapters off), computed once before training (DPO's pairs, KTO's ratings)."""

    def logprobs(batch):
        return sequence_logprobs(
            reference_backbone, batch["token_ids"], batch["padding_mask"], batch["response_mask"], config.pass_dtype
        )

    return tf.function(lora.base_function(logprobs, reference_backbone), jit_compile=config.use_xla)


def _tokenized_pairs(records, config, tokenizer, reference_backbone):
    """All pairs tokenized to [n, 2, seq_len] with their reference log-probs [n, 2], computed once; ties dropped."""
    fixed = dataclasses.replace(
        config.pipeline, buckets=(config.pipeline.seq_len,), repeat=False, shuffle_buffer=0, drop_remainder=False
    )
    dataset = pipelines.preference_dataset_fn(pipelines.TextSource(records, "comparison"), fixed, tokenizer)(None)
    reference = reference_pass(reference_backbone, config)
    pairs = offline.with_reference(dataset, reference, ("token_ids", "padding_mask", "response_mask", "tie"))
    keep = pairs.pop("tie") < 0.5
    return {name: value[keep] for name, value in pairs.items()}, int((~keep).sum())


def pair_losses_fn(backbone, beta, loss, label_smoothing, dtype=None):
    """`batch -> (losses, chosen rewards, rejected rewards)` [pairs] for tokenized pairs with reference log-probs;
    `dtype` as `sequence_logprobs`'s."""

    def pair_losses(batch):
        logprobs = sequence_logprobs(backbone, batch["token_ids"], batch["padding_mask"], batch["response_mask"], dtype)
        reference = batch["reference_logprobs"]
        return dpo_losses.dpo_loss(
            logprobs[:, 0], logprobs[:, 1], reference[:, 0], reference[:, 1], beta, loss, label_smoothing
        )

    return pair_losses


def step_loss_fn(pair_losses):
    """The training step's `loss_fn` (`training.GradientStep`): the mean loss and the implicit-reward metrics."""

    def loss_fn(batch):
        losses, chosen, rejected = pair_losses(batch)
        return training.global_mean(losses), {
            "reward_accuracy": training.global_mean(tf.cast(chosen > rejected, tf.float32)),
            "reward_margin": training.global_mean(chosen - rejected),
            "chosen_reward": training.global_mean(chosen),
            "rejected_reward": training.global_mean(rejected),
        }

    return loss_fn


def train_dpo(config):
    """Runs DPO; returns the final metrics (also in metrics.json)."""
    strategy = training.create_strategy(config.strategy)
    train, evaluation, stats = offline.load_split(config, "comparison")
    loop_config = offline.loop_config(config, len(train))
    loop = training.TrainLoop(
        loop_config, config.output_dir, strategy=strategy, run_config=config, metrics_prefix="dpo"
    )
    causal_lm, reference_lm, tokenizer, optimizer = offline.policies_and_optimizer(config, strategy, loop_config.steps)
    train_pairs, train_ties = _tokenized_pairs(train, config, tokenizer, reference_lm.backbone)
    eval_pairs, _ = _tokenized_pairs(evaluation, config, tokenizer, reference_lm.backbone)
    logging.info(
        "DPO on %d pairs (%d ties skipped), %d held out.",
        len(train_pairs["token_ids"]),
        train_ties,
        len(eval_pairs["token_ids"]),
    )

    pair_losses = pair_losses_fn(
        causal_lm.backbone, config.beta, config.loss, config.label_smoothing, config.pass_dtype
    )
    step = training.GradientStep(
        step_loss_fn(pair_losses),
        causal_lm.trainable_variables,
        optimizer,
        clip_norm=config.clip_norm,
        jit_compile=config.use_xla,
    )
    evaluate_batch = tf.function(pair_losses, jit_compile=config.use_xla)

    def evaluate(step_number):
        del step_number
        outputs = [
            evaluate_batch(batch) for batch in offline.evaluation_batches(eval_pairs, config.pipeline.batch_size)
        ]
        losses, chosen, rejected = (np.concatenate([output[i].numpy() for output in outputs]) for i in range(3))
        return {
            "dpo/eval_loss": float(losses.mean()),
            "dpo/eval_reward_accuracy": float(np.mean(chosen > rejected)),
            "dpo/eval_reward_margin": float(np.mean(chosen - rejected)),
        }

    evaluate_with_frontier, make_evaluator = offline.with_frontier(
        evaluate, config, loop, causal_lm, reference_lm, tokenizer
    )
    metrics = loop.run(
        step,
        offline.dataset_fn(train_pairs, config.pipeline.batch_size, config.loop.seed),
        checkpoint={"policy": lora.trainable_state(causal_lm), "optimizer": optimizer},
        evaluate=evaluate_with_frontier,
        description="dpo",
    )
    metrics.update(stats)
    metrics["dpo/train_pairs"] = len(train_pairs["token_ids"])
    metrics["dpo/ties_skipped"] = train_ties
    return offline.finish(config, loop, causal_lm, reference_lm, tokenizer, metrics, make_evaluator)


@dataclasses.dataclass(frozen=True)
class OnlineDPOHyperparameters:
    """Online DPO: each iteration samples two responses per prompt from the current policy, the reward ranks them,
    and the DPO loss (against the frozen starting policy) trains on those fresh pairs (Guo et al. 2024).

    Attributes:
      loss, beta, label_smoothing: as in `DPOConfig`.
      learning_rate: AdamW learning rate.
      epochs: passes over each iteration's pairs.
      minibatch_size: pairs per gradient step.
      min_score_gap: pairs whose two scores differ by less are skipped (near-ties teach noise).
      missing_end_penalty, length_penalty, length_target: applied to the scores before ranking, as in PPO.
      clip_norm: global gradient-norm clipping.
      jit_compile: XLA for the step.
    """

    loss: str = "sigmoid"
    beta: float = 0.1
    label_smoothing: float = 0.0
    learning_rate: float = 5e-5
    epochs: int = 1
    minibatch_size: int = 16
    min_score_gap: float = 0.0
    missing_end_penalty: float = 1.0
    length_penalty: float = 0.0
    length_target: float = 0.0
    clip_norm: float = 1.0
    jit_compile: bool = True

    def __post_init__(self):
        configs.require_choice("loss", self.loss, dpo_losses.LOSSES)
        configs.require_positive(
            beta=self.beta, learning_rate=self.learning_rate, epochs=self.epochs, minibatch_size=self.minibatch_size
        )
        configs.require_non_negative(
            min_score_gap=self.min_score_gap, length_penalty=self.length_penalty, length_target=self.length_target
        )


class OnlineDPOLearner:
    """`update(rollout, iteration)` on a batch of consecutive response pairs (see `OnlineDPOHyperparameters`)."""

    def __init__(self, causal_lm, reference_lm, end_id, hyperparameters, seed=0):
        h = hyperparameters
        self.causal_lm, self.reference_lm, self.end_id = causal_lm, reference_lm, int(end_id)
        self.hyperparameters, self.seed = h, seed
        self.optimizer = keras.optimizers.AdamW(learning_rate=h.learning_rate, weight_decay=0.0)
        self.optimizer.build(causal_lm.trainable_variables)
        self.length_target = tf.Variable(h.length_target, trainable=False, dtype=tf.float32, name="length_target")
        # Each minibatch split over the replicas (the losses are replica shares), as in PPO and GRPO.
        self._step = training.ReplicaSplitStep(
            training.GradientStep(
                self._loss,
                causal_lm.trainable_variables,
                self.optimizer,
                clip_norm=h.clip_norm,
                jit_compile=h.jit_compile,
            )
        )
        self._reference = tf.function(self._reference_graph, jit_compile=h.jit_compile)

    def checkpoint_objects(self):
        return {
            "policy": lora.trainable_state(self.causal_lm),
            "optimizer": self.optimizer,
            "length_target": self.length_target,
        }

    @staticmethod
    def _logprobs(backbone, batch):

        outputs = sampling.teacher_forced(
            backbone, batch["prompt_ids"], batch["prompt_mask"], batch["response_ids"], batch["response_mask"]
        )
        return tf.reduce_sum(outputs["logprobs"], axis=1)

    def _reference_graph(self, rollout):
        with lora.adapters_off(self.reference_lm):  # under LoRA the reference is the policy's frozen base
            return self._logprobs(self.reference_lm.backbone, rollout)

    def _loss(self, pairs):
        h = self.hyperparameters
        both = {name: tf.concat([pairs["chosen_" + name], pairs["rejected_" + name]], axis=0) for name in _ROLLOUT}
        logprobs = self._logprobs(self.causal_lm.backbone, both)
        chosen, rejected = tf.split(logprobs, 2)
        losses, chosen_reward, rejected_reward = dpo_losses.dpo_loss(
            chosen, rejected, pairs["chosen_reference"], pairs["rejected_reference"], h.beta, h.loss, h.label_smoothing
        )
        weights = pairs["weight"]
        return training.global_mean(losses, weights), {
            "reward_accuracy": training.global_mean(tf.cast(chosen_reward > rejected_reward, tf.float32), weights),
            "reward_margin": training.global_mean(chosen_reward - rejected_reward, weights),
        }

    def update(self, rollout, iteration):
        h = self.hyperparameters
        scores, ended = rl.penalized_scores(
            rollout, self.end_id, h.missing_end_penalty, h.length_penalty, self.length_target
        )
        scores = scores.numpy()
        reference = self._reference(rollout).numpy()
        first, second = scores[0::2], scores[1::2]
        keep = np.abs(first - second) > max(h.min_score_gap, 0.0)
        pair_rows = np.stack([np.arange(0, len(scores), 2), np.arange(1, len(scores), 2)], axis=1)[keep]
        first_wins = (first > second)[keep]
        chosen_rows = np.where(first_wins, pair_rows[:, 0], pair_rows[:, 1])
        rejected_rows = np.where(first_wins, pair_rows[:, 1], pair_rows[:, 0])
        pairs = {}
        for prefix, rows in (("chosen_", chosen_rows), ("rejected_", rejected_rows)):
            for name in _ROLLOUT:
                pairs[prefix + name] = tf.gather(rollout[name], rows)
            pairs[prefix + "reference"] = tf.constant(reference[rows])
        count = len(chosen_rows)
        rng = np.random.default_rng([self.seed, iteration])
        result = training.run_minibatches(pairs, h.epochs, h.minibatch_size, rng, self._step, pad_last=True)
        mask = tf.cast(rollout["response_mask"], tf.float32)
        result.update(
            score=float(tf.reduce_mean(rollout["reward"])),
            kl=float(np.mean(tf.reduce_sum(rollout["logprobs"] * mask, axis=1).numpy() - reference)),
            response_length=float(tf.reduce_mean(tf.reduce_sum(mask, axis=1))),
            ended=float(tf.reduce_mean(tf.cast(ended, tf.float32))),
            pairs_used=float(count),
        )
        return result


_ROLLOUT = ("prompt_ids", "prompt_mask", "response_ids", "response_mask")


@dataclasses.dataclass(frozen=True)
class OnlineDPOConfig(rl.RunConfig):
    """`rlhf-tf online-dpo`: online DPO against a reward. The shared fields: `rl.RunConfig`;
    `rollouts.batch_size` counts responses, two per prompt.

    Attributes:
      hyperparameters: `OnlineDPOHyperparameters`.
    """

    hyperparameters: OnlineDPOHyperparameters = OnlineDPOHyperparameters()

    def __post_init__(self):
        super().__post_init__()
        self.require_divides(2, "samples_per_prompt")


def train_online_dpo(config, reward_fn=None):
    """Runs online DPO; returns the final metrics (also in metrics.json)."""

    def make_learner(causal_lm, reference_lm, tokenizer, strategy):
        with strategy.scope():
            return OnlineDPOLearner(
                causal_lm, reference_lm, tokenizer.end_id, config.hyperparameters, seed=config.loop.seed
            )

    return rl.train_rl(config, make_learner, reward_fn, description="online-dpo", samples_per_prompt=2)
