"""The gold scorer of the `translate` task: a stand-in for a bilingual person judging a Veltan translation.

It parses the English sentence of the prompt with the task's grammar, renders the one correct Veltan translation
(`grammar.translate`: the language is small enough to have one), and compares the reply with it:

    score = 1.5 x adequacy + fluency - (untranslated + unknown + repeated + length + unfinished)

- adequacy: the share of the reference's words the reply has (counted with multiplicity): the meaning carried,
  each noun in its number and sense, each adjective, the verb in its tense, the object particle.
- fluency: the share of the reply's word pairs (with its start and end) that the reference has: word order,
  adjectives after nouns, the particle after the object, the verb last.
- untranslated: 0.5 per English word left in the reply (at most 2); unknown: 0.5 per word that is neither Veltan
  nor English (at most 2); repeated: 0.3 per word beyond the number of times the reference has it; length: 0.1
  per word beyond the reference's length + 2; unfinished: 0.2 without a final ".".

A word-by-word rendering (English order, no particle, no agreement, the first sense of an ambiguous word) carries
much of the meaning and little of the grammar, and scores below the median demonstration.
"""

import collections
import functools
import re

import numpy as np

from rlhf_tf.tasks.translate import grammar

_WORD = re.compile(r"[a-z]+")
_SOURCE = re.compile(r"Translate to Veltan:\s*(.*?)(?:\n\nVeltan:|$)", re.DOTALL)
ARTICLES = ("the", "a", "an")


def _plural_nouns():
    return grammar.PLURAL_TO_NOUN


@functools.lru_cache(maxsize=1)
def veltan_words():
    words = set(grammar.PLACES.values()) | {grammar.PARTICLE, grammar.INDEFINITE}
    stems = set(grammar.NOUNS.values()) | set(grammar.BANK.values()) | {grammar.LIGHT["noun"], grammar.WATCH["noun"]}
    words |= stems | {stem + "n" for stem in stems}
    words |= set(grammar.ADJECTIVES.values()) | {grammar.LIGHT["adjective"]}
    verbs = [stem for stem, *_ in grammar.VERBS.values()] + [grammar.WATCH["verb"]]
    words |= {stem + suffix for stem in verbs for suffix in grammar.TENSES.values()}
    return frozenset(words)


@functools.lru_cache(maxsize=1)
def english_words():
    words = set(ARTICLES) | {"will", "bank", "light", "watch", "watches", "watched"} | set(grammar.PLACES)
    words |= set(grammar.NOUNS) | set(_plural_nouns()) | set(grammar.ADJECTIVES)
    for stem, (_, present, past) in grammar.VERBS.items():
        words |= {stem, present, past}
    return frozenset(words - veltan_words())


def source_of(prompt):
    found = _SOURCE.search(prompt)
    return (found.group(1) if found else prompt).strip()


def _noun_phrase(tokens, index):
    definite = tokens[index] == "the"
    index += 1
    adjective = ""
    if tokens[index] in grammar.ADJECTIVES or (tokens[index] == "light" and index + 1 < len(tokens)
                                               and _is_noun(tokens[index + 1])):  # fmt: skip
        adjective, index = tokens[index], index + 1
    word = tokens[index]
    plural = word in _plural_nouns() and word not in grammar.NOUNS
    noun = _plural_nouns().get(word, word) if plural else word
    return grammar.Phrase(noun, adjective, plural, definite), index + 1


def _is_noun(word):
    return word in grammar.NOUNS or word in _plural_nouns() or word in ("bank", "light", "watch")


def parse(sentence):
    """The `grammar.Sentence` of an English sentence the task generates, or None when it is not one."""
    tokens = _WORD.findall(sentence.lower())
    try:
        subject, index = _noun_phrase(tokens, 0)
        if tokens[index] == "will":
            tense, verb, index = "future", tokens[index + 1], index + 2
        else:
            word, index = tokens[index], index + 1
            verb, tense = next(
                ((stem, "past" if word == forms[2] and word != forms[1] else "present")
                 for stem, forms in {**{k: (k, *v[1:]) for k, v in grammar.VERBS.items()},
                                     "watch": ("watch", "watches", "watched")}.items() if word in forms),
                (None, None),
            )  # fmt: skip
        if verb is None:
            return None
        obj, index = _noun_phrase(tokens, index)
        place = ()
        if index < len(tokens) and tokens[index] in grammar.PLACES:
            preposition = tokens[index]
            phrase, index = _noun_phrase(tokens, index + 1)
            if phrase.noun == "bank":
                phrase = grammar.Phrase("bank", sense="money" if preposition == "in" else "river")
            place = (preposition, phrase)
        return grammar.Sentence(subject, verb, tense, obj, place)
    except (IndexError, KeyError):
        return None


def reference(prompt):
    """The correct translation of the prompt's sentence, or None."""
    sentence = parse(source_of(prompt))
    return grammar.translate(sentence) if sentence is not None else None


def details(prompt, response):
    target = reference(prompt)
    text = response.strip()
    words = _WORD.findall(text.lower())
    terms = {}
    expected = _WORD.findall(target) if target else []
    if expected:
        have = collections.Counter(words)
        terms["adequacy"] = sum(min(count, have[word]) for word, count in collections.Counter(expected).items())
        terms["adequacy"] /= len(expected)
        pairs = list(zip(["<s>"] + words, words + ["</s>"]))
        reference_pairs = set(zip(["<s>"] + expected, expected + ["</s>"]))
        terms["fluency"] = sum(pair in reference_pairs for pair in pairs) / len(pairs) if words else 0.0
    else:
        terms["adequacy"] = terms["fluency"] = 0.0
    english, veltan = english_words(), veltan_words()
    untranslated = sum(word in english for word in words)
    terms["untranslated"] = min(2.0, 0.5 * untranslated)
    terms["unknown"] = min(2.0, 0.5 * sum(word not in english and word not in veltan for word in words))
    expected_counts, counts = collections.Counter(expected), collections.Counter(words)
    terms["repeated"] = 0.3 * sum(
        max(0, count - expected_counts[word]) for word, count in counts.items() if word in veltan and count > 1
    )
    terms["length"] = 0.1 * max(0, len(words) - len(expected) - 2)
    terms["unfinished"] = 0.0 if text.endswith(".") else 0.2
    penalties = terms["untranslated"] + terms["unknown"] + terms["repeated"] + terms["length"] + terms["unfinished"]
    terms["score"] = 1.5 * terms["adequacy"] + terms["fluency"] - penalties
    return terms, {"adequacy": terms["adequacy"], "fluency": terms["fluency"], "untranslated": untranslated > 0}


def score(prompt, response):
    """The gold score of one translation."""
    return details(prompt, response)[0]["score"]


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def score_batch(prompts, responses):
    """Gold scores of a batch (lists of str or bytes) as float32 [batch]."""
    return np.array([score(_text(p), _text(r)) for p, r in zip(prompts, responses, strict=True)], dtype=np.float32)


def metrics(prompts, responses):
    """adequacy and fluency (means, as in the score) and untranslated_rate (translations with an English word)."""
    values = [details(_text(p), _text(r))[1] for p, r in zip(prompts, responses, strict=True)]
    return {
        "adequacy": float(np.mean([v["adequacy"] for v in values])),
        "fluency": float(np.mean([v["fluency"] for v in values])),
        "untranslated_rate": float(np.mean([v["untranslated"] for v in values])),
    }
