"""A functional forward pass over a keras-hub GPT-2 backbone's own weights, with explicit positions and a KV cache.

keras-hub's GPT2Backbone numbers positions 0..L-1 whatever the padding, and its cache is one stacked tensor that
every decoding step slices and re-stacks. RL needs more: left-padded prompts whose real tokens start at position
0, per-token log-probs from the sampling pass, and speed. This module computes exactly GPT-2's function (pre-layer
norm decoder blocks, approximate GELU, learned positions, tied output embedding) from the backbone's variables:
- `forward`: a teacher-forced pass with any positions and attention mask (differentiable: it reads the variables);
- `prompt_pass` / `decode_step`: the cached pass the sampler runs, with separate K and V per layer laid out
  [batch, heads, positions, head_dim], attention by einsum, and one fused QKV matmul per layer.
Blocks work on [batch * length, hidden] so each dense layer is one plain matmul, and `dense` gives XLA:CPU a
backward pass it runs at full speed (see there). Tests check it against the backbone's own logits.
"""

import dataclasses

import keras
import keras_hub
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from rlhf_tf.errors import UserInputError

LAYER_NORM_EPSILON = 1e-5
NEG_INF = -1e9


@dataclasses.dataclass
class LayerWeights:
    attention_norm: tuple  # (gamma, beta)
    qkv_kernel: tf.Tensor  # [hidden, 3 * heads * head_dim]
    qkv_bias: tf.Tensor  # [3 * heads * head_dim]
    output_kernel: tf.Tensor  # [heads * head_dim, hidden]
    output_bias: tf.Tensor
    feedforward_norm: tuple
    intermediate_kernel: tf.Tensor
    intermediate_bias: tf.Tensor
    feedforward_kernel: tf.Tensor
    feedforward_bias: tf.Tensor


@dataclasses.dataclass
class Weights:
    """The tensors of a GPT-2 backbone, arranged for fast passes. Read them inside the function that uses them, so
    gradients flow to the backbone's variables and the fused QKV kernel is built once per call, not per step."""

    token_embedding: tf.Tensor  # [vocabulary, hidden]
    position_embedding: tf.Tensor  # [max_positions, hidden]
    layers: list
    final_norm: tuple
    num_heads: int
    head_dim: int


def supports(backbone):
    """Whether this module implements `backbone`'s architecture (keras-hub GPT-2 backbones)."""

    return isinstance(backbone, keras_hub.models.GPT2Backbone)


def dropout_layers(backbone):
    """The backbone's Dropout layers."""

    return [layer for layer in backbone._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Dropout)]


def has_dropout(backbone):
    """Whether any of the backbone's Dropout layers is on (`forward` computes the function without dropout)."""
    return any(layer.rate > 0 for layer in dropout_layers(backbone))


def check_supported(backbone):
    """Raises a clear error for backbones whose architecture this module does not implement."""
    if not supports(backbone):
        raise UserInputError(
            "rlhf-tf's sampler and log-prob passes implement GPT-2-style backbones (learned positions, pre-norm "
            f"decoder blocks); train a GPT-2 preset or config. Received: {type(backbone).__name__}"
        )


def read_weights(backbone, dtype=None):
    """`Weights` from a keras-hub GPT2Backbone (call inside tf.function / GradientTape scopes).

    `dtype` (e.g. tf.bfloat16) casts them for mixed precision: matmuls run in that type while the variables,
    and so the optimizer's updates, stay float32; layer norms and softmaxes compute in float32.
    """

    def value(variable):
        tensor = tf.convert_to_tensor(variable)
        return tf.cast(tensor, dtype) if dtype is not None else tensor

    layers = []
    for layer in backbone.transformer_layers:
        attention = layer._self_attention_layer
        hidden = attention._query_dense.kernel.shape[0]
        kernels = [
            tf.reshape(value(dense.kernel), [hidden, -1])
            for dense in (attention._query_dense, attention._key_dense, attention._value_dense)
        ]
        biases = [
            tf.reshape(value(dense.bias), [-1])
            for dense in (attention._query_dense, attention._key_dense, attention._value_dense)
        ]
        layers.append(
            LayerWeights(
                attention_norm=(
                    value(layer._self_attention_layer_norm.gamma),
                    value(layer._self_attention_layer_norm.beta),
                ),
                qkv_kernel=tf.concat(kernels, axis=1),
                qkv_bias=tf.concat(biases, axis=0),
                output_kernel=tf.reshape(value(attention._output_dense.kernel), [-1, hidden]),
                output_bias=value(attention._output_dense.bias),
                feedforward_norm=(
                    value(layer._feedforward_layer_norm.gamma),
                    value(layer._feedforward_layer_norm.beta),
                ),
                intermediate_kernel=value(layer._feedforward_intermediate_dense.kernel),
                intermediate_bias=value(layer._feedforward_intermediate_dense.bias),
                feedforward_kernel=value(layer._feedforward_output_dense.kernel),
                feedforward_bias=value(layer._feedforward_output_dense.bias),
            )
        )
    first = backbone.transformer_layers[0]._self_attention_layer
    return Weights(
        token_embedding=value(backbone.token_embedding.embeddings),
        position_embedding=value(backbone.position_embedding.position_embeddings),
        layers=layers,
        final_norm=(value(backbone.layer_norm.gamma), value(backbone.layer_norm.beta)),
        num_heads=first._num_heads,
        head_dim=first._key_dim,
    )


