"""A functional forward pass over a keras-hub decoder's own weights, with explicit positions and a KV cache.

keras-hub's backbones number positions 0..L-1 whatever the padding, and their caches are one stacked tensor that
every decoding step slices and re-stacks. RL needs more: left-padded prompts whose real tokens start at position
0, per-token log-probs from the sampling pass, and speed. This module computes a pre-norm decoder's function from
the weights `families.read_weights` arranges (`Weights`), covering the two block shapes keras-hub's fine-tuned
families use:
- GPT-2: layer norms, learned positions, multi-head attention, a GELU MLP, tied output embedding;
- the Llama-style block (Llama, Llama 3, Mistral, Qwen 2, Qwen 3, Gemma, Gemma 3): RMS norms, rotary positions
  (through the family's own rotary layer, so its scaling variant is the family's), grouped-query attention,
  gated MLPs, and where a family has them QK-norm, post-attention / post-MLP norms, embedding scaling, attention
  and final logit soft-capping, sliding-window attention and an untied output projection.
Entry points:
- `forward`: a teacher-forced pass with any positions and attention mask (differentiable: it reads the variables);
- `hidden_at`: the hidden state at one position per row (what a reward model reads);
- `prompt_pass` / `decode_step`: the cached pass the sampler runs, with separate K and V per layer laid out
  [batch, key_value_heads, positions, head_dim] (keys transposed with grouped-query attention, see
  `Weights.keys_transposed`), attention by einsum, and one fused QKV matmul per layer.
Blocks work on [batch * length, hidden] so each dense layer is one plain matmul, and `dense` gives XLA:CPU a
backward pass it runs at full speed (see there). Tests check every family against the backbone's own call.
"""

import dataclasses
from collections.abc import Callable

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

LAYER_NORM_EPSILON = 1e-5
NEG_INF = -1e9


@dataclasses.dataclass
class LayerWeights:
    """One decoder block. Norms and the rotary embedding are functions of a tensor (the family's own formula);
    kernels are [in, out] matrices, biases may be None."""

    attention_norm: Callable
    qkv_kernel: tf.Tensor  # [hidden, (heads + 2 * key_value_heads) * head_dim]
    qkv_bias: tf.Tensor | None
    output_kernel: tf.Tensor  # [heads * head_dim, hidden]
    output_bias: tf.Tensor | None
    feedforward_norm: Callable
    intermediate_kernel: tf.Tensor  # [hidden, intermediate], or [hidden, 2 * intermediate] (gate, up) when gated
    intermediate_bias: tf.Tensor | None
    feedforward_kernel: tf.Tensor  # [intermediate, hidden]
    feedforward_bias: tf.Tensor | None
    activation: Callable
    gated: bool = False  # MLP = activation(gate(x)) * up(x)
    rotary: Callable | None = None  # (x [batch, length, heads, head_dim], positions [batch, length]) -> x
    query_norm: Callable | None = None  # over head_dim, before the rotary embedding
    key_norm: Callable | None = None
    post_attention_norm: Callable | None = None
    post_feedforward_norm: Callable | None = None
    sliding_window: int | None = None  # a query attends to keys fewer than this many positions back
    attention_soft_cap: float | None = None


