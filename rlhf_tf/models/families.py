"""Which keras-hub decoders the fast passes implement, and their weights read into `transformer.Weights`.

Each reader maps one family's layers onto the functional pass: kernels become [in, out] matrices (Q, K and V fused
into one, gate and up fused into one), and norms and rotary embeddings stay the family's own layers, called as
functions, so every formula detail (Gemma's 1 + scale, Llama 3's frequency smoothing, YaRN, QK-norm epsilons) is
the family's and not a copy. Families not listed here run through `generic` (the backbone's own call).
"""

import functools

import keras
import keras_hub
import tensorflow as tf

from rlhf_tf.errors import UserInputError
from rlhf_tf.models import transformer


def dropout_layers(backbone):
    """The backbone's Dropout layers."""

    return [layer for layer in backbone._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Dropout)]


def has_dropout(backbone):
    """Whether any of the backbone's Dropout layers is on (the fast passes compute the function without dropout)."""
    return any(layer.rate > 0 for layer in dropout_layers(backbone))


def _caster(dtype):
    def value(variable):
        tensor = tf.convert_to_tensor(variable)
        return tf.cast(tensor, dtype) if dtype is not None else tensor

    return value


def _matrix(value, kernel, rows):
    """A kernel of any EinsumDense layout whose input axis comes first, as [rows, -1]."""
    return tf.reshape(value(kernel), [rows, -1])


def _bias(value, layer):
    bias = getattr(layer, "bias", None)
    return None if bias is None else tf.reshape(value(bias), [-1])


def _concat_biases(biases, widths):
    """One bias for fused kernels: None when no part has one, zeros for the parts without."""
    if all(b is None for b in biases):
        return None
    return tf.concat([b if b is not None else tf.zeros([w]) for b, w in zip(biases, widths)], axis=0)


def _rotary(layer):
    return lambda x, positions: layer(x, positions=positions)


def _gpt2(backbone, value):
    layers = []
    for layer in backbone.transformer_layers:
        attention = layer._self_attention_layer
        hidden = attention._query_dense.kernel.shape[0]
        parts = (attention._query_dense, attention._key_dense, attention._value_dense)
        layers.append(
            transformer.LayerWeights(
                attention_norm=functools.partial(
                    transformer.layer_norm,
                    gamma_beta=(
                        value(layer._self_attention_layer_norm.gamma),
                        value(layer._self_attention_layer_norm.beta),
                    ),
                ),
                qkv_kernel=tf.concat([_matrix(value, dense.kernel, hidden) for dense in parts], axis=1),
                qkv_bias=tf.concat([_bias(value, dense) for dense in parts], axis=0),
                output_kernel=tf.reshape(value(attention._output_dense.kernel), [-1, hidden]),
                output_bias=value(attention._output_dense.bias),
                feedforward_norm=functools.partial(
                    transformer.layer_norm,
                    gamma_beta=(value(layer._feedforward_layer_norm.gamma), value(layer._feedforward_layer_norm.beta)),
                ),
                intermediate_kernel=value(layer._feedforward_intermediate_dense.kernel),
                intermediate_bias=value(layer._feedforward_intermediate_dense.bias),
                feedforward_kernel=value(layer._feedforward_output_dense.kernel),
                feedforward_bias=value(layer._feedforward_output_dense.bias),
                activation=functools.partial(tf.nn.gelu, approximate=True),
            )
        )
    first = backbone.transformer_layers[0]._self_attention_layer
    return transformer.Weights(
        token_embedding=value(backbone.token_embedding.embeddings),
        position_embedding=value(backbone.position_embedding.position_embeddings),
        layers=layers,
        final_norm=functools.partial(
            transformer.layer_norm, gamma_beta=(value(backbone.layer_norm.gamma), value(backbone.layer_norm.beta))
        ),
        num_heads=first._num_heads,
        head_dim=first._key_dim,
        family="gpt2",
    )


def _fused_qkv(value, query, key, val, hidden):
    """Fused [hidden, (heads + 2 * kv_heads) * head_dim] kernel and bias from [hidden, heads, head_dim] kernels."""
    kernels = [_matrix(value, kernel, hidden) for kernel in (query.kernel, key.kernel, val.kernel)]
    biases = [_bias(value, dense) for dense in (query, key, val)]
    return tf.concat(kernels, axis=1), _concat_biases(biases, [k.shape[1] for k in kernels])


