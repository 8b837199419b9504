"""PPO for language policies (actor-critic RLHF): one iteration = rollouts through the TF-Agents bridge, then
several epochs of clipped updates on shuffled minibatches.

Per iteration (Ziegler et al. 2019; Ouyang et al. 2022; the "N implementation details" of Huang et al. 2024):
1. the policy samples a response for each prompt (`bridge.RolloutCollector`), keeping the sampling log-probs;
   the environment scores each response with the reward function;
2. a frozen reference policy gives reference log-probs; per-token rewards are -kl_coef * KL on every token plus
   the (normalised) score on the last one, minus a penalty for responses that never end;
3. the critic's values give GAE advantages (gamma, lambda), whitened over real tokens, and returns;
4. `ppo_epochs` passes over shuffled minibatches minimise the clipped policy loss + vf_coef x clipped value loss
   - entropy_coef x entropy, with global gradient clipping; dropout is off throughout;
5. the KL controller (fixed or adaptive) updates the coefficient from the observed KL.
The critic (`value_model`) is a `ValueHead` on the policy's own trunk by default (one forward pass serves both: half
the training FLOPs of a separate value model), or a separate trunk initialised from the policy or from the reward
model (its backbone and head), as in InstructGPT.

Length control: with `length_penalty` > 0 the score loses that much per response token beyond `length_target`
(0: 1.1 x the mean length of the first rollout batch, i.e. of the SFT policy), so a reward model that likes longer
text cannot buy reward with length alone.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, hardware, ops, training
from rlhf_tf.agents.language import ppo_losses, rl
from rlhf_tf.models import lora, passes, sampling
from rlhf_tf.models.value import ValueHead
from rlhf_tf.reward import loading as reward_loading


@dataclasses.dataclass(frozen=True)
class PPOHyperparameters:
    """The update's settings.

    Attributes:
      learning_rate: AdamW learning rate for policy and value head.
      ppo_epochs: passes over each rollout batch.
      minibatch_size: responses per gradient step.
      clip_range: the policy ratio clip epsilon.
      value_clip_range: the value clip epsilon.
      vf_coef: weight of the value loss.
      entropy_coef: weight of the entropy bonus.
      gamma, lam: GAE discount and lambda.
      kl_coef: the KL penalty coefficient (`rl.KL_COEF_DEFAULTS`); the adaptive controller's start with `target_kl`.
      target_kl: adaptive controller's target KL per response (nats); 0 keeps kl_coef fixed.
      kl_horizon: the adaptive controller's horizon (responses).
      missing_end_penalty: subtracted from the score of a response that never emits the end token.
      clip_norm: global gradient-norm clipping.
      whiten_advantages: whiten advantages over real tokens.
      lr_schedule: "constant", or "linear" decay to 0 over `total_updates` optimizer steps.
      length_penalty: score lost per response token beyond `length_target` (0: no length control).
      length_target: tokens; 0 takes 1.1 x the mean response length of the first rollout batch.
      value_model: "shared" (a head on the policy trunk), "policy" (a separate trunk copied from the policy) or
        "reward" (a separate trunk and head copied from the reward model; give `value_init`).
      compute_dtype: "float32", or "bfloat16" for mixed precision in the teacher-forced passes (variables and
        optimizer stay float32; worth it where the hardware computes bf16 natively: TPUs, recent GPUs and CPUs).
      jit_compile: XLA for the update step (bf16 on a CPU runs as a graph: `hardware.use_xla`).
    """

    learning_rate: float = 1e-4
    ppo_epochs: int = 4
    minibatch_size: int = 16
    clip_range: float = 0.2
    value_clip_range: float = 0.2
    vf_coef: float = 0.1
    entropy_coef: float = 0.0
    gamma: float = 1.0
    lam: float = 0.95
    kl_coef: float = rl.KL_COEF_DEFAULTS["ppo"]
    target_kl: float = 0.0
    kl_horizon: float = 10_000.0
    missing_end_penalty: float = 1.0
    clip_norm: float = 1.0
    whiten_advantages: bool = True
    lr_schedule: str = "constant"
    length_penalty: float = 0.0
    length_target: float = 0.0
    value_model: str = "shared"
    compute_dtype: str = "float32"
    jit_compile: bool = True

    def __post_init__(self):
        configs.require_positive(
            learning_rate=self.learning_rate,
            ppo_epochs=self.ppo_epochs,
            minibatch_size=self.minibatch_size,
            clip_range=self.clip_range,
            clip_norm=self.clip_norm,
        )
        configs.require_non_negative(
            kl_coef=self.kl_coef,
            target_kl=self.target_kl,
            vf_coef=self.vf_coef,
            length_penalty=self.length_penalty,
            length_target=self.length_target,
        )
        configs.require_choice("lr_schedule", self.lr_schedule, ("constant", "linear"))
        configs.require_choice("value_model", self.value_model, ("shared", "policy", "reward"))
        configs.require_choice("compute_dtype", self.compute_dtype, ("float32", "bfloat16"))
        configs.require(
            0 <= self.lam <= 1 and 0 < self.gamma <= 1,
            "`gamma` in (0, 1], `lam` in [0, 1].",
            gamma=self.gamma,
            lam=self.lam,
        )


class PPOLearner:
    """Holds the policy, the critic, the frozen reference, the optimizer and the KL controller.

    Build it under the strategy's scope; `update` then splits each minibatch over the replicas.

    Args:
      causal_lm: the policy (keras-hub GPT-2 causal LM), trained in place.
      reference_lm: a frozen copy (the SFT policy) for the KL penalty.
      end_id: the tokenizer's end id (responses without it get `missing_end_penalty`).
      hyperparameters: `PPOHyperparameters`.
      seed: seeds minibatch shuffling (mixed with the iteration number, so resumed runs repeat).
      critic: for `value_model` "policy" or "reward": (backbone, ValueHead or Dense head) of the separate critic;
        built from a copy of the policy when omitted with "policy".
      total_updates: optimizer steps of the whole run (for the "linear" schedule).
    """

    def __init__(self, causal_lm, reference_lm, end_id, hyperparameters, seed=0, critic=None, total_updates=0):
        h = hyperparameters
        self.causal_lm = causal_lm
        self.end_id = int(end_id)
        self.reference_lm = reference_lm
        self.hyperparameters = h
        self.seed = seed
        self._dtype = None if h.compute_dtype == "float32" else tf.dtypes.as_dtype(h.compute_dtype)
        hidden_dim = causal_lm.backbone.hidden_dim
        if h.value_model == "shared":
            self.critic_backbone = None
            self.value_head = ValueHead(hidden_dim, name="value_head")
            self.value_head.build((None, None, hidden_dim))
        else:
            if critic is None:
                configs.require(
                    h.value_model == "policy",
                    "value_model='reward' needs the reward model's (backbone, head) as `critic`.",
                    value_model=h.value_model,
                )
                critic = (_copy_backbone(causal_lm), ValueHead(hidden_dim, name="value_head"))
            self.critic_backbone, self.value_head = critic
            if not self.value_head.built:
                self.value_head.build((None, None, self.critic_backbone.hidden_dim))
        self.variables = list(causal_lm.trainable_variables) + list(self.value_head.trainable_variables)
        if self.critic_backbone is not None:
            self.variables += list(self.critic_backbone.trainable_variables)
        learning_rate = h.learning_rate
        if h.lr_schedule == "linear":
            configs.require_positive(total_updates=total_updates)
            learning_rate = keras.optimizers.schedules.PolynomialDecay(h.learning_rate, total_updates, 0.0)
        self.optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=0.0)
        self.optimizer.build(self.variables)
        self.kl_coef = tf.Variable(h.kl_coef, trainable=False, dtype=tf.float32, name="kl_coef")
        self.length_target = tf.Variable(h.length_target, trainable=False, dtype=tf.float32, name="length_target")
        jit_compile = hardware.use_xla(h.jit_compile, h.compute_dtype)
        self._update = training.GradientStep(
            self._loss, self.variables, self.optimizer, clip_norm=h.clip_norm, jit_compile=jit_compile
        )
        self._score_pass = tf.function(self._score_pass_graph, jit_compile=jit_compile)
        self.apply_minibatch = training.ReplicaSplitStep(self._update)

    def checkpoint_objects(self):
        return {
            "policy": lora.trainable_state(self.causal_lm),
            "value_head": self.value_head,
            "optimizer": self.optimizer,
            "kl_coef": self.kl_coef,
            "length_target": self.length_target,
            **({"critic": lora.trainable_state(self.critic_backbone)} if self.critic_backbone is not None else {}),
        }

    def _forward(self, batch, with_values=True):
        """The policy's teacher-forced outputs, with the critic's values when asked."""
        shared = self.critic_backbone is None
        outputs = sampling.teacher_forced(
            self.causal_lm.backbone,
            batch["prompt_ids"],
            batch["prompt_mask"],
            batch["response_ids"],
            batch["response_mask"],
            value_head=self.value_head if shared and with_values else None,
            model_passes=passes.read(self.causal_lm.backbone, self._dtype),
        )
        if with_values and not shared:
            # A separate critic reads its trunk's output as the backbone gives it (after the final norm), as the
            # reward model's head it may start from does.
            critic_passes = passes.read(self.critic_backbone, self._dtype)
            outputs["values"] = sampling.teacher_forced(
                self.critic_backbone,
                batch["prompt_ids"],
                batch["prompt_mask"],
                batch["response_ids"],
                batch["response_mask"],
                value_head=lambda hidden: self.value_head(critic_passes.final_norm(hidden)),
                model_passes=critic_passes,
            )["values"]
        return outputs

    def _score_pass_graph(self, rollout):
        """Reference log-probs and the critic's values for a rollout batch (no gradients)."""
        with lora.adapters_off(self.reference_lm):  # under LoRA the reference is the policy's frozen base
            reference = sampling.teacher_forced(
                self.reference_lm.backbone,
                rollout["prompt_ids"],
                rollout["prompt_mask"],
                rollout["response_ids"],
                rollout["response_mask"],
                model_passes=passes.read(self.reference_lm.backbone, self._dtype),
            )
        return reference["logprobs"], self._forward(rollout)["values"]

    def _loss(self, minibatch):
        h = self.hyperparameters
        outputs = self._forward(minibatch)
        mask = minibatch["response_mask"]
        policy, clipped, approximate_kl = ppo_losses.policy_loss(
            outputs["logprobs"], minibatch["logprobs"], minibatch["advantages"], mask, h.clip_range
        )
        value = ppo_losses.value_loss(
            outputs["values"], minibatch["values"], minibatch["returns"], mask, h.value_clip_range
        )
        policy_loss = training.global_mean(policy, tf.cast(mask, tf.float32))
        value_loss = training.global_mean(value, tf.cast(mask, tf.float32))
        entropy = training.global_mean(outputs["entropy"], tf.cast(mask, tf.float32))
        loss = policy_loss + h.vf_coef * value_loss - h.entropy_coef * entropy
        weights = tf.cast(mask, tf.float32)
        return loss, {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "clip_fraction": training.global_mean(clipped, weights),
            "approximate_kl": training.global_mean(approximate_kl, weights),
        }

    def scores(self, rollout):
        """The rollout's scores after length control: [batch]."""
        scores = tf.cast(rollout["reward"], tf.float32)
        return rl.length_controlled(
            scores, rollout["response_mask"], self.hyperparameters.length_penalty, self.length_target
        )

    def prepare(self, rollout):
        """The scoring phase: reference log-probs, values, shaped rewards, GAE advantages and returns.

        Returns (the training batch, shaping statistics)."""
        h = self.hyperparameters
        mask = tf.cast(rollout["response_mask"], tf.float32)
        reference_logprobs, values = self._score_pass(rollout)
        ended = rl.ended(rollout, self.end_id)
        scores = self.scores(rollout)
        rewards, kl = ppo_losses.shape_rewards(
            scores,
            rollout["logprobs"],
            reference_logprobs,
            mask,
            self.kl_coef,
            ended,
            h.missing_end_penalty,
        )
        advantages, returns = ops.generalized_advantages(rewards, values, mask, h.gamma, h.lam)
        if h.whiten_advantages:
            advantages = ops.masked_whiten(advantages, mask)
        batch = {**rollout, "values": values, "advantages": advantages, "returns": returns}
        statistics = {
            "score": float(tf.reduce_mean(rollout["reward"])),
            "shaped_score": float(tf.reduce_mean(scores)),
            "kl": float(tf.reduce_mean(tf.reduce_sum(kl, axis=1))),
            "response_length": float(tf.reduce_mean(tf.reduce_sum(mask, axis=1))),
            "ended": float(tf.reduce_mean(tf.cast(ended, tf.float32))),
            "value_explained_variance": float(ops.explained_variance(values, returns, mask)),
        }
        return batch, statistics

    def optimize(self, batch, iteration):
        """The update phase: `ppo_epochs` passes of shuffled minibatches; returns the mean step metrics."""
        h = self.hyperparameters
        rng = np.random.default_rng([self.seed, iteration])
        return training.run_minibatches(batch, h.ppo_epochs, h.minibatch_size, rng, self.apply_minibatch)

    def update(self, rollout, iteration):
        """One PPO update on a rollout batch (from `bridge.RolloutCollector.collect`); returns metrics."""
        h = self.hyperparameters
        batch, statistics = self.prepare(rollout)
        result = self.optimize(batch, iteration)
        if h.target_kl:
            # The controller's one piece of state is the coefficient, a checkpointed variable.
            self.kl_coef.assign(
                ppo_losses.adaptive_kl_coef(
                    float(self.kl_coef.numpy()),
                    statistics["kl"],
                    h.target_kl,
                    int(rollout["reward"].shape[0]),
                    h.kl_horizon,
                )
            )
        result.update(statistics)
        result.update(
            kl_coef=float(self.kl_coef.numpy()),
            learning_rate=float(keras.ops.convert_to_numpy(self.optimizer.learning_rate)),
        )
        return result