@dataclasses.dataclass
class Weights:
    """The tensors of a keras-hub decoder, arranged for fast passes. Read them inside the function that uses them,
    so gradients flow to the backbone's variables and fused kernels are built once per call, not per step."""

    token_embedding: tf.Tensor  # [vocabulary, hidden]
    layers: list
    final_norm: Callable
    num_heads: int
    head_dim: int
    num_key_value_heads: int = 0  # 0: as many as query heads
    query_scale: float = 0.0  # 0: head_dim ** -0.5
    position_embedding: tf.Tensor | None = None  # [max_positions, hidden] (learned positions)
    embedding_scale: float | None = None  # token embeddings are multiplied by it (Gemma: sqrt(hidden))
    output_kernel: tf.Tensor | None = None  # [hidden, vocabulary] when the output projection is not tied
    final_soft_cap: float | None = None
    family: str = ""

    def __post_init__(self):
        self.num_key_value_heads = self.num_key_value_heads or self.num_heads
        self.query_scale = self.query_scale or float(self.head_dim) ** -0.5

    @property
    def groups(self):
        return self.num_heads // self.num_key_value_heads

    @property
    def keys_transposed(self):
        """Whether the decoding cache keeps keys as [b, kv, head_dim, positions]. With grouped-query attention the
        scores then need no transpose of the whole cache each step (12% faster decoding on XLA:CPU, measured);
        multi-head attention gains nothing, so GPT-2 keeps [b, heads, positions, head_dim] and its numbers."""
        return self.groups > 1


def layer_norm(x, gamma_beta, epsilon=LAYER_NORM_EPSILON):
    """GPT-2's layer norm, computed in float32 and returned in x's dtype."""
    gamma, beta = gamma_beta
    wide = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(wide, axes=[-1], keepdims=True)
    return tf.cast((wide - mean) * tf.math.rsqrt(variance + epsilon), x.dtype) * gamma + beta


def _materialized_transpose(matrix):
    """matrix^T as a tensor of its own: the barrier keeps XLA from folding the transpose back into the next dot."""
    return xla.optimization_barrier(tf.transpose(matrix))[0]


def _kernel_gradient(x, kernel, dy):
    """(dx, dkernel) of x @ kernel with row-major matmuls only (see `dense`)."""
    dx = tf.matmul(dy, kernel, transpose_b=True)
    if x.shape[-1] <= dy.shape[-1]:
        dkernel = tf.matmul(_materialized_transpose(x), dy)
    else:
        dkernel = tf.transpose(xla.optimization_barrier(tf.matmul(_materialized_transpose(dy), x))[0])
    return dx, dkernel


@tf.custom_gradient
def _dense_with_bias(x, kernel, bias):
    def gradient(dy):
        return (*_kernel_gradient(x, kernel, dy), tf.reduce_sum(dy, axis=0))

    return tf.matmul(x, kernel) + bias, gradient


@tf.custom_gradient
def _dense_without_bias(x, kernel):
    def gradient(dy):
        return _kernel_gradient(x, kernel, dy)

    return tf.matmul(x, kernel), gradient


def dense(x, kernel, bias=None):
    """x [tokens, in] @ kernel [in, out] (+ bias), whose backward pass runs row-major matmuls only.

    A kernel's gradient contracts over tokens, the major dimension of both x and dy; XLA:CPU runs such a dot (lhs
    contracted on its major dimension) at about half the speed of a plain one. So the narrower of x and dy is
    transposed once into its own buffer and the product is a plain [in or out, tokens] @ [tokens, ...] matmul (a
    4-layer width-256 GPT-2 training step: 0.55 -> 0.64 of the fp32 matmul peak together with the flattening to
    [tokens, hidden] in `forward`). Mathematically the ordinary gradient.
    """
    if bias is None:
        return _dense_without_bias(x, kernel)
    return _dense_with_bias(x, kernel, bias)


def _split_heads(x, heads, head_dim, batch, length):
    """[batch * length, heads * head_dim] -> [batch, heads, length, head_dim]."""
    x = tf.reshape(x, [batch, length, heads, head_dim])
    return tf.transpose(x, [0, 2, 1, 3])


def _merge_heads(x):
    """[batch, heads, length, head_dim] -> [batch * length, heads * head_dim]."""
    heads, head_dim = tf.shape(x)[1], tf.shape(x)[3]
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, heads * head_dim])


def _soft_cap(x, cap):
    return tf.tanh(x / cap) * cap if cap else x


