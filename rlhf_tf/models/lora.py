"""LoRA (Hu et al. 2021) on keras-hub's own adapters: only the adapters train, and the frozen base is the reference.

`enable(causal_lm, config, source)` calls the backbone's `enable_lora` on the target layers (keras-hub freezes every
other weight; the targets' biases are frozen here too), then sets the scale alpha / rank. Keras computes a target's
kernel as `kernel + alpha / rank * A @ B` each time the layer (or a fast pass reading `layer.kernel`) uses it, so
the fast passes read the adapters inside the compiled step and nothing is written to the base weights.

The reference policy is the same model with the adapters off: `adapters_off(backbone)` switches them off while a
reference pass is traced (or run eagerly), so no second copy of the weights is held. Only the adapters are
checkpointed (`trainable_state`); `merge` folds them into the kernels for export and saved presets (keras-hub's
`save_to_preset` writes merged kernels too), so serving needs nothing new.
"""

import contextlib
import dataclasses
import functools

import numpy as np
import tensorflow as tf
from absl import logging

from rlhf_tf import configs
from rlhf_tf.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters on the policy (or reward model) backbone.

    Attributes:
      rank: the adapters' rank (0: no LoRA, the whole model trains).
      alpha: the scale numerator: updates are alpha / rank * A @ B (0: alpha = rank, a scale of 1).
      targets: names of the layers that get adapters (comma-separated on the command line); empty: keras-hub's
        default for the backbone (the attention's query and value projections). Other names every family has:
        "key", "attention_output"; GPT-2 / Llama-style MLPs: "feedforward_intermediate_dense",
        "feedforward_output_dense" (and "feedforward_gate_dense" for gated MLPs); GPT-NeoX: "query_key_value".
    """

    rank: int = 0
    alpha: float = 0.0
    targets: tuple = ()

    def __post_init__(self):
        configs.require_non_negative(rank=self.rank, alpha=self.alpha)
        if isinstance(self.targets, str):
            object.__setattr__(self, "targets", tuple(name for name in self.targets.split(",") if name))
        else:
            object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def enabled(self):
        return self.rank > 0

    @property
    def scale_alpha(self):
        return self.alpha or float(self.rank)


def _adaptable_layers(backbone):
    """The backbone's layers with weights in the order keras-hub numbers them for its LoRA files."""
    return [layer for layer in backbone._flatten_layers(include_self=False) if layer.weights]


def lora_layers(backbone):
    """The layers of `backbone` whose adapters are on (or switched off by `adapters_off`)."""
    return [layer for layer in _adaptable_layers(backbone) if getattr(layer, "lora_kernel_a", None) is not None]


def is_enabled(model):
    """Whether a causal LM or backbone carries LoRA adapters."""
    return bool(lora_layers(getattr(model, "backbone", model)))


def enable(causal_lm, config, source):
    """Adds rank-`config.rank` adapters to the target layers of `causal_lm`'s backbone and freezes everything else.

    Raises:
      UserInputError: no layer of the model has a target's name, or the rank is larger than a target layer.
    """
    backbone = getattr(causal_lm, "backbone", causal_lm)
    targets = list(config.targets) or list(backbone.default_lora_layer_names())
    layers = _adaptable_layers(backbone)
    available = sorted({layer.name for layer in layers if hasattr(layer, "enable_lora")})
    missing = [name for name in config.targets if name not in available]
    matched = [layer for layer in layers if layer.name in targets and hasattr(layer, "enable_lora")]
    if missing or not matched:
        raise UserInputError(
            f"{source} ({type(backbone).__name__}) has no layer named {', '.join(missing or targets)} to put LoRA "
            f"adapters on. Its layers that take adapters: {', '.join(available)}. Set --lora_targets to some of them."
        )
    for layer in matched:
        kernel = layer.embeddings if hasattr(layer, "embeddings") and not hasattr(layer, "kernel") else layer.kernel
        # Keras factors a kernel [..., out] as A [..., rank] @ B [rank, out].
        shape = [int(size) for size in kernel.shape]
        smallest = min(int(np.prod(shape[:-1])), shape[-1])
        if config.rank > smallest:
            raise UserInputError(
                f"--lora_rank={config.rank} is larger than {source}'s {layer.name} layer ({'x'.join(map(str, shape))}"
                f", rank at most {smallest}): choose a rank of at most {smallest}."
            )
    backbone.enable_lora(config.rank, target_layer_names=targets)
    backbone._rlhf_lora = config
    counts = describe(backbone)
    logging.info(
        "LoRA rank %d (alpha %g) on %d layers of %s (%s): %d adapter parameters train, %.2f%% of the model.",
        config.rank,
        config.scale_alpha,
        len(matched),
        source,
        ", ".join(targets),
        counts["lora/adapters"],
        100 * counts["lora/trainable_fraction"],
    )
    for layer in lora_layers(backbone):
        layer.lora_alpha = config.scale_alpha
        adapters = {id(layer.lora_kernel_a), id(layer.lora_kernel_b)}
        for variable in layer.weights:
            if id(variable) not in adapters:
                variable.trainable = False
    return causal_lm


def enable_like(backbone, source):
    """Gives `backbone` (a copy of `source`'s architecture) the same adapters as `source`, if it has any."""
    config = getattr(source, "_rlhf_lora", None)
    if config is not None and is_enabled(source):
        enable(backbone, config, type(source).__name__)
    return backbone


def adapters(model):
    """The adapter variables (A and B of every LoRA layer), in a fixed order."""
    return [
        v
        for layer in lora_layers(getattr(model, "backbone", model))
        for v in (layer.lora_kernel_a, layer.lora_kernel_b)
    ]


def trainable_state(model):
    """What a training checkpoint holds for a model (a causal LM, a reward model): under LoRA its trainable
    variables (the adapters, and a reward model's head) and its layers' random-seed states, not the frozen base;
    without LoRA the model itself."""
    if not is_enabled(model):
        return model
    weights = {id(weight) for weight in model.weights}
    seeds = [variable.value for variable in model.variables if id(variable) not in weights]
    return tf.train.Checkpoint(trainable=list(model.trainable_variables), seed_states=seeds)


@contextlib.contextmanager
def adapters_off(model):
    """Within the block, `model`'s LoRA layers compute with their frozen base kernels (the reference policy). Under
    `tf.function` it takes effect for what is traced inside the block; a no-op for a model without adapters."""
    layers = [layer for layer in lora_layers(getattr(model, "backbone", model)) if layer.lora_enabled]
    for layer in layers:
        layer.lora_enabled = False
    try:
        yield
    finally:
        for layer in layers:
            layer.lora_enabled = True


def base_function(function, model):
    """`function` run (and traced) with `model`'s adapters off."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        with adapters_off(model):
            return function(*args, **kwargs)

    return run


def merge(causal_lm):
    """Folds the adapters into the kernels in place and removes them (for export: the model then computes exactly
    what it computed with adapters, with plain kernels). Call it last: the base is gone afterwards."""
    for layer in lora_layers(getattr(causal_lm, "backbone", causal_lm)):
        merged = layer.kernel if hasattr(layer, "kernel") else layer.embeddings
        target = layer._kernel if hasattr(layer, "_kernel") else layer._embeddings
        target.assign(tf.cast(merged, target.dtype))
        layer.lora_enabled = False
        # Untracked (Keras's __delattr__), the adapters stay out of checkpoints and SavedModels written later.
        del layer.lora_kernel_a
        del layer.lora_kernel_b
    return causal_lm


def describe(causal_lm):
    """{"lora/adapters": parameter count, "lora/trainable_fraction": of all the backbone's parameters}, or {}."""
    if not is_enabled(causal_lm):
        return {}
    count = sum(int(tf.size(v)) for v in adapters(causal_lm))
    total = sum(int(tf.size(w)) for w in getattr(causal_lm, "backbone", causal_lm).weights) - count
    return {"lora/adapters": count, "lora/trainable_fraction": count / max(total, 1)}