def _sliding_window(attention):
    """The window of a Llama-style attention layer, by the attribute each family keeps it in (None: no window)."""
    if getattr(attention, "_sliding_window", None):  # Mistral
        return int(attention._sliding_window)
    if hasattr(attention, "use_sliding_window_attention"):  # Qwen 2
        return int(attention.sliding_window_size) if attention.use_sliding_window_attention else None
    if getattr(attention, "sliding_window_size", None):  # Qwen 3
        return int(attention.sliding_window_size)
    return None


def _llama_style(backbone, value):
    """Llama, Llama 3, Mistral, Qwen 2 and Qwen 3: RMS norms, rotary positions, GQA, a gated SiLU MLP."""
    layers = []
    for layer in backbone.transformer_layers:
        attention = layer._self_attention_layer
        hidden, heads, head_dim = attention._query_dense.kernel.shape
        qkv_kernel, qkv_bias = _fused_qkv(
            value, attention._query_dense, attention._key_dense, attention._value_dense, hidden
        )
        gate, up = layer._feedforward_gate_dense, layer._feedforward_intermediate_dense
        layers.append(
            transformer.LayerWeights(
                attention_norm=layer._self_attention_layernorm,
                qkv_kernel=qkv_kernel,
                qkv_bias=qkv_bias,
                output_kernel=tf.reshape(value(attention._output_dense.kernel), [-1, hidden]),
                output_bias=_bias(value, attention._output_dense),
                feedforward_norm=layer._feedforward_layernorm,
                intermediate_kernel=tf.concat([value(gate.kernel), value(up.kernel)], axis=1),
                intermediate_bias=_concat_biases(
                    [_bias(value, gate), _bias(value, up)], [gate.kernel.shape[1], up.kernel.shape[1]]
                ),
                feedforward_kernel=value(layer._feedforward_output_dense.kernel),
                feedforward_bias=_bias(value, layer._feedforward_output_dense),
                activation=layer.activation,
                gated=True,
                rotary=_rotary(attention.rotary_embedding_layer),
                query_norm=getattr(attention, "_query_dense_layer_norm", None),
                key_norm=getattr(attention, "_key_dense_layer_norm", None),
                sliding_window=_sliding_window(attention),
            )
        )
    first = backbone.transformer_layers[0]._self_attention_layer
    return transformer.Weights(
        token_embedding=value(backbone.token_embedding.embeddings),
        layers=layers,
        final_norm=backbone.layer_norm,
        num_heads=int(first._query_dense.kernel.shape[1]),
        num_key_value_heads=int(first._key_dense.kernel.shape[1]),
        head_dim=int(first._query_dense.kernel.shape[2]),
        query_scale=float(first._inv_norm_factor),
        **_output_projection(backbone, value),
        family=type(backbone).__name__,
    )


def _output_projection(backbone, value):
    embedding = backbone.token_embedding
    return {
        "output_kernel": None if embedding.tie_weights else value(embedding.reverse_embeddings),
        "final_soft_cap": getattr(embedding, "logit_soft_cap", None),
    }


def _gemma_kernel(value, kernel):
    """Gemma's [heads, hidden, head_dim] projection kernels as [hidden, heads * head_dim]."""
    tensor = tf.transpose(value(kernel), [1, 0, 2])
    return tf.reshape(tensor, [tensor.shape[0], -1])