def _attend(query, key, value, mask, weights, layer, keys_transposed=False):
    """query [b, h, l, d], key/value [b, kv, s, d], mask [b, 1, l, s] bool -> [b * l, h * d].

    With grouped-query attention query head h reads key/value head h // groups (keras-hub's `repeat` order), and
    `keys_transposed` (only there: `Weights.keys_transposed`) says key is [b, kv, d, s], the decoding cache's layout.
    """
    if weights.groups == 1:
        scores = tf.cast(tf.einsum("bhld,bhsd->bhls", query, key), tf.float32) * weights.query_scale
        scores = _soft_cap(scores, layer.attention_soft_cap)
        scores = tf.where(mask, scores, tf.cast(NEG_INF, scores.dtype))
        probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
        return _merge_heads(tf.einsum("bhls,bhsd->bhld", probabilities, value))
    batch, length = tf.shape(query)[0], tf.shape(query)[2]
    grouped = tf.reshape(query, [batch, weights.num_key_value_heads, weights.groups, length, weights.head_dim])
    key_axes = "ds" if keys_transposed else "sd"
    scores = tf.cast(tf.einsum(f"bkgld,bk{key_axes}->bkgls", grouped, key), tf.float32) * weights.query_scale
    scores = _soft_cap(scores, layer.attention_soft_cap)
    scores = tf.where(mask[:, :, None], scores, tf.cast(NEG_INF, scores.dtype))
    probabilities = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
    mixed = tf.einsum("bkgls,bksd->bkgld", probabilities, value)
    return _merge_heads(tf.reshape(mixed, [batch, weights.num_heads, length, weights.head_dim]))


def _norm(norm, x):
    """A family's norm in x's dtype (the norms compute in float32 whatever the matmuls use)."""
    return tf.cast(norm(x), x.dtype)


def _feedforward(x, layer):
    h = dense(_norm(layer.feedforward_norm, x), layer.intermediate_kernel, layer.intermediate_bias)
    if layer.gated:
        gate, up = tf.split(h, 2, axis=-1)
        h = tf.cast(layer.activation(tf.cast(gate, tf.float32)), up.dtype) * up
    else:
        h = layer.activation(h)
    h = dense(h, layer.feedforward_kernel, layer.feedforward_bias)
    if layer.post_feedforward_norm is not None:
        h = _norm(layer.post_feedforward_norm, h)
    return x + h


def _qkv_parts(layer, weights):
    """(kernel, bias) slices of the fused QKV projection for query, key and value."""
    query_width = weights.num_heads * weights.head_dim
    key_width = weights.num_key_value_heads * weights.head_dim
    bounds = [(0, query_width), (query_width, query_width + key_width), (query_width + key_width, None)]
    bias = layer.qkv_bias
    return [(layer.qkv_kernel[:, a:b], None if bias is None else bias[a:b]) for a, b in bounds]


def _qkv(normed, layer, weights, batch, length, positions):
    """Query [b, h, l, d], key and value [b, kv, l, d] from normed x [b * l, hidden]."""
    fused = dense(normed, layer.qkv_kernel, layer.qkv_bias)
    if layer.rotary is None and layer.query_norm is None and weights.groups == 1:
        # GPT-2: equal thirds, no rotary or QK-norm.
        parts = tf.split(fused, 3, axis=-1)
        return tuple(_split_heads(p, weights.num_heads, weights.head_dim, batch, length) for p in parts)
    widths = [weights.num_heads * weights.head_dim] + [weights.num_key_value_heads * weights.head_dim] * 2
    query, key, value = tf.split(fused, widths, axis=-1)
    query = _heads(query, weights.num_heads, weights, layer, layer.query_norm, batch, length, positions)
    key = _heads(key, weights.num_key_value_heads, weights, layer, layer.key_norm, batch, length, positions)
    value = _split_heads(value, weights.num_key_value_heads, weights.head_dim, batch, length)
    return query, key, value


