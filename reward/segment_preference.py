"""The reward learned from preferences over trajectory segments (Christiano et al. 2017): an ensemble of per-step
MLPs r(s, a) fitted with a Bradley-Terry loss on segment sums, normalised to zero mean and unit std over the labelled
segments, and applied to whole batches of experience inside the agents' compiled train steps (`relabel`), never per
environment step.
"""

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs
from rlhf_tf.reward import control_model
from rlhf_tf.reward import ensemble as ensemble_lib


class PreferenceReward:
    """An ensemble of per-step reward models fitted to segment preferences; the reward the agent sees.

    Args:
      observation_size: features per observation.
      num_actions: discrete action count, or 0 for continuous actions of `action_size` features.
      segment_length: steps per segment.
      capacity: the most labels the run will collect (label arrays are fixed-size: one compiled train step).
      ensemble_size: members, each trained on its own bootstrap draw of the labels.
      hidden_sizes: each member's MLP widths.
      learning_rate, batch_size, weight_decay: the Bradley-Terry fit.
      uncertainty_penalty: the reward the agent sees is the ensemble's mean minus this many of its members' std
        (both normalised): pessimism where the members disagree, i.e. where the labels did not reach.
      seed: seeds the members' initialisation and the minibatch draws.
    """

    def __init__(
        self,
        observation_size,
        num_actions,
        segment_length,
        capacity,
        action_size=1,
        ensemble_size=3,
        hidden_sizes=(64, 64),
        learning_rate=1e-3,
        batch_size=64,
        weight_decay=1e-4,
        uncertainty_penalty=0.0,
        seed=0,
    ):
        configs.require_positive(capacity=capacity, ensemble_size=ensemble_size, segment_length=segment_length)
        self.num_actions = num_actions
        self.batch_size = batch_size
        self.capacity = capacity
        self.uncertainty_penalty = float(uncertainty_penalty)
        keras.utils.set_random_seed(seed)
        members = [
            control_model.ControlRewardModel(num_actions=num_actions, hidden_sizes=hidden_sizes, name=f"member_{k}")
            for k in range(ensemble_size)
        ]
        self.ensemble = ensemble_lib.RewardEnsemble(members, name="control_reward")
        action_shape = [segment_length] if num_actions else [segment_length, action_size]
        action_dtype = tf.int64 if num_actions else tf.float32
        example = {
            "observations": tf.zeros([1, segment_length, observation_size]),
            "actions": tf.zeros([1, *action_shape], action_dtype),
        }
        self.ensemble.member_scores(example)
        self.optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
        self.optimizer.build(self.ensemble.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed + 1)

        def label_slots(name, shape, dtype):
            return tf.Variable(tf.zeros([capacity, *shape], dtype), trainable=False, name=name)

        observation_shape = [segment_length, observation_size]
        self.observations_1 = label_slots("observations_1", observation_shape, tf.float32)
        self.observations_2 = label_slots("observations_2", observation_shape, tf.float32)
        self.actions_1 = label_slots("actions_1", action_shape, action_dtype)
        self.actions_2 = label_slots("actions_2", action_shape, action_dtype)
        self.targets = label_slots("targets", [], tf.float32)
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="label_count")
        self._fit = tf.function(self._fit_steps, jit_compile=False)
        self._score = tf.function(self._member_returns, reduce_retracing=True)

    @property
    def num_labels(self):
        return int(self.count.numpy())

    def checkpoint_objects(self):
        return {"reward_ensemble": self.ensemble, "reward_optimizer": self.optimizer, "reward_rng": self.rng}

    def clear_labels(self):
        """Forgets every label (the ensemble's weights stay): the store's current labels are added back next."""
        self.count.assign(0)

    def add_labels(self, rows):
        """Appends (segment 1, segment 2, target) rows to the label arrays (beyond `capacity`: refused)."""
        if not rows:
            return
        start = self.num_labels
        configs.require(
            start + len(rows) <= self.capacity,
            "More labels than the run's label budget.",
            labels=start + len(rows),
            capacity=self.capacity,
        )
        index = tf.range(start, start + len(rows))[:, None]

        def put(variable, values):
            variable.scatter_nd_update(index, tf.cast(np.stack(values), variable.dtype))

        put(self.observations_1, [first["observations"] for first, _, _ in rows])
        put(self.observations_2, [second["observations"] for _, second, _ in rows])
        put(self.actions_1, [self._actions(first["actions"]) for first, _, _ in rows])
        put(self.actions_2, [self._actions(second["actions"]) for _, second, _ in rows])
        put(self.targets, [target for _, _, target in rows])
        self.count.assign(start + len(rows))

    def _actions(self, actions):
        actions = np.asarray(actions)
        if not self.num_actions and actions.ndim == 1:
            actions = actions[:, None]
        return actions

    def _member_returns(self, observations, actions):
        return tf.reduce_sum(self.ensemble.member_scores({"observations": observations, "actions": actions}), axis=-1)

    def member_returns(self, observations, actions):
        """Segment returns per member [K, M] for segments [M, L, ...]."""
        return self._score(
            tf.convert_to_tensor(observations, tf.float32), tf.convert_to_tensor(self._actions_batch(actions))
        )

    def _actions_batch(self, actions):
        actions = np.asarray(actions)
        if not self.num_actions and actions.ndim == 2:
            actions = actions[..., None]
        return actions.astype(np.int64 if self.num_actions else np.float32)

    def _fit_steps(self, steps):
        losses = tf.TensorArray(tf.float32, size=steps)
        members = self.ensemble.members
        for step in tf.range(steps):
            total = 0.0
            with tf.GradientTape() as tape:
                for member in members:
                    # Each member draws its own minibatch with replacement: a bootstrap of the labels.
                    index = self.rng.uniform([self.batch_size], 0, self.count, dtype=tf.int32)
                    returns = [
                        tf.reduce_sum(
                            member(
                                {
                                    "observations": tf.gather(observations, index),
                                    "actions": tf.gather(actions, index),
                                },
                                training=True,
                            ),
                            axis=-1,
                        )
                        for observations, actions in (
                            (self.observations_1, self.actions_1),
                            (self.observations_2, self.actions_2),
                        )
                    ]
                    targets = tf.gather(self.targets, index)
                    total += tf.reduce_mean(
                        tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=returns[1] - returns[0])
                    )
            variables = self.ensemble.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
            losses = losses.write(step, total / len(members))
        return tf.reduce_mean(losses.stack())

    def fit(self, steps):
        """`steps` Bradley-Terry steps on the labels so far; returns the mean loss (nan without labels)."""
        if self.num_labels == 0:
            return float("nan")
        return float(self._fit(tf.constant(steps)).numpy())

    def accuracy(self):
        """How often the ensemble's mean agrees with the labels' strict preferences (ties left out)."""
        count = self.num_labels
        if count == 0:
            return float("nan")
        first = tf.reduce_mean(self._score(self.observations_1[:count], self.actions_1[:count]), axis=0)
        second = tf.reduce_mean(self._score(self.observations_2[:count], self.actions_2[:count]), axis=0)
        targets = self.targets[:count].numpy()
        strict = targets != 0.5
        if not strict.any():
            return float("nan")
        predicted = (second.numpy() > first.numpy()).astype(np.float32)
        return float(np.mean(predicted[strict] == targets[strict]))

    def set_normalization(self):
        """Zero mean, unit std of the ensemble's per-step reward over every labelled segment's steps.

        The labelled segments are the data the reward was fitted on, so these statistics move slowly and keep the
        contrasts the labels taught. Statistics of the agent's newest experience would not: once the agent is good,
        its steps differ only in what the reward model cannot tell apart, and rescaling those to unit std would
        amplify the model's noise into the agent's whole signal.
        """
        count = self.num_labels
        if count == 0:
            return
        scores = tf.concat(
            [
                self.ensemble({"observations": self.observations_1[:count], "actions": self.actions_1[:count]}),
                self.ensemble({"observations": self.observations_2[:count], "actions": self.actions_2[:count]}),
            ],
            axis=0,
        )
        self.ensemble.reward_mean.assign(tf.reduce_mean(scores))
        self.ensemble.reward_std.assign(tf.math.reduce_std(scores))

    def rewards(self, observations, actions):
        """The normalised learned reward of each step: any leading shape, traceable."""
        actions = tf.cast(actions, tf.int64 if self.num_actions else tf.float32)
        inputs = {"observations": observations, "actions": actions}
        if not self.uncertainty_penalty:
            return self.ensemble.normalized(self.ensemble(inputs))
        members = self.ensemble.member_scores(inputs)
        spread = tf.math.reduce_std(members, axis=0) / tf.maximum(self.ensemble.reward_std, 1e-6)
        return self.ensemble.normalized(tf.reduce_mean(members, axis=0)) - self.uncertainty_penalty * spread

    def relabel(self, trajectory):
        """The same trajectory with the learned reward in place of the environment's (inside tf.function)."""
        return trajectory._replace(reward=self.rewards(trajectory.observation, trajectory.action))
