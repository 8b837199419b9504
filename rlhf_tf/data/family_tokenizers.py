"""Each model family's own tokenizer kind, trained on a local corpus (no download): SentencePiece for Llama 2,
Mistral, Gemma and Gemma 3; byte-level BPE for GPT-2, Llama 3, Qwen 2 and Qwen 3.

`train(architecture, texts, vocabulary_size)` returns the family's keras-hub tokenizer class (LlamaTokenizer,
Llama3Tokenizer, GemmaTokenizer, ...) over a vocabulary learned from `texts`, holding the family's special tokens
(begin/end of text, chat turn markers, padding) at the ids keras-hub expects. A model trained with it saves the
tokenizer beside its weights (`policy.save_policy`), so its directory loads exactly as a downloaded preset does.
SentencePiece models come from the `sentencepiece` trainer, byte-pair vocabularies and merges from Hugging Face's
`tokenizers` trainer (both installed with keras-hub).
"""

import dataclasses
import io
import json

import keras_hub

from rlhf_tf.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
    """A family's chat format: the text before the first turn, and each role's opening and closing text."""

    begin: str
    user: tuple  # (open, close)
    assistant: tuple


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a family tokenizes.

    Attributes:
      sentencepiece: SentencePiece (True) or byte-level BPE (False).
      tokenizer: the keras-hub tokenizer class.
      specials: special tokens, in the id order the family uses (first ids of the vocabulary).
      end: the token that ends a response (a chat family's end-of-turn token).
      pad: the padding token (None: id 0, keras-hub's choice for that family).
      chat: the family's chat template (None: transcripts stay in the HH layout).
    """

    sentencepiece: bool
    tokenizer: type
    specials: tuple
    end: str
    pad: str = None
    chat: ChatTemplate = None


_t = keras_hub.tokenizers
_GEMMA = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>")
_INST = ChatTemplate("<s>", ("[INST] ", " [/INST]"), ("", "</s>"))
_CHATML = ChatTemplate("", ("<|im_start|>user\n", "<|im_end|>\n"), ("<|im_start|>assistant\n", "<|im_end|>\n"))
_GEMMA_CHAT = ChatTemplate(
    "<bos>", ("<start_of_turn>user\n", "<end_of_turn>\n"), ("<start_of_turn>model\n", "<end_of_turn>\n")
)
_LLAMA3_CHAT = ChatTemplate(
    "<|begin_of_text|>",
    ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
    ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
)
KINDS = {
    "gpt2": Kind(False, _t.GPT2Tokenizer, ("<|endoftext|>", "<pad>"), "<|endoftext|>", "<pad>"),
    "llama": Kind(True, _t.LlamaTokenizer, ("<unk>", "<s>", "</s>", "[INST]", "[/INST]"), "</s>", chat=_INST),
    "mistral": Kind(True, _t.MistralTokenizer, ("<unk>", "<s>", "</s>", "[INST]", "[/INST]"), "</s>", chat=_INST),
    "llama3": Kind(
        False,
        _t.Llama3Tokenizer,
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|eot_id|>",
        chat=_LLAMA3_CHAT,
    ),
    "qwen2": Kind(False, _t.QwenTokenizer, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), "<|im_end|>", chat=_CHATML),
    "qwen3": Kind(
        False,
        _t.Qwen3Tokenizer,
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        "<|im_end|>",
        "<|endoftext|>",
        chat=_CHATML,
    ),
    "gemma": Kind(True, _t.GemmaTokenizer, _GEMMA, "<end_of_turn>", "<pad>", chat=_GEMMA_CHAT),
    "gemma3": Kind(
        True,
        _t.Gemma3Tokenizer,
        _GEMMA + ("<img>", "<start_of_image>", "<end_of_image>"),
        "<end_of_turn>",
        "<pad>",
        chat=_GEMMA_CHAT,
    ),
}


def render_transcripts(strings, template):
    """[batch] strings with HH-layout dialogues ("\n\nHuman: ...\n\nAssistant: ...", how rlhf-tf's records
    hold chat data) rewritten in `template`'s format; strings without the markers are left as they are.

    Turns alternate, so each marker closes the other role's turn and opens its own; a system turn is rendered as a
    user turn; a dialogue ending in "Assistant:" ends with the assistant's opening (the generation prompt). The
    response that follows is trained to end with the family's end-of-turn token (the tokenizer's end id).
    """
    import tensorflow as tf

    def escape(text):
        return text.replace("\\", "\\\\")

    chat = tf.strings.regex_full_match(strings, r"(?s)\n\n(Human|System|Assistant):.*")
    text = tf.strings.regex_replace(strings, r"\n\nSystem: ?", "\n\nHuman: ")
    text = tf.strings.regex_replace(text, r"^\n\nHuman: ?", escape(template.begin + template.user[0]))
    text = tf.strings.regex_replace(text, r"\n\nHuman: ?", escape(template.assistant[1] + template.user[0]))
    text = tf.strings.regex_replace(text, r"\n\nAssistant: ?", escape(template.user[1] + template.assistant[0]))
    return tf.where(chat, text, strings)


def _sentencepiece(kind, texts, vocabulary_size, seed):
    import sentencepiece

    model = io.BytesIO()
    # The specials become user-defined pieces at ids 0.. in order (unk, bos, eos and pad are placed explicitly).
    role = {"<unk>": "unk", "<s>": "bos", "<bos>": "bos", "</s>": "eos", "<eos>": "eos", "<pad>": "pad"}
    ids = {f"{role[token]}_id": index for index, token in enumerate(kind.specials) if token in role}
    ids.update({f"{role[token]}_piece": token for token in kind.specials if token in role})
    ids.setdefault("pad_id", -1)
    pieces = [token for token in kind.specials if token not in role]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocabulary_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        user_defined_symbols=pieces,
        num_threads=1,
        minloglevel=2,
        **ids,
    )
    proto = model.getvalue()
    if kind.tokenizer is _t.Gemma3Tokenizer:
        return kind.tokenizer(proto=proto, has_vision_tokens=True)
    return kind.tokenizer(proto=proto)


def _byte_pair(kind, texts, vocabulary_size):
    import tokenizers

    model = tokenizers.Tokenizer(tokenizers.models.BPE())
    model.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=list(kind.specials),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    model.train_from_iterator(texts, trainer)
    state = json.loads(model.to_str())["model"]
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in state["merges"]]
    return kind.tokenizer(vocabulary=state["vocab"], merges=merges)


def train(architecture, texts, vocabulary_size=1024, seed=0):
    """The keras-hub tokenizer of `architecture`'s kind, learned from `texts` (a list of strings)."""
    if architecture not in KINDS:
        raise UserInputError(
            f"No tokenizer kind is known for architecture {architecture!r}; known: {', '.join(KINDS)}. Use the "
            "byte tokenizer or a preset's tokenizer."
        )
    kind = KINDS[architecture]
    texts = [text for text in texts if text]
    if kind.sentencepiece:
        return _sentencepiece(kind, texts, vocabulary_size, seed)
    return _byte_pair(kind, texts, vocabulary_size)


def trained(architecture, texts, vocabulary_size=1024):
    """`train`'s tokenizer wrapped for rlhf-tf's pipelines (end of response and padding set for the family)."""
    from rlhf_tf.data import tokenizers

    return tokenizers.from_keras_hub(train(architecture, texts, vocabulary_size), name=f"{architecture}-trained")


def kind_of(tokenizer):
    """The `Kind` of a keras-hub tokenizer (None for classes no family here uses)."""
    for kind in KINDS.values():
        if type(tokenizer) is kind.tokenizer:
            return kind
    return None


def end_and_pad_ids_of(tokenizer):
    """(end id, pad id) for a keras-hub tokenizer of a known kind, whose vocabulary holds the family's end token:
    the family's end-of-response token (end of turn for chat families) and its padding. None otherwise."""
    kind = kind_of(tokenizer)
    if kind is None or kind.end not in _vocabulary(tokenizer):
        return None
    pad_id = tokenizer.token_to_id(kind.pad) if kind.pad in _vocabulary(tokenizer) else 0
    return tokenizer.token_to_id(kind.end), pad_id


def _vocabulary(tokenizer):
    vocabulary = tokenizer.get_vocabulary()
    return vocabulary if isinstance(vocabulary, dict) else set(vocabulary)