def _heads(x, heads, weights, layer, norm, batch, length, positions):
    """[b * l, heads * d] -> [b, heads, l, d] with the family's QK-norm and rotary embedding."""
    x = tf.reshape(x, [batch, length, heads, weights.head_dim])
    if norm is not None:
        x = _norm(norm, x)
    if layer.rotary is not None:
        x = tf.cast(layer.rotary(x, positions), x.dtype)
    return tf.transpose(x, [0, 2, 1, 3])


def _window(mask, layer, query_slots, key_slots):
    """`mask` [b, 1, l, s] with keys `layer.sliding_window` or more slots behind their query masked off.

    Slots stand for positions: real tokens are contiguous, so slot distance is position distance."""
    if layer.sliding_window is None:
        return mask
    near = (query_slots[:, None] - key_slots[None, :]) < layer.sliding_window
    return tf.logical_and(mask, near[None, None])


def _attention(x, layer, weights, batch, length, attention_mask, positions, cache=None):
    """The attention half of a block on x [batch * length, hidden]; with `cache` = (key_cache, value_cache, index)
    the new keys and values are written there and attention reads the whole cache. Returns (x, key, value)."""
    query, key, value = _qkv(_norm(layer.attention_norm, x), layer, weights, batch, length, positions)
    query_slots = tf.range(length)
    if cache is not None:
        key_cache, value_cache, index = cache
        if weights.keys_transposed:
            key = xla.dynamic_update_slice(key_cache, tf.transpose(key, [0, 1, 3, 2]), [0, 0, 0, index])
        else:
            key = xla.dynamic_update_slice(key_cache, key, [0, 0, index, 0])
        value = xla.dynamic_update_slice(value_cache, value, [0, 0, index, 0])
        query_slots = query_slots + index
    mask = _window(attention_mask, layer, query_slots, tf.range(tf.shape(value)[2]))
    keys_transposed = cache is not None and weights.keys_transposed
    attended = _attend(query, key, value, mask, weights, layer, keys_transposed)
    attended = dense(attended, layer.output_kernel, layer.output_bias)
    if layer.post_attention_norm is not None:
        attended = _norm(layer.post_attention_norm, attended)
    return x + attended, key, value


def _block(x, layer, weights, batch, length, attention_mask, positions, cache=None):
    """One decoder block on x [batch * length, hidden]. Returns (x, key, value)."""
    x, key, value = _attention(x, layer, weights, batch, length, attention_mask, positions, cache)
    return _feedforward(x, layer), key, value


def embed(weights, token_ids, positions):
    x = tf.gather(weights.token_embedding, token_ids)
    if weights.embedding_scale is not None:
        x = x * tf.cast(weights.embedding_scale, x.dtype)
    if weights.position_embedding is not None:
        x = x + tf.gather(weights.position_embedding, positions)
    return x


def final_norm(weights, hidden):
    """The backbone's final norm (keras-hub backbones output hidden states after it)."""
    return _norm(weights.final_norm, hidden)


def logits(weights, hidden):
    """Final norm and the output projection (tied or not, soft-capped where the family does): [..., hidden] ->
    [..., vocabulary]."""
    normed = final_norm(weights, hidden)
    if weights.output_kernel is None:
        projected = tf.matmul(normed, weights.token_embedding, transpose_b=True)
    else:
        projected = tf.matmul(normed, weights.output_kernel)
    return _soft_cap(projected, weights.final_soft_cap)


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
        x, _, _ = _block(x, layer, weights, batch, length, attention_mask, positions)
    return tf.reshape(x, [batch, length, -1])


