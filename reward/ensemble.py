"""Reward ensembles: K members trained on bootstrap resamples, and their disagreement about a pair.

Bootstrap resampling is done online (Poisson(1) example weights per member, Oza & Russell 2001), drawn statelessly
from (seed, step, member) so that a resumed run draws the same weights. Disagreement about a pair is the standard
deviation across members of P(first preferred) = sigmoid(r_first - r_second): ask people about the pairs the
ensemble disagrees on most (active learning, Christiano et al. 2017).
"""

import keras
import tensorflow as tf


class RewardEnsemble(keras.Model):
    """K reward models scored together.

    Args:
      members: a list of reward models with the same inputs (e.g. `LanguageRewardModel` or `ControlRewardModel`).

    `call(inputs)` returns member scores stacked on a new leading axis [K, ...]; `mean_scores` averages them.
    """

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        if len(members) < 1:
            raise ValueError(f"An ensemble needs at least one member. Received: {len(members)} members")
        self.members = list(members)

    def call(self, inputs, training=False):
        return tf.stack([member(inputs, training=training) for member in self.members], axis=0)

    def mean_scores(self, inputs, training=False):
        return tf.reduce_mean(self(inputs, training=training), axis=0)


def bootstrap_weights(seed, step, num_members, batch_size):
    """Poisson(1) weights [K, batch]: member k counts example i that many times in this step."""
    weights = []
    for member in range(num_members):
        member_seed = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), tf.cast(step, tf.int64)), member
        )
        weights.append(tf.random.stateless_poisson([batch_size], member_seed, lam=1.0, dtype=tf.float32))
    return tf.stack(weights, axis=0)


def disagreement(member_scores_first, member_scores_second):
    """Std over members of sigmoid(r_first - r_second): [K, batch] x 2 -> [batch]."""
    probabilities = tf.sigmoid(tf.cast(member_scores_first, tf.float32) - tf.cast(member_scores_second, tf.float32))
    return tf.math.reduce_std(probabilities, axis=0)
