"""Language policies: any decoder-only keras-hub causal LM, built from a config (`ARCHITECTURES`) or loaded from a
preset, saved with their tokenizer so that a run directory is all a later stage (reward model, RL, serving) needs.
"""

import dataclasses
import json
import os
import shutil

import keras_hub
import tensorflow as tf
from keras_hub.src.utils import preset_utils

from rlhf_tf import configs, files
from rlhf_tf.data import family_tokenizers, tokenizers
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import families
from rlhf_tf.training.run_directory import RunPaths

TOKENIZER_FILE = "rlhf_tokenizer.json"


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """The policy network.

    Attributes:
      preset: a keras-hub preset name, a local preset directory, or an rlhf-tf run directory / saved policy to
        start from; empty builds a fresh model of `architecture` from the fields below.
      architecture: the keras-hub family of a fresh model (`ARCHITECTURES`): "gpt2", or a Llama-style "llama3",
        "mistral", "qwen2", "qwen3", "gemma", "gemma3", or any other listed decoder.
      num_layers, num_heads, hidden_dim, intermediate_dim: the shape of a fresh model.
      num_key_value_heads: key/value heads for grouped-query attention (0: as many as `num_heads`; families
        without GQA ignore it).
      max_sequence_length: the longest sequence (prompt + response) a fresh model's positions cover.
      dropout: dropout in the backbone while training (0 for RL and for reference passes; keras-hub's default 0.1
        is overridden).
    """

    preset: str = ""
    architecture: str = "gpt2"
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    max_sequence_length: int = 128
    dropout: float = 0.0
    num_key_value_heads: int = 0

    def __post_init__(self):
        configs.require_positive(
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim,
            max_sequence_length=self.max_sequence_length,
        )
        configs.require(
            self.hidden_dim % self.num_heads == 0,
            "`hidden_dim` must be a multiple of `num_heads`.",
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
        )
        configs.require(0 <= self.dropout < 1, "`dropout` must be in [0, 1).", dropout=self.dropout)
        configs.require(
            self.architecture in ARCHITECTURES,
            f"`architecture` must be one of {', '.join(ARCHITECTURES)}.",
            architecture=self.architecture,
        )
        configs.require_non_negative(num_key_value_heads=self.num_key_value_heads)
        configs.require(
            self.num_heads % self.key_value_heads == 0,
            "`num_heads` must be a multiple of `num_key_value_heads`.",
            num_heads=self.num_heads,
            num_key_value_heads=self.num_key_value_heads,
        )

    @property
    def key_value_heads(self):
        return self.num_key_value_heads or self.num_heads

    @property
    def head_dim(self):
        return self.hidden_dim // self.num_heads


def _gpt2(c, vocabulary_size):
    return keras_hub.models.GPT2CausalLM, keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=c.num_layers,
        num_heads=c.num_heads,
        hidden_dim=c.hidden_dim,
        intermediate_dim=c.intermediate_dim,
        max_sequence_length=c.max_sequence_length,
        dropout=c.dropout,
    )


def _llama_like(causal_lm, backbone, **extra):
    def build(c, vocabulary_size):
        return causal_lm, backbone(
            vocabulary_size=vocabulary_size,
            num_layers=c.num_layers,
            num_query_heads=c.num_heads,
            num_key_value_heads=c.key_value_heads,
            hidden_dim=c.hidden_dim,
            intermediate_dim=c.intermediate_dim,
            dropout=c.dropout,
            **{key: value(c) if callable(value) else value for key, value in extra.items()},
        )

    return build


def _other(causal_lm, backbone, heads="num_heads", positions=True, **extra):
    def build(c, vocabulary_size):
        arguments = dict(vocabulary_size=vocabulary_size, num_layers=c.num_layers, hidden_dim=c.hidden_dim)
        arguments.update({heads: c.num_heads, "intermediate_dim": c.intermediate_dim, **extra})
        if positions:
            arguments["max_sequence_length"] = c.max_sequence_length
        return causal_lm, backbone(**arguments)

    return build


def _head_dim(config):
    return config.head_dim


