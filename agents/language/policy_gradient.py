"""Critic-free policy gradient for language policies: REINFORCE with a baseline, RLOO and GRPO.

Each iteration samples `samples_per_prompt` = k responses for each of `batch_size / k` prompts through the TF-Agents
bridge (the k samples of a prompt are consecutive rows), scores them, turns the scores into one advantage per
response, and takes `epochs` passes of minibatch steps on the clipped surrogate. No value model is trained.

The advantages (REINFORCE, RLOO, GRPO, Dr. GRPO), the clipped surrogate and the three loss normalisations, with
their formulas, are in `grpo_losses`. The KL to the reference enters either as `kl_coef` x the k3 estimator per token
in the loss (`kl_in_reward=False`) or as `kl_coef` x the sequence KL subtracted from the score (`kl_in_reward`).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, hardware, ops, training
from rlhf_tf.agents.language import grpo_losses, ppo_losses, rl
from rlhf_tf.models import lora, passes, sampling

ALGORITHMS = ("reinforce", "rloo", "grpo")
# The KL each algorithm holds by default (`PolicyGradientHyperparameters.target_kl`; 0: a fixed coefficient).
TARGET_KL_DEFAULTS = {"grpo": 6.0, "rloo": 0.0, "reinforce": 0.0}


@dataclasses.dataclass(frozen=True)
class PolicyGradientHyperparameters:
    """The update's settings.

    Attributes:
      algorithm: "reinforce", "rloo" or "grpo" (see the module docstring).
      samples_per_prompt: k responses per prompt (RLOO and GRPO need k >= 2).
      learning_rate: AdamW learning rate.
      epochs: passes over each batch; more than one makes the importance ratio matter (and its clipping).
        The defaults (2 epochs of minibatches of 16; KL in the loss at 0.1 for GRPO as Shao et al. do, in the
        reward at 0.05 for RLOO and REINFORCE as Ahmadian et al. do) are the settings that reached a 0.85+ win
        rate on the bundled task.
      minibatch_size: responses per gradient step (a multiple of k keeps groups whole; not required).
      clip_range: epsilon of the clipped ratio.
      kl_coef: weight of the KL to the reference (0: no reference pass at all); None: the algorithm's entry in
        `rl.KL_COEF_DEFAULTS`.
      kl_in_reward: subtract the sequence KL from the score (True) or add the k3 estimator to the loss (False);
        None: in the loss for GRPO, in the reward for RLOO and REINFORCE.
      target_kl: hold the KL to the reference near this many nats per response by adapting `kl_coef` after every
        batch (Ziegler et al.'s controller, `ppo_losses.adaptive_kl_coef`; `kl_coef` is where it starts); 0 keeps
        `kl_coef` fixed. None: `TARGET_KL_DEFAULTS` (GRPO 6 nats: with a fixed coefficient GRPO drifted to 15 nats
        on `reviews` while over-optimising the learned reward, reward win rate 0.985, gold 0.81; holding 6 gave the
        same gold win rate, 0.8135, at KL 6.7 with distinct-2 0.106 instead of 0.076, seed 0 of `rlhf-tf compare`).
      kl_horizon: the controller's horizon in responses: after a batch of B responses the coefficient moves by at
        most 0.2 x B / kl_horizon of itself (1,000: a 160-iteration run of 64 responses can move it up to 7.7x;
        PPO's 10,000 would allow 1.3x).
      loss_normalization: "sequence", "token" or "constant" (see the module docstring).
      scale_rewards: GRPO's division by the group's std (False: Dr. GRPO).
      baseline_decay: the REINFORCE baseline's moving-average decay.
      missing_end_penalty: subtracted from the score of a response that never emits the end token.
      length_penalty, length_target: length control as in PPO (score per token beyond the target; 0 target:
        1.1 x the first batch's mean length).
      clip_norm: global gradient-norm clipping.
      compute_dtype: "float32" or "bfloat16" passes (variables stay float32).
      jit_compile: XLA for the step (bf16 on a CPU runs as a graph: `hardware.use_xla`).
    """

    algorithm: str = "grpo"
    samples_per_prompt: int = 4
    learning_rate: float = 1e-4
    epochs: int = 2
    minibatch_size: int = 16
    clip_range: float = 0.2
    kl_coef: float = None
    kl_in_reward: bool = None
    target_kl: float = None
    kl_horizon: float = 1000.0
    loss_normalization: str = "token"
    scale_rewards: bool = True
    baseline_decay: float = 0.9
    missing_end_penalty: float = 1.0
    length_penalty: float = 0.0
    length_target: float = 0.0
    clip_norm: float = 1.0
    compute_dtype: str = "float32"
    jit_compile: bool = True

    def __post_init__(self):
        configs.require_choice("algorithm", self.algorithm, ALGORITHMS)
        if self.kl_coef is None:
            object.__setattr__(self, "kl_coef", rl.KL_COEF_DEFAULTS[self.algorithm])
        if self.kl_in_reward is None:
            object.__setattr__(self, "kl_in_reward", self.algorithm != "grpo")
        if self.target_kl is None:
            object.__setattr__(self, "target_kl", TARGET_KL_DEFAULTS[self.algorithm] if self.kl_coef else 0.0)
        configs.require_choice("loss_normalization", self.loss_normalization, grpo_losses.NORMALIZATIONS)
        configs.require_choice("compute_dtype", self.compute_dtype, ("float32", "bfloat16"))
        configs.require_positive(
            samples_per_prompt=self.samples_per_prompt,
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            minibatch_size=self.minibatch_size,
            clip_range=self.clip_range,
            clip_norm=self.clip_norm,
        )
        configs.require_non_negative(
            kl_coef=self.kl_coef,
            length_penalty=self.length_penalty,
            length_target=self.length_target,
            target_kl=self.target_kl,
        )
        configs.require_positive(kl_horizon=self.kl_horizon)
        configs.require(
            not self.target_kl or self.kl_coef > 0,
            "A KL target adapts `kl_coef` from where it starts: give a positive `kl_coef` with `target_kl`.",
            target_kl=self.target_kl,
            kl_coef=self.kl_coef,
        )
        configs.require(
            self.algorithm == "reinforce" or self.samples_per_prompt >= 2,
            "RLOO and GRPO compare the k samples of a prompt: `samples_per_prompt` must be at least 2.",
            algorithm=self.algorithm,
            samples_per_prompt=self.samples_per_prompt,
        )
        configs.require(
            0 <= self.baseline_decay < 1, "`baseline_decay` must be in [0, 1).", baseline_decay=self.baseline_decay
        )


class PolicyGradientLearner:
    """The policy, the frozen reference, the optimizer and the REINFORCE baseline; `update(rollout, iteration)`.

    Args:
      causal_lm, reference_lm: the policy (trained in place) and its frozen starting copy.
      end_id: the tokenizer's end id.
      hyperparameters: `PolicyGradientHyperparameters`.
      max_new_tokens: the response length (for "constant" normalisation).
      seed: seeds minibatch shuffling (mixed with the iteration).
    """

    def __init__(self, causal_lm, reference_lm, end_id, hyperparameters, max_new_tokens, seed=0):
        h = hyperparameters
        self.causal_lm = causal_lm
        self.reference_lm = reference_lm
        self.end_id = int(end_id)
        self.hyperparameters = h
        self.max_new_tokens = int(max_new_tokens)
        self.seed = seed
        self._dtype = None if h.compute_dtype == "float32" else tf.dtypes.as_dtype(h.compute_dtype)
        self.variables = list(causal_lm.trainable_variables)
        self.optimizer = keras.optimizers.AdamW(learning_rate=h.learning_rate, weight_decay=0.0)
        self.optimizer.build(self.variables)
        self.baseline = tf.Variable(0.0, trainable=False, name="reinforce_baseline")
        self.baseline_ready = tf.Variable(False, trainable=False, name="reinforce_baseline_ready")
        self.length_target = tf.Variable(h.length_target, trainable=False, dtype=tf.float32, name="length_target")
        self.kl_coef = tf.Variable(h.kl_coef, trainable=False, dtype=tf.float32, name="kl_coef")
        jit_compile = hardware.use_xla(h.jit_compile, h.compute_dtype)
        self._step = training.GradientStep(
            self._loss, self.variables, self.optimizer, clip_norm=h.clip_norm, jit_compile=jit_compile
        )
        self._reference_pass = tf.function(self._reference_graph, jit_compile=jit_compile)
        self._apply = training.ReplicaSplitStep(self._step)

    def checkpoint_objects(self):
        return {
            "policy": lora.trainable_state(self.causal_lm),
            "optimizer": self.optimizer,
            "baseline": self.baseline,
            "baseline_ready": self.baseline_ready,
            "length_target": self.length_target,
            # Only an adapted coefficient is state (a fixed one is config; older checkpoints lack it).
            **({"kl_coef": self.kl_coef} if self.hyperparameters.target_kl else {}),
        }

    def _pass(self, backbone, batch):
        return sampling.teacher_forced(
            backbone,
            batch["prompt_ids"],
            batch["prompt_mask"],
            batch["response_ids"],
            batch["response_mask"],
            model_passes=passes.read(backbone, self._dtype),
        )

    def _reference_graph(self, rollout):
        with lora.adapters_off(self.reference_lm):  # under LoRA the reference is the policy's frozen base
            return self._pass(self.reference_lm.backbone, rollout)["logprobs"]

    def _loss(self, minibatch):
        h = self.hyperparameters
        outputs = self._pass(self.causal_lm.backbone, minibatch)
        mask = tf.cast(minibatch["response_mask"], tf.float32)
        loss, clipped = grpo_losses.surrogate_loss(
            outputs["logprobs"],
            minibatch["logprobs"],
            minibatch["advantages"],
            mask,
            h.clip_range,
            h.loss_normalization,
            self.max_new_tokens,
        )
        metrics = {
            "policy_loss": loss,
            "entropy": training.global_mean(outputs["entropy"], mask),
            "clip_fraction": training.global_mean(clipped, mask),
        }
        if h.kl_coef and not h.kl_in_reward:
            kl = ops.kl_estimate(outputs["logprobs"], minibatch["reference_logprobs"], "k3") * mask
            kl_loss = grpo_losses.normalize(kl, mask, h.loss_normalization, self.max_new_tokens)
            loss = loss + self.kl_coef * kl_loss
            metrics["kl_loss"] = kl_loss
        return loss, metrics

    def scores(self, rollout):
        """Scores after the missing-end penalty and length control: [batch]."""
        h = self.hyperparameters
        return rl.penalized_scores(rollout, self.end_id, h.missing_end_penalty, h.length_penalty, self.length_target)

    def update(self, rollout, iteration):
        h = self.hyperparameters
        mask = tf.cast(rollout["response_mask"], tf.float32)
        scores, ended = self.scores(rollout)
        batch = dict(rollout)
        sequence_kl = tf.zeros_like(scores)
        if h.kl_coef:
            batch["reference_logprobs"] = self._reference_pass(rollout)
            sequence_kl = tf.reduce_sum((rollout["logprobs"] - batch["reference_logprobs"]) * mask, axis=1)
            if h.kl_in_reward:
                scores -= self.kl_coef * sequence_kl
        if h.algorithm == "reinforce" and not bool(self.baseline_ready.numpy()):
            self.baseline.assign(float(tf.reduce_mean(scores)))
            self.baseline_ready.assign(True)
        batch["advantages"] = grpo_losses.group_advantages(
            scores, h.samples_per_prompt, h.algorithm, self.baseline, h.scale_rewards
        )
        if h.algorithm == "reinforce":
            self.baseline.assign(h.baseline_decay * self.baseline + (1 - h.baseline_decay) * tf.reduce_mean(scores))
        rng = np.random.default_rng([self.seed, iteration])
        result = training.run_minibatches(batch, h.epochs, h.minibatch_size, rng, self._apply)
        if h.target_kl:
            self.kl_coef.assign(
                ppo_losses.adaptive_kl_coef(
                    float(self.kl_coef.numpy()),
                    float(tf.reduce_mean(sequence_kl)),
                    h.target_kl,
                    int(scores.shape[0]),
                    h.kl_horizon,
                )
            )
        result.update(
            kl_coef=float(self.kl_coef.numpy()),
            score=float(tf.reduce_mean(rollout["reward"])),
            shaped_score=float(tf.reduce_mean(scores)),
            kl=float(tf.reduce_mean(sequence_kl)),
            response_length=float(tf.reduce_mean(tf.reduce_sum(mask, axis=1))),
            ended=float(tf.reduce_mean(tf.cast(ended, tf.float32))),
            advantage_std=float(tf.math.reduce_std(batch["advantages"])),
        )
        return result


@dataclasses.dataclass(frozen=True)
class PolicyGradientConfig(rl.RunConfig):
    """`rlhf-tf reinforce | rloo | grpo`: critic-free fine-tuning against a reward. The shared fields:
    `rl.RunConfig`; `rollouts.batch_size` counts responses (prompts per iteration = batch_size / k).

    Attributes:
      hyperparameters: `PolicyGradientHyperparameters`.
    """

    hyperparameters: PolicyGradientHyperparameters = PolicyGradientHyperparameters()

    def __post_init__(self):
        super().__post_init__()
        self.require_divides(self.hyperparameters.samples_per_prompt, "samples_per_prompt")
        self.require_divides(self.hyperparameters.minibatch_size, "minibatch_size")


def train_policy_gradient(config, reward_fn=None):
    """Runs REINFORCE, RLOO or GRPO; returns the final metrics (also in metrics.json)."""
    h = config.hyperparameters

    def make_learner(causal_lm, reference_lm, tokenizer, strategy):
        with strategy.scope():
            return PolicyGradientLearner(
                causal_lm, reference_lm, tokenizer.end_id, h, config.rollouts.max_new_tokens, seed=config.loop.seed
            )

    return rl.train_rl(
        config, make_learner, reward_fn, description=h.algorithm, samples_per_prompt=h.samples_per_prompt
    )
