"""Reward ensembles: K members trained on bootstrap resamples, and their disagreement about a pair.

Bootstrap resampling is done online (Poisson(1) example weights per member, Oza & Russell 2001), drawn statelessly
from (seed, step, member) so that a resumed run draws the same weights. Disagreement about a pair is the standard
deviation across members of P(first preferred) = sigmoid(r_first - r_second): ask people about the pairs the
ensemble disagrees on most (active learning, Christiano et al. 2017).
"""

import math

import keras
import tensorflow as tf

# P(N <= k) for N ~ Poisson(1), k = 0..11 (the tail beyond is below 1e-9).
_POISSON_ONE_CDF = tf.constant(
    [sum(math.exp(-1.0) / math.factorial(j) for j in range(k + 1)) for k in range(12)], tf.float32
)


class RewardEnsemble(keras.Model):
    """K reward models scored together.

    Args:
      members: a list of reward models with the same inputs (e.g. `LanguageRewardModel` or `ControlRewardModel`).

    `member_scores(inputs)` returns member scores stacked on a new leading axis [K, ...]; `call` returns their mean
    (what the ensemble exports and what RL sees), normalised by `normalized` like a single model.
    """

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        if len(members) < 1:
            raise ValueError(f"An ensemble needs at least one member. Received: {len(members)} members")
        self.members = list(members)
        self.reward_mean = self.add_weight(shape=(), initializer="zeros", trainable=False, name="reward_mean")
        self.reward_std = self.add_weight(shape=(), initializer="ones", trainable=False, name="reward_std")

    def build(self, input_shape=None):
        for member in self.members:
            if not member.built:
                member.build()
        self.built = True

    def member_scores(self, inputs, training=False):
        return tf.stack([member(inputs, training=training) for member in self.members], axis=0)

    def call(self, inputs, training=False):
        return tf.reduce_mean(self.member_scores(inputs, training=training), axis=0)

    def mean_scores(self, inputs, training=False):
        return self(inputs, training=training)

    def normalized(self, scores):
        return (scores - self.reward_mean) / tf.maximum(self.reward_std, 1e-6)


def bootstrap_weights(seed, step, num_members, batch_size):
    """Poisson(1) weights [K, batch]: member k counts example i that many times in this step."""
    weights = []
    for member in range(num_members):
        member_seed = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(
                tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]), tf.cast(step, tf.int64)
            ),
            member,
        )
        # Inverse-CDF Poisson(1) from uniforms (stateless_poisson has no XLA kernel): count the CDF steps below u.
        uniform = tf.random.stateless_uniform([batch_size], member_seed)
        weights.append(tf.reduce_sum(tf.cast(uniform[:, None] > _POISSON_ONE_CDF[None, :], tf.float32), axis=1))
    return tf.stack(weights, axis=0)


def disagreement(member_scores_first, member_scores_second):
    """Std over members of sigmoid(r_first - r_second): [K, batch] x 2 -> [batch]."""
    probabilities = tf.sigmoid(tf.cast(member_scores_first, tf.float32) - tf.cast(member_scores_second, tf.float32))
    return tf.math.reduce_std(probabilities, axis=0)