_m = keras_hub.models
# Fresh-model builders: name -> (config, vocabulary_size) -> (CausalLM class, backbone). The Llama-style
# settings are each family's released ones where they matter at small sizes (Llama 3's frequency smoothing,
# Gemma 3's QK-norm, sandwich norms and 5:1 local/global layers, Qwen 3's QK-norm, tied embeddings where the
# family ties them).
ARCHITECTURES = {
    "gpt2": _gpt2,
    "llama": _llama_like(_m.LlamaCausalLM, _m.LlamaBackbone),
    "llama3": _llama_like(
        _m.Llama3CausalLM,
        _m.Llama3Backbone,
        rope_max_wavelength=500000,
        rope_frequency_adjustment_factor=32.0,
        rope_low_freq_factor=1.0,
        rope_high_freq_factor=4.0,
        rope_pretraining_sequence_length=8192,
        # Not tied: keras-hub 0.32's LlamaBackbone leaves tie_word_embeddings out of its config, so a tied model
        # saved as a preset does not load back.
    ),
    "mistral": _llama_like(_m.MistralCausalLM, _m.MistralBackbone, sliding_window=lambda c: c.max_sequence_length),
    "qwen2": _llama_like(_m.QwenCausalLM, _m.QwenBackbone, rope_max_wavelength=1000000, tie_word_embeddings=True),
    "qwen3": _llama_like(_m.Qwen3CausalLM, _m.Qwen3Backbone, head_dim=_head_dim, rope_max_wavelength=1000000),
    "gemma": _llama_like(_m.GemmaCausalLM, _m.GemmaBackbone, head_dim=_head_dim),
    "gemma3": _llama_like(
        _m.Gemma3CausalLM,
        _m.Gemma3Backbone,
        head_dim=_head_dim,
        image_size=None,
        use_query_key_norm=True,
        use_post_ffw_norm=True,
        use_post_attention_norm=True,
        use_sliding_window_attention=True,
        sliding_window_size=512,
    ),
    "opt": _other(_m.OPTCausalLM, _m.OPTBackbone, dropout=0.0),
    "gpt_neox": _other(_m.GPTNeoXCausalLM, _m.GPTNeoXBackbone),
    "falcon": _other(_m.FalconCausalLM, _m.FalconBackbone, heads="num_attention_heads", positions=False),
    "phi3": _llama_like(_m.Phi3CausalLM, _m.Phi3Backbone),
    "bloom": _other(_m.BloomCausalLM, _m.BloomBackbone, positions=False),
}


def build_policy(config, vocabulary_size):
    """A fresh keras-hub causal LM of `config.architecture` (no preprocessor: rlhf-tf's pipelines tokenize)."""
    causal_lm, backbone = ARCHITECTURES[config.architecture](config, vocabulary_size)
    return causal_lm(backbone=backbone, preprocessor=None)


def save_policy(directory, causal_lm, tokenizer):
    """Saves the model as a keras-hub preset plus rlhf-tf's tokenizer description (and vocabulary file)."""
    directory = os.fspath(directory)
    temporary = directory + ".tmp"
    if os.path.exists(temporary):
        shutil.rmtree(temporary)
    causal_lm.save_to_preset(temporary)
    description = {"name": tokenizer.name, "pad_id": tokenizer.pad_id, "end_id": tokenizer.end_id}
    if tokenizer.name.startswith("wordpiece:"):
        shutil.copyfile(tokenizer.name.split(":", 1)[1], os.path.join(temporary, "vocabulary.txt"))
        description["vocabulary"] = "vocabulary.txt"
    elif tokenizer.name != "byte":
        # The keras-hub tokenizer itself (SentencePiece proto or BPE vocabulary and merges) beside the weights:
        # the directory is then a complete keras-hub preset.
        tokenizer.tokenizer.save_to_preset(temporary)
        description["keras_hub"] = True
    files.atomic_write_json(os.path.join(temporary, TOKENIZER_FILE), description)
    if os.path.exists(directory):
        shutil.rmtree(directory)
    os.replace(temporary, directory)
    return directory


def _policy_directory(path):
    path = os.fspath(path)
    if os.path.isdir(RunPaths(path).policy_dir):
        return RunPaths(path).policy_dir
    return path


def load_tokenizer(path):
    """The tokenizer saved with a policy (or a keras-hub preset's own)."""
    directory = _policy_directory(path)
    description_path = os.path.join(directory, TOKENIZER_FILE)
    if os.path.exists(description_path):
        description = files.read_json(description_path)
        if description["name"] == "byte":
            return tokenizers.ByteLevelTokenizer()
        if "vocabulary" in description:
            return tokenizers.word_piece(os.path.join(directory, description["vocabulary"]))
        if description.get("keras_hub"):
            tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(directory)
            kind = family_tokenizers.kind_of(tokenizer)
            return tokenizers.Tokenizer(
                tokenizer,
                description["pad_id"],
                description["end_id"],
                tokenizer.vocabulary_size(),
                description["name"],
                chat_template=kind.chat if kind is not None else None,
            )
        return tokenizers.resolve_tokenizer(description["name"])
    return tokenizers.resolve_tokenizer(directory)


