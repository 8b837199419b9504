"""Inverse RL from demonstrations: an adversarial learned reward (GAIL, Ho & Ermon 2016; the reward form of AIRL,
Fu et al. 2018).

A discriminator D(s, a) = sigmoid(f(s, a)) learns to tell the demonstrator's (observation, action) pairs from the
agent's own; the agent is rewarded with f(s, a) = log D - log(1 - D), which is positive where it acts like the
demonstrator and negative where it does not (AIRL's reward; unlike GAIL's -log(1 - D) it carries no built-in
survival bonus, which matters once episodes have a fixed horizon). The discriminator is refitted every iteration
on the agent's newest experience, so the reward moves with the policy, as in GAIL.
"""

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf.reward import models as reward_models


class AdversarialReward:
    """The discriminator and the reward it gives (see the module docstring).

    Args:
      observation_size: features per observation.
      num_actions: discrete action count, or 0 for continuous actions of `action_size` features.
      demonstrations: {"observations": [N, D], "actions": [N, ...]} expert pairs.
      hidden_sizes: the discriminator's MLP widths.
      learning_rate, batch_size, steps_per_fit, weight_decay: the discriminator's fit each iteration.
      seed: seeds initialisation and the expert minibatch draws.
    """

    def __init__(
        self,
        observation_size,
        num_actions,
        demonstrations,
        action_size=1,
        hidden_sizes=(64, 64),
        learning_rate=3e-4,
        batch_size=256,
        steps_per_fit=10,
        weight_decay=1e-3,
        seed=0,
    ):
        keras.utils.set_random_seed(seed)
        self.num_actions = num_actions
        self.batch_size = batch_size
        self.steps_per_fit = steps_per_fit
        self.discriminator = reward_models.ControlRewardModel(
            num_actions=num_actions, hidden_sizes=hidden_sizes, name="discriminator"
        )
        actions = np.asarray(demonstrations["actions"])
        if not num_actions and actions.ndim == 1:
            actions = actions[:, None]
        self.expert_observations = tf.constant(np.asarray(demonstrations["observations"], np.float32))
        self.expert_actions = tf.constant(actions.astype(np.int64 if num_actions else np.float32))
        self.discriminator({"observations": self.expert_observations[:1], "actions": self.expert_actions[:1]})
        self.optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
        self.optimizer.build(self.discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed + 2)
        self._fit = tf.function(self._fit_steps, reduce_retracing=True)
        self._iterators = {}

    def checkpoint_objects(self):
        return {"discriminator": self.discriminator, "discriminator_optimizer": self.optimizer, "irl_rng": self.rng}

    def _logits(self, observations, actions, training=False):
        actions = tf.cast(actions, tf.int64 if self.num_actions else tf.float32)
        return self.discriminator(
            {"observations": tf.cast(observations, tf.float32), "actions": actions}, training=training
        )

    def _fit_steps(self, agent_observations, agent_actions):
        losses = []
        count = tf.shape(self.expert_observations)[0]
        for _ in range(self.steps_per_fit):
            index = self.rng.uniform([self.batch_size], 0, count, dtype=tf.int32)
            agent_index = self.rng.uniform([self.batch_size], 0, tf.shape(agent_observations)[0], dtype=tf.int32)
            with tf.GradientTape() as tape:
                expert = self._logits(
                    tf.gather(self.expert_observations, index), tf.gather(self.expert_actions, index), True
                )
                policy = self._logits(
                    tf.gather(agent_observations, agent_index), tf.gather(agent_actions, agent_index), True
                )
                loss = tf.reduce_mean(
                    tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(expert), logits=expert)
                ) + tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(policy), logits=policy))
            variables = self.discriminator.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            losses.append(loss)
        return tf.reduce_mean(tf.stack(losses))

    def fit(self, replay_buffer):
        """Refits the discriminator: the agent's newest experience (from `replay_buffer`) against the expert's."""
        trajectory, _ = replay_buffer.get_next(sample_batch_size=self.batch_size * self.steps_per_fit)
        keep = ~trajectory.is_boundary().numpy()
        observations = trajectory.observation.numpy()[keep]
        actions = trajectory.action.numpy()[keep]
        if not self.num_actions and actions.ndim == 1:
            actions = actions[:, None]
        if len(observations) == 0:
            return float("nan")
        return float(self._fit(tf.constant(observations, tf.float32), tf.constant(actions)).numpy())

    def relabel(self, trajectory):
        """The trajectory with reward f(s, a) = log D(s, a) - log(1 - D(s, a)) (inside tf.function)."""
        return trajectory._replace(reward=self._logits(trajectory.observation, trajectory.action))