def _layer_norm(x, gamma_beta):
    gamma, beta = gamma_beta
    wide = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(wide, axes=[-1], keepdims=True)
    return tf.cast((wide - mean) * tf.math.rsqrt(variance + LAYER_NORM_EPSILON), x.dtype) * gamma + beta


def _materialized_transpose(matrix):
    """matrix^T as a tensor of its own: the barrier keeps XLA from folding the transpose back into the next dot."""
    return xla.optimization_barrier(tf.transpose(matrix))[0]


@tf.custom_gradient
def dense(x, kernel, bias):
    """x [tokens, in] @ kernel [in, out] + bias, whose backward pass runs row-major matmuls only.

    A kernel's gradient contracts over tokens, the major dimension of both x and dy; XLA:CPU runs such a dot (lhs
    contracted on its major dimension) at about half the speed of a plain one. So the narrower of x and dy is
    transposed once into its own buffer and the product is a plain [in or out, tokens] @ [tokens, ...] matmul (a
    4-layer width-256 GPT-2 training step: 0.55 -> 0.64 of the fp32 matmul peak together with the flattening to
    [tokens, hidden] in `forward`). Mathematically the ordinary gradient.
    """

    def gradient(dy):
        dx = tf.matmul(dy, kernel, transpose_b=True)
        if x.shape[-1] <= dy.shape[-1]:
            dkernel = tf.matmul(_materialized_transpose(x), dy)
        else:
            dkernel = tf.transpose(xla.optimization_barrier(tf.matmul(_materialized_transpose(dy), x))[0])
        return dx, dkernel, tf.reduce_sum(dy, axis=0)

    return tf.matmul(x, kernel) + bias, gradient


def _split_heads(x, weights, batch, length):
    """[batch * length, heads * head_dim] -> [batch, heads, length, head_dim]."""
    x = tf.reshape(x, [batch, length, weights.num_heads, weights.head_dim])
    return tf.transpose(x, [0, 2, 1, 3])


def _merge_heads(x):
    """[batch, heads, length, head_dim] -> [batch * length, heads * head_dim]."""
    heads, head_dim = tf.shape(x)[1], tf.shape(x)[3]
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, heads * head_dim])


def _attend(query, key, value, mask, weights):
    """query [b, h, l, d], key/value [b, h, s, d], mask [b, 1 or h, l, s] bool -> [b * l, h * d]."""
    scores = tf.cast(tf.einsum("bhld,bhsd->bhls", query, key), tf.float32) * (float(weights.head_dim) ** -0.5)
    scores = tf.where(mask, scores, tf.cast(NEG_INF, scores.dtype))
    probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
    return _merge_heads(tf.einsum("bhls,bhsd->bhld", probabilities, value))


def _feedforward(x, layer):
    h = tf.nn.gelu(
        dense(_layer_norm(x, layer.feedforward_norm), layer.intermediate_kernel, layer.intermediate_bias),
        approximate=True,
    )
    return x + dense(h, layer.feedforward_kernel, layer.feedforward_bias)


def _qkv(x, layer, weights, batch, length):
    fused = dense(_layer_norm(x, layer.attention_norm), layer.qkv_kernel, layer.qkv_bias)
    query, key, value = tf.split(fused, 3, axis=-1)
    return tuple(_split_heads(part, weights, batch, length) for part in (query, key, value))


def _block(x, layer, weights, batch, length, attention_mask, cache=None):
    """One decoder block on x [batch * length, hidden]; with `cache` = (key_cache, value_cache, index) the new keys
    and values are written there and attention reads the whole cache. Returns (x, key, value)."""
    query, key, value = _qkv(x, layer, weights, batch, length)
    if cache is not None:
        key_cache, value_cache, index = cache
        key = xla.dynamic_update_slice(key_cache, key, [0, 0, index, 0])
        value = xla.dynamic_update_slice(value_cache, value, [0, 0, index, 0])
    x = x + dense(_attend(query, key, value, attention_mask, weights), layer.output_kernel, layer.output_bias)
    return _feedforward(x, layer), key, value


