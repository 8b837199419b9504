"""The `translate` task's WordPiece vocabulary (`word_pieces`): 1,024 tokens trained on 4,000 examples."""

from rlhf_tf.tasks import word_pieces
from rlhf_tf.tasks.translate import corpus

VOCABULARY_SIZE = 1024
# Bump when the corpus generator or the grammar changes, so that an old cached vocabulary is never reused.
CORPUS_VERSION = 2


def _texts(sample=4000):
    return [e.prompt + e.completion for e in corpus.generate_examples(sample, seed=0)]


def tokenizer(vocabulary_size=VOCABULARY_SIZE):
    """The task's tokenizer (lowercasing WordPiece, "[PAD]" = 0, "[END]" ends responses)."""
    return word_pieces.tokenizer("translate", CORPUS_VERSION, _texts, vocabulary_size)
