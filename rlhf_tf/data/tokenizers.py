"""Tokenizers for the pipelines and models: keras-hub tokenizers plus the ids rlhf-tf needs (pad, end).

`resolve_tokenizer(spec)` accepts:
- "byte" (default): UTF-8 bytes, keras-hub's `ByteTokenizer` without lowercasing; id 0 pads (NUL never occurs in
  text) and id 256 is the end token, so the vocabulary has 257 entries;
- a WordPiece vocabulary file (`*.txt`, one token a line, with "[PAD]" first and "[END]" somewhere);
- a keras-hub tokenizer object, a keras-hub preset name or a local preset directory (the same call users with a
  network make with hub names): SentencePiece and byte-pair tokenizers of any family, with the family's end of
  response (its end-of-turn token for chat families, `family_tokenizers.KINDS`) and padding;
- a `Tokenizer` (returned as is).
"""

import os

import keras_hub
import tensorflow as tf

from rlhf_tf.errors import UserInputError

PAD_TOKEN = "[PAD]"
UNKNOWN_TOKEN = "[UNK]"
END_TOKEN = "[END]"
WORD_PIECE_RESERVED = (PAD_TOKEN, UNKNOWN_TOKEN, END_TOKEN)


class Tokenizer:
    """A keras-hub tokenizer with its padding id, end id and vocabulary size.

    Args:
      tokenizer: the keras-hub tokenizer (`tokenize` maps a [batch] string tensor to ragged ids).
      pad_id: the id used for padding (masked out everywhere).
      end_id: the id that ends a response; models learn to emit it.
      vocabulary_size: the number of ids a model's embedding needs (may exceed the tokenizer's own, as for bytes).
      name: how the tokenizer is described in configs.
      chat_template: a `family_tokenizers.ChatTemplate`: dialogues (HH layout, how records hold chat data) are
        rendered in the family's chat format before tokenizing.
    """

    def __init__(self, tokenizer, pad_id, end_id, vocabulary_size, name, chat_template=None):
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.pad_id = int(pad_id)
        self.end_id = int(end_id)
        self.vocabulary_size = int(vocabulary_size)
        self.name = name
        # keras-hub tokenizers called eagerly take a pure-Python path and return lists; inside a graph they are TF
        # ops. A tf.function gives the TF path everywhere (eager code, tf.data, SavedModel export).
        self._tokenize = tf.function(self._tokenize_graph, input_signature=[tf.TensorSpec([None], tf.string)])
        self._detokenize_fn = tf.function(
            self._detokenize, input_signature=[tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)]
        )

    def _tokenize_graph(self, strings):
        if self.chat_template is not None:
            from rlhf_tf.data import family_tokenizers

            strings = family_tokenizers.render_transcripts(strings, self.chat_template)
        ids = self.tokenizer.tokenize(strings)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=self.pad_id)
        return tf.cast(ids, tf.int32)

    def tokenize(self, strings):
        """[batch] strings -> tf.RaggedTensor [batch, (tokens)] of int32 ids. Works inside tf.data and tf.function."""
        return self._tokenize(tf.convert_to_tensor(strings, tf.string))

    def detokenize(self, token_ids, mask=None):
        """[batch, tokens] ids (dense with a mask, or ragged) -> [batch] strings, stopping at the end token."""
        if not isinstance(token_ids, tf.RaggedTensor):
            token_ids = tf.convert_to_tensor(token_ids)
            keep = tf.ones_like(token_ids, tf.bool) if mask is None else tf.cast(mask, tf.bool)
            token_ids = tf.ragged.boolean_mask(token_ids, keep)
        ended = tf.cumsum(tf.cast(tf.equal(token_ids, self.end_id), tf.int32), axis=1) > 0
        token_ids = tf.ragged.boolean_mask(token_ids, tf.logical_not(ended))
        token_ids = tf.ragged.boolean_mask(token_ids, tf.not_equal(token_ids, self.pad_id))
        return self._detokenize_fn(tf.cast(token_ids, tf.int32))

    def _detokenize(self, token_ids):
        return self.tokenizer.detokenize(token_ids)

    def config(self):
        return {
            "name": self.name,
            "pad_id": self.pad_id,
            "end_id": self.end_id,
            "vocabulary_size": self.vocabulary_size,
        }