def _copy_backbone(causal_lm):
    """A separate trunk with the policy's architecture and weights (for a critic of its own)."""
    backbone = causal_lm.backbone
    copy = backbone.__class__.from_config(backbone.get_config())
    lora.enable_like(copy, backbone)  # a LoRA policy's critic trains adapters of its own on its copy of the base
    copy.set_weights(backbone.get_weights())
    return copy


@dataclasses.dataclass(frozen=True)
class PPOConfig(rl.RunConfig):
    """`rlhf-tf ppo`: actor-critic fine-tuning of a language policy against a reward. The shared fields:
    `rl.RunConfig`.

    Attributes:
      hyperparameters: the update (`PPOHyperparameters`).
    """

    hyperparameters: PPOHyperparameters = PPOHyperparameters()

    def __post_init__(self):
        super().__post_init__()
        self.require_divides(self.hyperparameters.minibatch_size, "minibatch_size")


def load_value_init(spec, strategy):
    """(backbone, head) of a reward run directory's model, for `value_model="reward"`."""
    model = reward_loading.load_model(spec, strategy)
    head = ValueHead(model.backbone.hidden_dim, name="value_head")
    head.build((None, None, model.backbone.hidden_dim))
    head.dense.set_weights(model.head.get_weights())
    return model.backbone, head


def train_ppo(config, reward_fn=None):
    """Runs PPO; returns the final metrics (also in metrics.json).

    Args:
      config: a `PPOConfig`.
      reward_fn: optional `(prompts, responses) -> [batch]` over strings, used instead of `config.rollouts.reward`
        (e.g. a deliberately flawed reward, to see reward hacking).
    """
    r, h = config.rollouts, config.hyperparameters

    def make_learner(causal_lm, reference_lm, tokenizer, strategy):
        critic = load_value_init(r.reward, strategy) if h.value_model == "reward" else None
        with strategy.scope():
            if critic is not None and config.lora.enabled:  # the critic trains adapters of its own too
                lora.enable(critic[0], config.lora, r.reward)
            return PPOLearner(
                causal_lm,
                reference_lm,
                tokenizer.end_id,
                h,
                seed=config.loop.seed,
                critic=critic,
                total_updates=config.loop.steps * h.ppo_epochs * (r.batch_size // h.minibatch_size),
            )

    return rl.train_rl(config, make_learner, reward_fn, description="ppo")
