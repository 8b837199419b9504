"""The gold scorer of the `reviews` task: a stand-in for a person judging a review written after a prompt.

It likes positive sentiment (a lexicon with negation and intensifiers, saturating so that piling on praise stops
paying) in fluent, on-topic, complete text, and it penalises what a person would mark down:

    score = sentiment + on_topic_bonus - (too_short + no_content + unfinished + run_on + long_sentences
             + repetition + gibberish + adjective_piling + off_topic)

- sentiment = tanh(sum of word weights / 2.5), in (-1, 1); a negator within three words before flips a word to
  0.7 of the opposite weight; an intensifier right before multiplies it.
- too_short: 0.3 per word under 8 (the empty reply loses 2.4); no_content: 0.8 when no sentiment-bearing word;
  unfinished: 0.3 when the text does not end with . ! or ?; run_on: 0.04 per word over 55; long_sentences: 0.05
  per word past 28 in any sentence.
- repetition: 0.4 per immediately repeated word, 2.5 x (fraction of repeated word trigrams - 0.1) when positive,
  0.5 per sentence said twice.
- gibberish: 3 x the fraction of words outside the task's vocabulary, and 3 x the fraction of characters that are
  neither letters, digits, spaces nor ordinary punctuation.
- adjective_piling: 0.5 per adjective past 2 in a run of adjectives (joined by commas, "and", intensifiers), and
  3 x (adjective share of words - 0.3) when positive.
- off_topic: 0.5 per word that belongs to another subject (a vacuum's "suction" in a charger review, "plot" in a
  blender review), at most 2; on_topic_bonus: 0.1 per distinct aspect of the prompt's own subject, at most 0.3.

The scorer labels pairs for the simulated labeler and judges results; it is never the RL reward, so a policy that
exploits the learned reward model shows up as reward rising while the gold score does not.
"""

import functools
import math
import re

import numpy as np

from rlhf_tf.tasks.reviews import corpus, lexicon

_WORD = re.compile(r"[a-z]+")
_TOKEN = re.compile(r"[a-z]+|[.,!?;]")
_SENTENCE_END = re.compile(r"[.!?]+")
_ODD_CHARACTER = re.compile(r"[^A-Za-z0-9\s.,!?;:'\"()\-]")

MOVIE_WORDS = {"film", "movie", "theater", "audience", "scene", "scenes", "watch", "watched", "actors", "actor"}


def _words(text):
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1)
def known_words():
    """The task's vocabulary: every word the generator can write, and the lexicon's."""
    words = set(lexicon.COMMON_WORDS) | set(lexicon.SENTIMENT) | set(lexicon.NEGATORS) | set(lexicon.INTENSIFIERS)
    words |= set(lexicon.GENERIC_TOPIC_WORDS) | MOVIE_WORDS
    for review in corpus.generate_reviews(6000, seed=99) + corpus.generate_reviews(2000, seed=98, held_out=True):
        words.update(_words(review.text))
    return frozenset(words)


@functools.lru_cache(maxsize=1)
def _topic_words():
    """Category -> the words that mark that subject (its name and aspects)."""
    topics = {}
    for product, table in lexicon.PRODUCTS.items():
        words = set(_words(product))
        for aspect in table["aspects"]:
            words.update(_words(aspect))
        topics[product] = words
    movie = set(MOVIE_WORDS)
    for aspect in lexicon.MOVIE_ASPECTS:
        movie.update(_words(aspect))
    topics["movie"] = movie
    shared = set(lexicon.COMMON_WORDS) | set(lexicon.GENERIC_TOPIC_WORDS) | set(lexicon.SENTIMENT)
    return {name: words - shared for name, words in topics.items()}


@functools.cache
def _foreign_words(category):
    topics = _topic_words()
    own = topics[category]
    return frozenset(set().union(*(words for name, words in topics.items() if name != category)) - own)


