"""The language reward model: a keras-hub backbone with a scalar head read at the last real token."""

import keras
import tensorflow as tf

from rlhf_tf.models import passes
from rlhf_tf.reward.heads import scalar_head


class LanguageRewardModel(keras.Model):
    """A keras-hub backbone plus a scalar head read at the last real token of prompt + response.

    The head is initialised N(0, 1/sqrt(d + 1)) with zero bias. `reward_mean` and `reward_std` (non-trainable,
    saved with the model) normalise scores: `normalized(scores) = (scores - mean) / std`, measured on reference
    samples after training and applied in the exported model.

    Args:
      backbone: a keras-hub backbone taking {"token_ids", "padding_mask"} (GPT-2 by default; any keras-hub
        decoder works, including an SFT policy's).

    Inputs: {"token_ids": int [..., length], "padding_mask": bool [..., length]} with any leading shape
    ([batch, K, length] for comparisons). Returns raw scores [...].
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = scalar_head(backbone.hidden_dim, "reward_head")
        self.reward_mean = self.add_weight(shape=(), initializer="zeros", trainable=False, name="reward_mean")
        self.reward_std = self.add_weight(shape=(), initializer="ones", trainable=False, name="reward_std")

    def build(self, input_shape=None):
        self.head.build((None, self.backbone.hidden_dim))
        self.built = True

    def call(self, inputs, training=False):
        token_ids = inputs["token_ids"]
        padding_mask = tf.cast(inputs["padding_mask"], tf.bool)
        leading = tf.shape(token_ids)[:-1]
        length = tf.shape(token_ids)[-1]
        flat_ids = tf.reshape(token_ids, [-1, length])
        flat_mask = tf.reshape(padding_mask, [-1, length])
        last = tf.maximum(tf.reduce_sum(tf.cast(flat_mask, tf.int32), axis=-1) - 1, 0)
        scores = tf.squeeze(self.head(self._last_hidden(flat_ids, flat_mask, last, training)), -1)
        return tf.reshape(tf.cast(scores, tf.float32), leading)

    def _last_hidden(self, token_ids, padding_mask, last, training):
        """The backbone's output (after its final norm) at each row's `last` position, [batch, hidden]. Fast
        families run `transformer.hidden_at` (the same function of the same variables, computing the last block at
        that position only); with dropout on while training, and for other architectures, the backbone's own call.
        """
        compute_dtype = self.backbone.compute_dtype
        model = passes.read(self.backbone, None if compute_dtype == "float32" else compute_dtype, training=training)
        positions = tf.broadcast_to(tf.range(tf.shape(token_ids)[1])[None], tf.shape(token_ids))
        return model.final_norm(model.hidden_at(token_ids, padding_mask, last, positions))

    def normalized(self, scores):
        return (scores - self.reward_mean) / tf.maximum(self.reward_std, 1e-6)
