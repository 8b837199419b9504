"""The `reviews` task's WordPiece vocabulary: trained offline on the corpus with keras-hub, built once and cached.

A tiny byte-level model trained for a few CPU minutes still misspells most words, and then spelling, not sentiment,
dominates every score; word pieces let a small model spend its capacity on what the task is about.
"""

import os

import keras_hub
import tensorflow as tf

from rlhf_tf import files
from rlhf_tf.data import tokenizers
from rlhf_tf.tasks.reviews import corpus

VOCABULARY_SIZE = 1024
# Bump when the corpus generator changes, so that an old cached vocabulary is never reused.
CORPUS_VERSION = 1


def cache_dir():
    """`$RLHF_TF_CACHE`, else `~/.cache/rlhf_tf`."""
    return os.environ.get("RLHF_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rlhf_tf")


def build_vocabulary(vocabulary_size=VOCABULARY_SIZE, sample=4000):
    """Trains the vocabulary on `sample` corpus reviews (prompts included); returns the tokens."""
    texts = [review.text for review in corpus.generate_reviews(sample, seed=0)]
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(texts).batch(1000),
        vocabulary_size,
        lowercase=True,
        reserved_tokens=list(tokenizers.WORD_PIECE_RESERVED),
    )
    return list(vocabulary)


def vocabulary_path(vocabulary_size=VOCABULARY_SIZE):
    """The cached vocabulary file, built on first use (atomically, so concurrent first uses are safe)."""
    path = os.path.join(cache_dir(), f"reviews-wordpiece-v{CORPUS_VERSION}-{vocabulary_size}.txt")
    if not tf.io.gfile.exists(path):
        files.atomic_write_text(path, "".join(token + "\n" for token in build_vocabulary(vocabulary_size)))
    return path


def tokenizer(vocabulary_size=VOCABULARY_SIZE):
    """The task's tokenizer (lowercasing WordPiece, "[PAD]" = 0, "[END]" ends responses)."""
    return tokenizers.word_piece(vocabulary_path(vocabulary_size), lowercase=True)
