"""The `summarize` task's WordPiece vocabulary (`word_pieces`): 400 tokens trained on 4,000 examples (few enough that
the made-up names are written in shared pieces, not learned whole: held-out names take about as many pieces as trained
ones)."""

from rlhf_tf.tasks import word_pieces
from rlhf_tf.tasks.summarize import corpus

VOCABULARY_SIZE = 400
# Bump when the corpus generator changes, so that an old cached vocabulary is never reused.
CORPUS_VERSION = 3


def _texts(sample=4000):
    return [e.prompt + e.completion for e in corpus.generate_examples(sample, seed=0)]


def tokenizer(vocabulary_size=VOCABULARY_SIZE):
    """The task's tokenizer (lowercasing WordPiece, "[PAD]" = 0, "[END]" ends responses)."""
    return word_pieces.tokenizer("summarize", CORPUS_VERSION, _texts, vocabulary_size)