def load_policy(path, dropout=None):
    """(causal_lm, tokenizer) from an rlhf-tf run directory, a saved policy, or a keras-hub preset."""
    directory = _policy_directory(path)
    if os.path.isdir(directory):
        check_preset_directory(directory)
    try:
        causal_lm = keras_hub.models.CausalLM.from_preset(directory, preprocessor=None)
    except Exception as error:  # keras-hub raises several types for unknown or unreachable presets
        raise UserInputError(
            "Could not load a policy: give an rlhf-tf run directory (with policy/), a saved policy, a keras-hub "
            f"preset name or a local preset directory. Loading failed with {type(error).__name__}: {error}. "
            f"Received: {path}"
        ) from error
    check_decoder_only(causal_lm, path)
    if dropout is not None:
        set_dropout(causal_lm, dropout)
    return causal_lm, load_tokenizer(path)


def _causal_lm_classes(cls=keras_hub.models.CausalLM):
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _causal_lm_classes(subclass)


def is_preset_directory(directory):
    """Whether `directory` holds a keras-hub preset (its config.json)."""
    return os.path.exists(os.path.join(directory, preset_utils.CONFIG_FILE))


def check_preset_directory(directory):
    """Raises a clear error, before any loading, for a local preset directory that is incomplete or holds a model
    that is not a decoder-only causal LM (keras-hub has no CausalLM task for its backbone)."""
    config_path = os.path.join(directory, preset_utils.CONFIG_FILE)
    if not is_preset_directory(directory):
        raise UserInputError(
            f"{directory} is not a keras-hub preset directory: config.json is missing. Give the whole directory as "
            "downloaded (config.json, model.weights.h5, tokenizer.json, assets/), or one converted from a Hugging "
            "Face checkpoint with keras-hub's converters."
        )
    backbone = files.read_json(config_path).get("class_name", "")
    tasks = [cls.__name__ for cls in _causal_lm_classes() if getattr(cls.backbone_cls, "__name__", "") == backbone]
    if not tasks:
        raise UserInputError(
            f"{config_path} describes a {backbone or 'model of unknown class'}, which keras-hub has no causal LM "
            "for: rlhf-tf's language commands train decoder-only causal LMs (not encoders, seq2seq or vision "
            "models). Give a causal LM preset (GPT-2, Llama, Mistral, Qwen, Gemma, Phi-3, OPT, ...)."
        )

    def present(*names):
        return any(os.path.exists(os.path.join(directory, name)) for name in names)

    missing = []
    if not present(preset_utils.MODEL_WEIGHTS_FILE, preset_utils.SHARDED_MODEL_WEIGHTS_CONFIG_FILE):
        missing.append(preset_utils.MODEL_WEIGHTS_FILE)
    if not present(TOKENIZER_FILE, preset_utils.TOKENIZER_CONFIG_FILE):
        missing.append(f"{preset_utils.TOKENIZER_CONFIG_FILE} (and {preset_utils.ASSET_DIR}/tokenizer/)")
    if missing:
        raise UserInputError(
            f"The preset directory {directory} ({backbone}) lacks {', '.join(missing)}: copy the whole preset as "
            "downloaded."
        )


# keras-hub CausalLM subclasses that condition on images: their call needs pixels rlhf-tf does not have.
_NOT_TEXT_ONLY = ("PaliGemmaCausalLM", "BLIP2CausalLM", "PARSeqCausalLM", "Gemma3nCausalLM")


def check_decoder_only(model, path):
    """Raises a clear error unless `model` is a text decoder-only keras-hub causal LM."""
    seq2seq = getattr(keras_hub.models, "Seq2SeqLM", ())
    if not isinstance(model, keras_hub.models.CausalLM) or isinstance(model, seq2seq):
        raise UserInputError(
            f"{path} holds a {type(model).__name__}, not a decoder-only causal LM: rlhf-tf's language commands "
            "train keras-hub CausalLM models (GPT-2, Llama, Mistral, Qwen, Gemma, Phi-3, OPT, ...). Give such a "
            "preset, or convert your checkpoint to one."
        )
    if type(model).__name__ in _NOT_TEXT_ONLY:
        raise UserInputError(
            f"{path} holds a {type(model).__name__}, a model that reads images as well as text; rlhf-tf's language "
            "commands train text-only causal LMs. Give a text model's preset."
        )


def set_dropout(causal_lm, rate):
    """Sets every Dropout layer's rate (0 turns dropout off for RL and reference passes)."""
    for layer in families.dropout_layers(causal_lm.backbone):
        layer.rate = rate


def describe(causal_lm):
    """A short JSON-able description of the model (for configs and reports)."""
    backbone = causal_lm.backbone
    return json.loads(
        json.dumps(
            {
                "class": type(causal_lm).__name__,
                "parameters": int(sum(int(tf.size(w)) for w in backbone.weights)),
                "num_layers": backbone.num_layers,
                "hidden_dim": backbone.hidden_dim,
                "vocabulary_size": backbone.vocabulary_size,
            }
        )
    )
