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
The critic is a `ValueHead` on the policy's own trunk (one forward pass serves both; half the training FLOPs of a
separate value model).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, ops, training
from rlhf_tf.agents import ppo_losses
from rlhf_tf.models import sampling, transformer
from rlhf_tf.models.value import ValueHead


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
      kl_coef: initial KL penalty coefficient.
      target_kl: adaptive controller's target KL per response (nats); 0 keeps kl_coef fixed.
      kl_horizon: the adaptive controller's horizon (responses).
      missing_end_penalty: subtracted from the score of a response that never emits the end token.
      clip_norm: global gradient-norm clipping.
      whiten_advantages: whiten advantages over real tokens.
      jit_compile: XLA for the update step.
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
    kl_coef: float = 0.05
    target_kl: float = 0.0
    kl_horizon: float = 10_000.0
    missing_end_penalty: float = 1.0
    clip_norm: float = 1.0
    whiten_advantages: bool = True
    jit_compile: bool = True

    def __post_init__(self):
        configs.require_positive(
            learning_rate=self.learning_rate,
            ppo_epochs=self.ppo_epochs,
            minibatch_size=self.minibatch_size,
            clip_range=self.clip_range,
            clip_norm=self.clip_norm,
        )
        configs.require_non_negative(kl_coef=self.kl_coef, target_kl=self.target_kl, vf_coef=self.vf_coef)
        configs.require(
            0 <= self.lam <= 1 and 0 < self.gamma <= 1,
            "`gamma` in (0, 1], `lam` in [0, 1].",
            gamma=self.gamma,
            lam=self.lam,
        )


class PPOLearner:
    """Holds the policy (with its value head), the frozen reference, the optimizer and the KL controller.

    Args:
      causal_lm: the policy (keras-hub GPT-2 causal LM), trained in place.
      reference_lm: a frozen copy (the SFT policy) for the KL penalty.
      end_id: the tokenizer's end id (responses without it get `missing_end_penalty`).
      hyperparameters: `PPOHyperparameters`.
      seed: seeds minibatch shuffling (mixed with the iteration number, so resumed runs repeat).
    """

    def __init__(self, causal_lm, reference_lm, end_id, hyperparameters, seed=0):
        self.causal_lm = causal_lm
        self.end_id = int(end_id)
        self.reference_lm = reference_lm
        self.hyperparameters = hyperparameters
        self.seed = seed
        self.value_head = ValueHead(causal_lm.backbone.hidden_dim, name="value_head")
        self.value_head.build((None, None, causal_lm.backbone.hidden_dim))
        self.variables = causal_lm.trainable_variables + self.value_head.trainable_variables
        self.optimizer = keras.optimizers.AdamW(learning_rate=hyperparameters.learning_rate, weight_decay=0.0)
        self.optimizer.build(self.variables)
        self.kl_coef = tf.Variable(hyperparameters.kl_coef, trainable=False, dtype=tf.float32, name="kl_coef")
        self._update = training.GradientStep(
            self._loss,
            self.variables,
            self.optimizer,
            clip_norm=hyperparameters.clip_norm,
            jit_compile=hyperparameters.jit_compile,
        )
        self._score_pass = tf.function(self._score_pass_graph, jit_compile=hyperparameters.jit_compile)

    def checkpoint_objects(self):
        return {
            "policy": self.causal_lm,
            "value_head": self.value_head,
            "optimizer": self.optimizer,
            "kl_coef": self.kl_coef,
        }

    def _score_pass_graph(self, rollout):
        """Reference log-probs and the critic's values for a rollout batch (no gradients)."""
        reference = sampling.teacher_forced(
            self.reference_lm.backbone,
            rollout["prompt_ids"],
            rollout["prompt_mask"],
            rollout["response_ids"],
            rollout["response_mask"],
        )
        current = sampling.teacher_forced(
            self.causal_lm.backbone,
            rollout["prompt_ids"],
            rollout["prompt_mask"],
            rollout["response_ids"],
            rollout["response_mask"],
            value_head=self.value_head,
        )
        return reference["logprobs"], current["values"]

    def _loss(self, minibatch):
        h = self.hyperparameters
        outputs = sampling.teacher_forced(
            self.causal_lm.backbone,
            minibatch["prompt_ids"],
            minibatch["prompt_mask"],
            minibatch["response_ids"],
            minibatch["response_mask"],
            value_head=self.value_head,
            weights=transformer.read_weights(self.causal_lm.backbone),
        )
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

    def update(self, rollout, iteration):
        """One PPO update on a rollout batch (from `bridge.RolloutCollector.collect`); returns metrics."""
        h = self.hyperparameters
        mask = tf.cast(rollout["response_mask"], tf.float32)
        reference_logprobs, values = self._score_pass(rollout)
        ended = tf.reduce_any(
            tf.logical_and(tf.equal(rollout["response_ids"], self.end_id), rollout["response_mask"]), 1
        )
        rewards, kl = ppo_losses.shape_rewards(
            rollout["reward"],
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
        size = int(rollout["reward"].shape[0])
        rng = np.random.default_rng([self.seed, iteration])
        sums, count = {}, 0
        for _ in range(h.ppo_epochs):
            order = rng.permutation(size)
            for start in range(0, size - h.minibatch_size + 1, h.minibatch_size):
                indices = tf.constant(order[start : start + h.minibatch_size])
                minibatch = {name: tf.gather(value, indices) for name, value in batch.items()}
                metrics = self._update(minibatch)
                for name, value in metrics.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                count += 1
        kl_per_response = float(tf.reduce_mean(tf.reduce_sum(kl, axis=1)))
        if h.target_kl:
            controller = ppo_losses.AdaptiveKLController(float(self.kl_coef.numpy()), h.target_kl, h.kl_horizon)
            self.kl_coef.assign(controller.update(kl_per_response, size))
        result = {name: total / max(count, 1) for name, total in sums.items()}
        result.update(
            score=float(tf.reduce_mean(rollout["reward"])),
            kl=kl_per_response,
            kl_coef=float(self.kl_coef.numpy()),
            response_length=float(tf.reduce_mean(tf.reduce_sum(mask, axis=1))),
            ended=float(tf.reduce_mean(tf.cast(ended, tf.float32))),
            value_explained_variance=float(ops.explained_variance(values, returns, mask)),
        )
        return result
