"""Inverse RL from demonstrations: an adversarial learned reward (GAIL, Ho & Ermon 2016; the reward form of AIRL,
Fu et al. 2018).

A discriminator D(s, a) = sigmoid(f(s, a)) learns to tell the demonstrator's (observation, action) pairs from the
agent's own, refitted every iteration on the agent's newest experience, so the reward moves with the policy. The
agent is rewarded with GAIL's -log(1 - D(s, a)) = softplus(f) (default), or with AIRL's reward form
f = log D - log(1 - D). On CartPole with the fixed horizon (20 demonstrations, PPO, no behavioural cloning) GAIL's
form reached the demonstrator's return where AIRL's oscillated around 100-160: its reward is positive and bounded
below, so the value function has a steadier target. The control loop hands the discriminator the demonstrations'
first `horizon` steps only (the occupancy the agent can match in its training episodes) and the fixed horizon's
absorbing failed state as a permanent agent sample.
"""

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs
from rlhf_tf.reward import control_model

REWARD_FORMS = ("gail", "airl")


class AdversarialReward:
    """The discriminator and the reward it gives (see the module docstring).

    Args:
      observation_size: features per observation.
      num_actions: discrete action count, or 0 for continuous actions of `action_size` features.
      demonstrations: {"observations": [N, D], "actions": [N, ...]} expert pairs.
      hidden_sizes: the discriminator's MLP widths.
      learning_rate, batch_size, steps_per_fit, weight_decay: the discriminator's fit each iteration (a few steps:
        a discriminator that wins outright gives the agent no gradient to follow).
      reward_form: "gail" or "airl" (see the module docstring).
      absorbing_observation: the fixed horizon's failed state, when there is one: always counted among the agent's
        samples.
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
        steps_per_fit=2,
        reward_form="gail",
        weight_decay=1e-3,
        absorbing_observation=None,
        seed=0,
    ):
        keras.utils.set_random_seed(seed)
        self.num_actions = num_actions
        self.batch_size = batch_size
        self.steps_per_fit = steps_per_fit
        configs.require(
            reward_form in REWARD_FORMS, f"`reward_form` must be one of {list(REWARD_FORMS)}.", reward_form=reward_form
        )
        self.reward_form = reward_form
        self.discriminator = control_model.ControlRewardModel(
            num_actions=num_actions, hidden_sizes=hidden_sizes, name="discriminator"
        )
        actions = np.asarray(demonstrations["actions"])
        if not num_actions and actions.ndim == 1:
            actions = actions[:, None]
        self.expert_observations = tf.constant(np.asarray(demonstrations["observations"], np.float32))
        self.expert_actions = tf.constant(actions.astype(np.int64 if num_actions else np.float32))
        self.absorbing = None
        if absorbing_observation is not None:
            # The fixed horizon's failed state (every action, or a zero action), a sixteenth of every agent batch:
            # the demonstrator never fails, and once the agent stops failing nothing else would keep the
            # discriminator from scoring the failed state like the expert states around the origin it resembles.
            count = max(1, batch_size // 16)
            absorbing_actions = np.arange(count) % num_actions if num_actions else np.zeros((count, action_size))
            self.absorbing = (
                tf.constant(np.repeat(np.asarray(absorbing_observation, np.float32)[None], count, axis=0)),
                tf.constant(absorbing_actions.astype(np.int64 if num_actions else np.float32)),
            )
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
                policy_observations = tf.gather(agent_observations, agent_index)
                policy_actions = tf.cast(tf.gather(agent_actions, agent_index), self.expert_actions.dtype)
                if self.absorbing is not None:
                    policy_observations = tf.concat([policy_observations, self.absorbing[0]], 0)
                    policy_actions = tf.concat([policy_actions, self.absorbing[1]], 0)
                policy = self._logits(policy_observations, policy_actions, True)
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
        """The trajectory with the discriminator's reward in place of the environment's (inside tf.function)."""
        logits = self._logits(trajectory.observation, trajectory.action)
        if self.reward_form == "gail":
            return trajectory._replace(reward=tf.nn.softplus(logits))  # -log(1 - D)
        return trajectory._replace(reward=logits)  # log D - log(1 - D)