def subject_category(prompt):
    """The product category named in a prompt, "movie" for a film, or None."""
    header = prompt.lower().split(":", 1)[0]
    for product in sorted(lexicon.PRODUCTS, key=len, reverse=True):
        if product in header:
            return product
    if any(genre in header for genre in lexicon.GENRES):
        return "movie"
    return None


def _aspect_set(category):
    if category == "movie":
        return {aspect for aspect in lexicon.MOVIE_ASPECTS}
    return set(lexicon.PRODUCTS[category]["aspects"]) if category else set()


def score_details(prompt, response):
    """Every term of the score (see the module docstring) for one response."""
    text = response.strip()
    words = _words(text)
    count = len(words)
    known = known_words()

    total, sentiment_words = 0.0, 0
    for index, word in enumerate(words):
        weight = lexicon.SENTIMENT.get(word)
        if weight is None:
            continue
        sentiment_words += 1
        if any(previous in lexicon.NEGATORS for previous in words[max(0, index - 3) : index]):
            weight = -0.7 * weight
        if index and words[index - 1] in lexicon.INTENSIFIERS:
            weight *= lexicon.INTENSIFIERS[words[index - 1]]
        total += weight
    terms = {"sentiment": math.tanh(total / 2.5)}

    terms["too_short"] = 0.3 * max(0, 8 - count)
    terms["no_content"] = 0.8 if sentiment_words == 0 else 0.0
    terms["unfinished"] = 0.0 if text.endswith((".", "!", "?")) else 0.3
    terms["run_on"] = 0.04 * max(0, count - 55)
    sentences = [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]
    terms["long_sentences"] = 0.05 * sum(max(0, len(_words(sentence)) - 28) for sentence in sentences)

    repeats = sum(1 for a, b in zip(words, words[1:]) if a == b)
    trigrams = list(zip(words, words[1:], words[2:]))
    repeated_share = 1 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0
    normalised = [" ".join(_words(sentence)) for sentence in sentences]
    terms["repetition"] = (
        0.4 * repeats + 2.5 * max(0.0, repeated_share - 0.1) + 0.5 * (len(normalised) - len(set(normalised)))
    )

    unknown_share = sum(word not in known for word in words) / count if count else 0.0
    odd_share = len(_ODD_CHARACTER.findall(text)) / len(text) if text else 0.0
    terms["gibberish"] = 3.0 * unknown_share + 3.0 * odd_share

    run, piling = 0, 0.0
    for token in _TOKEN.findall(text.lower()) + ["."]:
        if token in lexicon.ADJECTIVES:
            run += 1
        elif token in (",", "and") or token in lexicon.INTENSIFIERS:
            continue
        else:
            piling += 0.5 * max(0, run - 2)
            run = 0
    adjective_share = sum(word in lexicon.ADJECTIVES for word in words) / count if count else 0.0
    terms["adjective_piling"] = piling + 3.0 * max(0.0, adjective_share - 0.3)

    category = subject_category(prompt)
    if category is None:
        terms["off_topic"], bonus = 0.0, 0.0
    else:
        foreign = _foreign_words(category)
        terms["off_topic"] = min(2.0, 0.5 * sum(word in foreign for word in words))
        lowered = " " + " ".join(words) + " "
        bonus = 0.1 * min(3, sum(f" {aspect} " in lowered for aspect in _aspect_set(category)))
    terms["on_topic_bonus"] = bonus
    penalties = sum(value for name, value in terms.items() if name not in ("sentiment", "on_topic_bonus"))
    terms["score"] = terms["sentiment"] + bonus - penalties
    return terms


def score(prompt, response):
    """The gold score of one response."""
    return score_details(prompt, response)["score"]


def score_batch(prompts, responses):
    """Gold scores of a batch (lists of str or bytes) as float32 [batch]."""
    prompts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in prompts]
    responses = [r.decode("utf-8", "replace") if isinstance(r, bytes) else r for r in responses]
    return np.array([score(p, r) for p, r in zip(prompts, responses, strict=True)], dtype=np.float32)