class ByteLevelTokenizer(Tokenizer):
    """UTF-8 bytes (ids 0-255, 0 pads) plus an end token 256."""

    def __init__(self):
        super().__init__(keras_hub.tokenizers.ByteTokenizer(lowercase=False), 0, 256, 257, "byte")

    def _detokenize(self, token_ids):
        # Ids past the byte range (the end token) never reach the byte table.
        return self.tokenizer.detokenize(tf.ragged.boolean_mask(token_ids, token_ids < 256))


class WordPieceTokenizer(Tokenizer):
    """keras-hub WordPiece, detokenized without the space it puts before punctuation ("good ." -> "good.")."""

    def _detokenize(self, token_ids):
        return tf.strings.regex_replace(self.tokenizer.detokenize(token_ids), r" ([.,!?;:])", r"\1")


def word_piece(vocabulary_path, lowercase=True):
    """A WordPiece tokenizer over a vocabulary file that holds "[PAD]" (id 0), "[UNK]" and "[END]"."""
    with tf.io.gfile.GFile(vocabulary_path) as handle:
        vocabulary = [line.rstrip("\n") for line in handle]
    missing = [token for token in WORD_PIECE_RESERVED if token not in vocabulary]
    if missing or vocabulary[0] != PAD_TOKEN:
        raise UserInputError(
            f"A WordPiece vocabulary for rlhf-tf needs {PAD_TOKEN} as its first line and {END_TOKEN} and "
            f"{UNKNOWN_TOKEN} somewhere. Received: {vocabulary_path} (missing {missing}, first {vocabulary[:1]})"
        )
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary, lowercase=lowercase, oov_token=UNKNOWN_TOKEN, special_tokens=[END_TOKEN]
    )
    return WordPieceTokenizer(
        tokenizer,
        vocabulary.index(PAD_TOKEN),
        vocabulary.index(END_TOKEN),
        len(vocabulary),
        f"wordpiece:{vocabulary_path}",
    )


def from_keras_hub(tokenizer, name="keras_hub"):
    """Wraps a keras-hub tokenizer with its family's end-of-response and padding ids (`family_tokenizers`), or else
    the tokenizer's own end and pad tokens."""
    from rlhf_tf.data import family_tokenizers

    ids = family_tokenizers.end_and_pad_ids_of(tokenizer)
    if ids is not None:
        end_id, pad_id = ids
    else:
        end_id, pad_id = getattr(tokenizer, "end_token_id", None), getattr(tokenizer, "pad_token_id", None)
    if end_id is None:
        raise UserInputError(
            f"The tokenizer has no end token, which rlhf-tf needs to end responses. Received: {name} "
            f"({type(tokenizer).__name__})"
        )
    pad_id = 0 if pad_id is None else pad_id
    kind = family_tokenizers.kind_of(tokenizer)
    chat = kind.chat if kind is not None else None
    return Tokenizer(tokenizer, pad_id, end_id, tokenizer.vocabulary_size(), name, chat_template=chat)


def resolve_tokenizer(spec="byte"):
    """A `Tokenizer` from a spec (see the module docstring)."""
    if isinstance(spec, Tokenizer):
        return spec
    if spec is None or spec == "byte":
        return ByteLevelTokenizer()
    if isinstance(spec, keras_hub.tokenizers.Tokenizer):
        return from_keras_hub(spec)
    spec = os.fspath(spec)
    if spec.endswith(".txt"):
        return word_piece(spec)
    try:
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(spec)
    except Exception as error:  # keras-hub raises several types for unknown presets or unreachable hubs
        raise UserInputError(
            "`tokenizer` must be 'byte', a WordPiece vocabulary .txt file, a keras-hub preset name or a local preset "
            f"directory; loading it failed with {type(error).__name__}: {error}. Received: tokenizer={spec!r}"
        ) from error
    return from_keras_hub(tokenizer, name=spec)