def _gemma(backbone, value):
    """Gemma and Gemma 3: (1 + scale) RMS norms, embeddings scaled by sqrt(hidden), a gated GELU MLP, and where
    configured QK-norm, post-attention and post-MLP norms, soft-capping and sliding-window layers."""
    if getattr(backbone, "use_bidirectional_attention", False):
        raise UserInputError(
            f"{type(backbone).__name__} here attends both ways (an embedding model), so it is not a causal LM; give "
            "a Gemma 3 text or instruct preset."
        )
    layers = []
    for layer in backbone.transformer_layers:
        attention = layer.attention
        kernels = [
            _gemma_kernel(value, d.kernel) for d in (attention.query_dense, attention.key_dense, attention.value_dense)
        ]
        use_qk_norm = getattr(attention, "use_query_key_norm", False)
        layers.append(
            transformer.LayerWeights(
                attention_norm=layer.pre_attention_norm,
                qkv_kernel=tf.concat(kernels, axis=1),
                qkv_bias=None,
                output_kernel=tf.reshape(value(attention.output_dense.kernel), [-1, backbone.hidden_dim]),
                output_bias=None,
                feedforward_norm=layer.pre_ffw_norm,
                intermediate_kernel=tf.concat([value(layer.gating_ffw.kernel), value(layer.gating_ffw_2.kernel)], 1),
                intermediate_bias=None,
                feedforward_kernel=value(layer.ffw_linear.kernel),
                feedforward_bias=None,
                activation=functools.partial(keras.activations.gelu, approximate=True),
                gated=True,
                rotary=_rotary(attention.rope_layer),
                query_norm=attention.query_norm if use_qk_norm else None,
                key_norm=attention.key_norm if use_qk_norm else None,
                post_attention_norm=layer.post_attention_norm if layer.use_post_attention_norm else None,
                post_feedforward_norm=layer.post_ffw_norm if layer.use_post_ffw_norm else None,
                sliding_window=int(attention.sliding_window_size) if attention.use_sliding_window_attention else None,
                attention_soft_cap=attention.logit_soft_cap,
            )
        )
    first = backbone.transformer_layers[0].attention
    head_dim = int(backbone.head_dim)
    normalizer = head_dim if first.query_head_dim_normalize else backbone.hidden_dim // backbone.num_query_heads
    return transformer.Weights(
        token_embedding=value(backbone.token_embedding.embeddings),
        layers=layers,
        final_norm=backbone.layer_norm,
        num_heads=int(backbone.num_query_heads),
        num_key_value_heads=int(backbone.num_key_value_heads),
        head_dim=head_dim,
        query_scale=float(normalizer) ** -0.5,
        embedding_scale=float(backbone.hidden_dim) ** 0.5,
        **_output_projection(backbone, value),
        family=type(backbone).__name__,
    )


# Backbone class -> reader. Subclasses count (Llama3Backbone is a LlamaBackbone).
_READERS = (
    (keras_hub.models.GPT2Backbone, _gpt2),
    (keras_hub.models.LlamaBackbone, _llama_style),
    (keras_hub.models.MistralBackbone, _llama_style),
    (keras_hub.models.QwenBackbone, _llama_style),
    (keras_hub.models.Qwen3Backbone, _llama_style),
    (keras_hub.models.GemmaBackbone, _gemma),
    (keras_hub.models.Gemma3Backbone, _gemma),
)

FAST_FAMILIES = ("GPT-2", "Llama", "Llama 3", "Mistral", "Qwen 2", "Qwen 3", "Gemma", "Gemma 3")


def _reader(backbone):
    for cls, reader in _READERS:
        if isinstance(backbone, cls):
            return reader
    return None


def supports(backbone):
    """Whether the fast passes implement `backbone`'s architecture."""
    return _reader(backbone) is not None


def read_weights(backbone, dtype=None):
    """`transformer.Weights` from a keras-hub backbone of a fast family (call inside tf.function / GradientTape
    scopes).

    `dtype` (e.g. tf.bfloat16) casts them for mixed precision: matmuls run in that type while the variables,
    and so the optimizer's updates, stay float32; norms and softmaxes compute in float32.
    """
    reader = _reader(backbone)
    if reader is None:
        raise UserInputError(
            f"rlhf-tf's fast passes implement {', '.join(FAST_FAMILIES)}; {type(backbone).__name__} runs through the "
            "generic path (rlhf_tf.models.passes)."
        )
    return reader(backbone, _caster(dtype))


def position_limit(backbone):
    """The most positions a model with learned position embeddings numbers (GPT-2, OPT); None for rotary or ALiBi
    models, which have no hard limit."""
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras_hub.layers.PositionEmbedding):
            return int(layer.sequence_length)
    return None


def check_positions(backbone, needed, needed_for, source):
    """Raises a clear error, before anything runs, when sequences of `needed` tokens run past the positions of a
    model with learned position embeddings (inside XLA they would fail with an opaque gather error)."""
    limit = position_limit(backbone)
    if limit is not None and needed > limit:
        raise UserInputError(
            f"{source} has learned positions for {limit} tokens, but sequences here need {needed} ({needed_for}): "
            "lower those lengths to fit, or use a model built with a longer max_sequence_length."
        )
