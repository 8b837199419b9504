"""Bundled tasks' WordPiece vocabularies: trained offline on a task's corpus with keras-hub, built once and cached.

A tiny byte-level model trained for a few CPU minutes still misspells most words, and then spelling, not what the
task is about, dominates every score; word pieces let a small model spend its capacity on the task.
"""

import os

import keras_hub
import tensorflow as tf

from rlhf_tf import files
from rlhf_tf.data import tokenizers


def cache_dir():
    """`$RLHF_TF_CACHE`, else `~/.cache/rlhf_tf`."""
    return os.environ.get("RLHF_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rlhf_tf")


def build_vocabulary(texts, vocabulary_size):
    """A lowercasing WordPiece vocabulary of `vocabulary_size` tokens trained on `texts`; returns the tokens."""
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(list(texts)).batch(1000),
        vocabulary_size,
        lowercase=True,
        reserved_tokens=list(tokenizers.WORD_PIECE_RESERVED),
    )
    return list(vocabulary)


def vocabulary_path(task, corpus_version, texts_fn, vocabulary_size):
    """The cached vocabulary file of `task`, built from `texts_fn()` on first use (atomically, so concurrent first
    uses are safe). Bump `corpus_version` when the task's corpus generator changes, so that an old cached vocabulary
    is never reused."""
    path = os.path.join(cache_dir(), f"{task}-wordpiece-v{corpus_version}-{vocabulary_size}.txt")
    if not tf.io.gfile.exists(path):
        tokens = build_vocabulary(texts_fn(), vocabulary_size)
        files.atomic_write_text(path, "".join(token + "\n" for token in tokens))
    return path


def tokenizer(task, corpus_version, texts_fn, vocabulary_size):
    """The task's tokenizer (lowercasing WordPiece, "[PAD]" = 0, "[END]" ends responses)."""
    return tokenizers.word_piece(vocabulary_path(task, corpus_version, texts_fn, vocabulary_size), lowercase=True)