def hidden_at(weights, token_ids, positions, attention_mask, index):
    """Hidden states [batch, hidden] at one position per row, `index` [batch] (before the final norm): what a
    reward model reads. Equal to `forward(...)[row, index[row]]`, but the last block computes its query, attention
    and feed-forward at that position only (keys and values everywhere): for 4 layers about a fifth fewer FLOPs."""
    batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    x = _tokens(weights, token_ids, positions)
    *earlier, last = weights.layers
    for layer in earlier:
        x, _, _ = _block(x, layer, weights, batch, length, attention_mask, positions)
    index = tf.cast(index, tf.int32)
    rows = tf.range(batch) * length + index
    normed = _norm(last.attention_norm, x)
    (query_kernel, query_bias), (key_kernel, key_bias), (value_kernel, value_bias) = _qkv_parts(last, weights)
    if last.rotary is None and last.key_norm is None and weights.groups == 1:
        # GPT-2: keys and values in one matmul.
        width = weights.num_heads * weights.head_dim
        key, value = tf.split(dense(normed, last.qkv_kernel[:, width:], last.qkv_bias[width:]), 2, axis=-1)
        key = _split_heads(key, weights.num_heads, weights.head_dim, batch, length)
        value = _split_heads(value, weights.num_heads, weights.head_dim, batch, length)
        query = _split_heads(
            dense(tf.gather(normed, rows), query_kernel, query_bias), weights.num_heads, weights.head_dim, batch, 1
        )
    else:
        kv = weights.num_key_value_heads
        key = _heads(dense(normed, key_kernel, key_bias), kv, weights, last, last.key_norm, batch, length, positions)
        query_positions = tf.gather(positions, index[:, None], batch_dims=1)
        query = _heads(
            dense(tf.gather(normed, rows), query_kernel, query_bias),
            weights.num_heads,
            weights,
            last,
            last.query_norm,
            batch,
            1,
            query_positions,
        )
        value = _split_heads(dense(normed, value_kernel, value_bias), kv, weights.head_dim, batch, length)
    mask = tf.gather(attention_mask[:, 0], index, batch_dims=1)[:, None, None, :]
    if last.sliding_window is not None:
        near = (index[:, None] - tf.range(length)[None, :]) < last.sliding_window
        mask = tf.logical_and(mask, near[:, None, None, :])
    attended = dense(_attend(query, key, value, mask, weights, last), last.output_kernel, last.output_bias)
    if last.post_attention_norm is not None:
        attended = _norm(last.post_attention_norm, attended)
    return _feedforward(tf.gather(x, rows) + attended, last)


def prompt_pass(weights, token_ids, mask, total_length):
    """The prompt's pass for decoding: (last hidden [batch, hidden], caches) with caches sized `total_length`.

    Caches are per layer (key, value), each [batch, key_value_heads, total_length, head_dim] (keys as
    [batch, key_value_heads, head_dim, total_length] where `weights.keys_transposed`), filled for the prompt
    slots.
    """
    batch, prompt_length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    attention_mask = causal_mask(mask)
    positions = positions_from_mask(mask)
    x = _tokens(weights, token_ids, positions)
    padding = [[0, 0], [0, 0], [0, total_length - prompt_length], [0, 0]]
    caches = []
    for layer in weights.layers:
        x, key, value = _block(x, layer, weights, batch, prompt_length, attention_mask, positions)
        key = tf.pad(key, padding)
        caches.append((tf.transpose(key, [0, 1, 3, 2]) if weights.keys_transposed else key, tf.pad(value, padding)))
    return tf.reshape(x, [batch, prompt_length, -1])[:, -1], caches


def decode_step(weights, token, position, caches, cache_index, key_mask):
    """One cached step: token [batch], position [batch], key_mask [batch, total] -> (hidden [batch, hidden], caches)."""
    batch = tf.shape(token)[0]
    positions = position[:, None]
    x = _tokens(weights, token[:, None], positions)
    mask = key_mask[:, None, None, :]
    updated = []
    for layer, (key_cache, value_cache) in zip(weights.layers, caches):
        x, key_cache, value_cache = _block(
            x, layer, weights, batch, 1, mask, positions, (key_cache, value_cache, cache_index)
        )
        updated.append((key_cache, value_cache))
    return x, updated
