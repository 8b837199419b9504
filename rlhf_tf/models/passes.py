"""The passes every language learner runs, for any keras-hub decoder: the fast functional pass where the family
has one (`families`), the backbone's own call otherwise.

`read(backbone, dtype)` returns an object with
- `hidden(token_ids, mask)`: hidden states [batch, length, hidden] for sequences whose real tokens are contiguous
  (left-padded prompts followed by right-padded responses, or right-padded sequences); real tokens take positions
  0, 1, ... from the first real one;
- `final_norm(hidden)` and `logits(hidden)`: the backbone's final norm, and norm + output projection;
- `hidden_at(token_ids, mask, index)`: `hidden` at one position per row, [batch, hidden].
Call it inside the tf.function / GradientTape scope that uses it, so gradients reach the variables.

The generic path runs the backbone's own `call` on the rows shifted so that each one's real tokens start at index
0 (keras-hub backbones number positions 0..L-1 whatever the padding, and some attend to padding keys in their
cached calls), then shifts the hidden states back; its `hidden` is already after the final norm. Mixed precision
there is the backbone's own dtype policy.
"""

import tensorflow as tf
from absl import logging

from rlhf_tf.models import families, transformer

_NOTED = set()


def note_generic(backbone):
    """Logs once per architecture that it runs through the generic path."""
    name = type(backbone).__name__
    if name not in _NOTED:
        _NOTED.add(name)
        logging.info(
            "%s runs through rlhf-tf's generic path (the backbone's own call, keras-hub's call_with_cache for "
            "sampling); the fast passes cover %s.",
            name,
            ", ".join(families.FAST_FAMILIES),
        )


class FastPasses:
    """The functional pass of `transformer` over a fast family's weights."""

    fast = True

    def __init__(self, backbone, dtype=None):
        self.weights = families.read_weights(backbone, dtype)

    def hidden(self, token_ids, mask):
        """Hidden states before the final norm."""
        mask = tf.cast(mask, tf.bool)
        positions = transformer.positions_from_mask(mask)
        return transformer.forward(self.weights, token_ids, positions, transformer.causal_mask(mask))

    def final_norm(self, hidden):
        return transformer.final_norm(self.weights, hidden)

    def logits(self, hidden):
        return transformer.logits(self.weights, hidden)

    def hidden_at(self, token_ids, mask, index, positions=None):
        """Hidden states before the final norm at `index` [batch] (the last block runs at that position only)."""
        mask = tf.cast(mask, tf.bool)
        positions = transformer.positions_from_mask(mask) if positions is None else positions
        return transformer.hidden_at(self.weights, token_ids, positions, transformer.causal_mask(mask), index)


def first_real(mask):
    """Index of each row's first real token [batch] (0 for a row with none)."""
    return tf.argmax(tf.cast(mask, tf.int32), axis=1, output_type=tf.int32)


def shift_left(values, shift, fill):
    """values [batch, length, ...] with row r moved left by shift[r] (the vacated end filled with `fill`)."""
    length = tf.shape(values)[1]
    source = tf.range(length)[None] + shift[:, None]
    inside = source < length
    moved = tf.gather(values, tf.minimum(source, length - 1), batch_dims=1)
    inside = tf.reshape(inside, tf.concat([tf.shape(inside), tf.ones([tf.rank(values) - 2], tf.int32)], 0))
    return tf.where(inside, moved, tf.cast(fill, values.dtype))


def shift_right(values, shift):
    """The inverse of `shift_left` on the moved part: row r moved right by shift[r] (the vacated start holds row r's
    first value)."""
    length = tf.shape(values)[1]
    source = tf.maximum(tf.range(length)[None] - shift[:, None], 0)
    return tf.gather(values, source, batch_dims=1)


class GenericPasses:
    """The backbone's own call, for any keras-hub decoder (see the module docstring)."""

    fast = False

    def __init__(self, backbone, training=False):
        note_generic(backbone)
        self.backbone = backbone
        self.training = training

    def hidden(self, token_ids, mask):
        """Hidden states after the final norm (what the backbone returns)."""
        mask = tf.cast(mask, tf.bool)
        shift = first_real(mask)
        inputs = {"token_ids": shift_left(token_ids, shift, 0), "padding_mask": shift_left(mask, shift, False)}
        return shift_right(self.backbone(inputs, training=self.training), shift)

    def final_norm(self, hidden):
        return hidden

    def logits(self, hidden):
        return self.backbone.token_embedding(hidden, reverse=True)

    def hidden_at(self, token_ids, mask, index, positions=None):
        del positions  # the backbone numbers positions itself
        return tf.gather(self.hidden(token_ids, mask), tf.cast(index, tf.int32), batch_dims=1)


def read(backbone, dtype=None, training=False):
    """The passes for `backbone`: fast where its family has them (and dropout is off or not training), generic
    otherwise. `dtype` applies to the fast passes (see `families.read_weights`)."""
    if families.supports(backbone) and not (training and families.has_dropout(backbone)):
        return FastPasses(backbone, dtype)
    return GenericPasses(backbone, training=training)