def embed(weights, token_ids, positions):
    return tf.gather(weights.token_embedding, token_ids) + tf.gather(weights.position_embedding, positions)


def final_norm(weights, hidden):
    """The backbone's final layer norm (keras-hub backbones output hidden states after it)."""
    return _layer_norm(hidden, weights.final_norm)


def logits(weights, hidden):
    """Final layer norm and the tied output embedding: [..., hidden] -> [..., vocabulary]."""
    return tf.matmul(final_norm(weights, hidden), weights.token_embedding, transpose_b=True)


def positions_from_mask(mask):
    """Positions that start at 0 on each row's first real token (left padding gets position 0 too)."""
    return tf.maximum(tf.cumsum(tf.cast(mask, tf.int32), axis=1) - 1, 0)


def causal_mask(key_mask):
    """[batch, length] real-token mask -> [batch, 1, length, length]: causal, and never attending to padding."""
    length = tf.shape(key_mask)[1]
    causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    return tf.logical_and(causal[None, None], tf.cast(key_mask, tf.bool)[:, None, None, :])


def _tokens(weights, token_ids, positions):
    """Embeddings as [batch * length, hidden], the layout every block works in (one plain matmul per dense layer)."""
    return tf.reshape(embed(weights, token_ids, positions), [-1, weights.token_embedding.shape[-1]])


def forward(weights, token_ids, positions, attention_mask):
    """Teacher-forced pass: hidden states [batch, length, hidden] (before the final norm)."""
    batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    x = _tokens(weights, token_ids, positions)
    for layer in weights.layers:
        x, _, _ = _block(x, layer, weights, batch, length, attention_mask)
    return tf.reshape(x, [batch, length, -1])


def hidden_at(weights, token_ids, positions, attention_mask, index):
    """Hidden states [batch, hidden] at one position per row, `index` [batch] (before the final norm): what a
    reward model reads. Equal to `forward(...)[row, index[row]]`, but the last block computes its query, attention
    and feed-forward at that position only (keys and values everywhere): for 4 layers about a fifth fewer FLOPs."""
    batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    x = _tokens(weights, token_ids, positions)
    *earlier, last = weights.layers
    for layer in earlier:
        x, _, _ = _block(x, layer, weights, batch, length, attention_mask)
    rows = tf.range(batch) * length + tf.cast(index, tf.int32)
    normed = _layer_norm(x, last.attention_norm)
    width = weights.num_heads * weights.head_dim
    key, value = tf.split(dense(normed, last.qkv_kernel[:, width:], last.qkv_bias[width:]), 2, axis=-1)
    query = dense(tf.gather(normed, rows), last.qkv_kernel[:, :width], last.qkv_bias[:width])
    mask = tf.gather(attention_mask[:, 0], index, batch_dims=1)[:, None, None, :]
    attended = _attend(
        _split_heads(query, weights, batch, 1),
        _split_heads(key, weights, batch, length),
        _split_heads(value, weights, batch, length),
        mask,
        weights,
    )
    x = tf.gather(x, rows) + dense(attended, last.output_kernel, last.output_bias)
    return _feedforward(x, last)


def prompt_pass(weights, token_ids, mask, total_length):
    """The prompt's pass for decoding: (last hidden [batch, hidden], caches) with caches sized `total_length`.

    Caches are per layer (key, value), each [batch, heads, total_length, head_dim], filled for the prompt slots.
    """
    batch, prompt_length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    attention_mask = causal_mask(mask)
    x = _tokens(weights, token_ids, positions_from_mask(mask))
    padding = [[0, 0], [0, 0], [0, total_length - prompt_length], [0, 0]]
    caches = []
    for layer in weights.layers:
        x, key, value = _block(x, layer, weights, batch, prompt_length, attention_mask)
        caches.append((tf.pad(key, padding), tf.pad(value, padding)))
    return tf.reshape(x, [batch, prompt_length, -1])[:, -1], caches


def decode_step(weights, token, position, caches, cache_index, key_mask):
    """One cached step: token [batch], position [batch], key_mask [batch, total] -> (hidden [batch, hidden], caches)."""
    batch = tf.shape(token)[0]
    x = _tokens(weights, token[:, None], position[:, None])
    mask = key_mask[:, None, None, :]
    updated = []
    for layer, (key_cache, value_cache) in zip(weights.layers, caches):
        x, key_cache, value_cache = _block(x, layer, weights, batch, 1, mask, (key_cache, value_cache, cache_index))
        updated.append((key_cache, value_cache))
    return x, updated
