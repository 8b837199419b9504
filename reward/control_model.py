"""The control reward model: an MLP r(s, a) per step, summed over a segment (Christiano et al. 2017)."""

import keras
import tensorflow as tf

from rlhf_tf.reward.heads import scalar_head


class ControlRewardModel(keras.Model):
    """An MLP reward r(s, a) per step; a segment's reward is the sum over its steps (Christiano et al. 2017).

    Args:
      num_actions: discrete action count (actions are one-hot encoded), or 0 for continuous actions.
      hidden_sizes: widths of the hidden layers.

    Inputs: {"observations": [..., steps, obs_dim], "actions": [..., steps] (discrete) or [..., steps, act_dim]}.
    `call` returns per-step rewards [..., steps]; `segment_return` sums them.
    """

    def __init__(self, num_actions=0, hidden_sizes=(64, 64), **kwargs):
        super().__init__(**kwargs)
        self.num_actions = num_actions
        self.hidden_sizes = tuple(hidden_sizes)
        self.hidden = [keras.layers.Dense(size, activation="leaky_relu") for size in self.hidden_sizes]
        self.head = scalar_head(self.hidden_sizes[-1] if self.hidden_sizes else 1, "reward_head")
        self.reward_mean = self.add_weight(shape=(), initializer="zeros", trainable=False, name="reward_mean")
        self.reward_std = self.add_weight(shape=(), initializer="ones", trainable=False, name="reward_std")

    def call(self, inputs, training=False):
        observations = tf.cast(inputs["observations"], tf.float32)
        actions = inputs["actions"]
        if self.num_actions:
            actions = tf.one_hot(tf.cast(actions, tf.int32), self.num_actions)
        else:
            actions = tf.cast(actions, tf.float32)
            if actions.shape.rank == observations.shape.rank - 1:
                actions = actions[..., None]
        x = tf.concat([observations, actions], axis=-1)
        for layer in self.hidden:
            x = layer(x)
        return tf.squeeze(self.head(x), -1)

    def segment_return(self, inputs, training=False):
        return tf.reduce_sum(self(inputs, training=training), axis=-1)

    def normalized(self, rewards):
        return (rewards - self.reward_mean) / tf.maximum(self.reward_std, 1e-6)
