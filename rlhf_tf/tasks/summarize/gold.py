"""The gold scorer of the `summarize` task: a stand-in for a person judging a summary of a short document.

It reads the document's key facts from the prompt (the result, day and scorer of a match; what happened where,
who was hurt and until when a building is closed; what closes, why and when it opens again) and checks the
summary against the document:

    score = 1.5 x recall - (wrong + unsupported + copied + long + too_short + not_a_sentence + unfinished
             + repetition + gibberish)

- recall: the share of the three key facts the summary carries (a fact counts when all of its words appear).
- wrong: 1.0 per key fact stated otherwise than the document says (another day, the teams the other way round,
  another score, another number hurt), at most 3.
- unsupported: 0.8 per name, number, day, place or event the document never mentions, at most 2.4.
- copied: 0.5 per sentence of 6 words or more taken word for word from the document.
- long: 0.06 per word over 28; too_short: 0.3 per word under 6; not_a_sentence: 1.0 without a verb, or when
  fewer than a quarter of the words are ordinary function words (a list of names and numbers);
- unfinished, repetition and gibberish as in the other tasks.

So a copy of the document carries every fact and still loses to a two-line summary, and a list of the right words
is not a summary.
"""

import functools
import re

import numpy as np

from rlhf_tf.tasks.summarize import corpus

_WORD = re.compile(r"[a-z]+|\d+")
_SENTENCE = re.compile(r"[^.!?;]+[.!?;]*")
_DOCUMENT = re.compile(r"Document:\s*(.*?)(?:\n\nSummary:|$)", re.DOTALL)
VERBS = frozenset(
    "beat beats won win lost scored hit hits started was were is are will close closes closed opens open reopens "
    "stays stay treated hurt came play plays happened changing got had".split()
)
FUNCTION = frozenset(
    "the a an on at in of for and with from to until by was were is are it its no one again after".split()
)


def _words(text):
    return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1)
def closed_words():
    """Names, numbers, days, places and events: words a summary may only use when the document does."""
    words = set(corpus.DAYS) | set(corpus.NUMBERS) | set(corpus.TEAMS) | set(corpus.SURNAMES) | set(corpus.FIRST)
    for phrase in corpus.GROUNDS + corpus.BUILDINGS + corpus.PLACES + corpus.PLACE_NAMES + corpus.ROOMS:
        words.update(phrase.split())
    for event, _ in corpus.EVENTS:
        words.update(event.split())
    return frozenset(words - {"one", "park", "city"})  # "no one"; parts of several names


@functools.lru_cache(maxsize=1)
def known_words():
    words = set()
    for example in corpus.generate_examples(4000, seed=99) + corpus.generate_examples(1000, seed=98, held_out=True):
        words.update(_words(example.prompt + example.completion))
    return frozenset(words) | closed_words()


def document_of(prompt):
    found = _DOCUMENT.search(prompt)
    return (found.group(1) if found else prompt).strip()


def key_facts(document):
    """(kind, {role: value}, ((name, frozenset of words), ...)) of a document, parsed from its text."""
    text = document.lower()
    match = re.search(r"the (\w+) beat the (\w+) (\w+) to (\w+) at .+? on (\w+)\.", text)
    if match:
        winner, loser, high, low, day = match.groups()
        scorer = re.search(r"\w+ (\w+) scored \w+ goals", text)
        roles = {"winner": winner, "loser": loser, "high": high, "low": low, "day": day}
        roles["scorer"] = scorer.group(1) if scorer else ""
        facts = (
            ("result", frozenset({winner, loser, high, low})),
            ("day", frozenset({day})),
            ("scorer", frozenset({roles["scorer"]})),
        )
        return "match", roles, facts
    incident = re.search(r"a (fire|flood|power cut) started in the .+? of the (.+?) on (\w+) at", text)
    if incident:
        event, building, day = incident.groups()
        until = re.search(r"stay closed until (\w+)", text)
        treated = re.search(r"(\w+) people were treated", text)
        roles = {"event": event, "day": day, "until": until.group(1) if until else "", "hurt": "no"}
        if treated:
            roles["hurt"] = treated.group(1)
        hurt = frozenset({"no", "hurt"}) if roles["hurt"] == "no" else frozenset({roles["hurt"]})
        facts = (
            ("event", frozenset(event.split()) | frozenset(building.split())),
            ("hurt", hurt),
            ("closed", frozenset({roles["until"]})),
        )
        return "incident", roles, facts
    closing = re.search(r"the (\w+ \w+) will close on (\w+) for (.+?)\.", text)
    if closing:
        place, day, reason = closing.groups()
        again = re.search(r"open again on (\w+)", text)
        roles = {"day": day, "reason": reason, "reopen": again.group(1) if again else ""}
        facts = (
            ("closes", frozenset(place.split()) | {day}),
            ("reason", frozenset(reason.split()) - {"a", "day"}),
            ("reopens", frozenset({roles["reopen"]})),
        )
        return "announcement", roles, facts
    return None, {}, ()


def _wrong(kind, roles, summary):
    """Key facts the summary states otherwise than the document."""
    text = " ".join(_words(summary))
    days = set(corpus.DAYS)
    wrong = 0
    if kind == "match":
        result = re.search(r"the (\w+) beat the (\w+)", text)
        wrong += bool(result and set(result.groups()) <= set(corpus.TEAMS)
                      and result.groups() != (roles["winner"], roles["loser"]))  # fmt: skip
        lost = re.search(r"the (\w+) lost to the (\w+)", text)
        wrong += bool(lost and lost.groups() != (roles["loser"], roles["winner"]))
        score = re.search(r"(\w+) to (\w+)", text)
        wrong += bool(score and set(score.groups()) <= set(corpus.NUMBERS)
                      and score.groups() != (roles["high"], roles["low"]))  # fmt: skip
        stated = [day for day in re.findall(r"\bon (\w+)", text) if day in days]
        wrong += bool(stated and roles["day"] not in stated)
    elif kind == "incident":
        until = re.findall(r"until (\w+)", text)
        wrong += bool(until and until[0] != roles["until"])
        stated = [day for day in re.findall(r"\bon (\w+)", text) if day in days]
        wrong += bool(stated and roles["day"] not in stated)
        if roles["hurt"] == "no":
            wrong += bool(re.search(r"(\w+) people were (?:treated|hurt)", text))
        else:
            wrong += "no one was hurt" in text
            number = re.search(r"(\w+) people", text)
            wrong += bool(number and number.group(1) in corpus.NUMBERS and number.group(1) != roles["hurt"])
    elif kind == "announcement":
        closes = re.search(r"clos\w* on (\w+)", text)
        wrong += bool(closes and closes.group(1) in days and closes.group(1) != roles["day"])
        again = re.search(r"again on (\w+)", text)
        wrong += bool(again and again.group(1) in days and again.group(1) != roles["reopen"])
        reason = re.search(r"for (repairs|cleaning|a holiday|a staff training day)", text)
        wrong += bool(reason and reason.group(1) != roles["reason"])
    return wrong


def details(prompt, summary):
    """Every term of the score (see the module docstring) and the metric values, for one summary."""
    document = document_of(prompt)
    kind, roles, facts = key_facts(document)
    text = summary.strip()
    words = _words(text)
    count = len(words)
    present = set(words)
    recall = sum(needed <= present for _, needed in facts) / len(facts) if facts else 0.0
    terms = {"recall": 1.5 * recall}
    terms["wrong"] = min(3.0, 1.0 * _wrong(kind, roles, text)) if kind else 0.0
    unsupported = (present & closed_words()) - set(_words(document))
    terms["unsupported"] = min(2.4, 0.8 * len(unsupported))
    document_sentences = {" ".join(_words(sentence)) for sentence in _SENTENCE.findall(document)}
    summary_sentences = [" ".join(_words(sentence)) for sentence in _SENTENCE.findall(text) if _words(sentence)]
    terms["copied"] = 0.5 * sum(
        len(sentence.split()) >= 6 and sentence in document_sentences for sentence in summary_sentences
    )
    terms["long"] = 0.06 * max(0, count - 28)
    terms["too_short"] = 0.3 * max(0, 6 - count)
    function_share = sum(word in FUNCTION for word in words) / count if count else 0.0
    terms["not_a_sentence"] = 1.0 if count and (not present & VERBS or function_share < 0.25) else 0.0
    terms["unfinished"] = 0.0 if text.endswith((".", "!", "?")) else 0.3
    repeats = sum(1 for a, b in zip(words, words[1:]) if a == b)
    trigrams = list(zip(words, words[1:], words[2:]))
    repeated_share = 1 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0
    terms["repetition"] = (
        0.4 * repeats
        + 2.5 * max(0.0, repeated_share - 0.1)
        + 0.5 * (len(summary_sentences) - len(set(summary_sentences)))
    )
    known = known_words()
    terms["gibberish"] = 3.0 * (sum(word not in known for word in words) / count if count else 0.0)
    terms["score"] = terms["recall"] - sum(value for name, value in terms.items() if name != "recall")
    values = {"fact_recall": recall, "unsupported": bool(unsupported) or terms["wrong"] > 0, "length": count}
    return terms, values


def score(prompt, summary):
    """The gold score of one summary."""
    return details(prompt, summary)[0]["score"]


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def score_batch(prompts, responses):
    """Gold scores of a batch (lists of str or bytes) as float32 [batch]."""
    return np.array([score(_text(p), _text(r)) for p, r in zip(prompts, responses, strict=True)], dtype=np.float32)


def metrics(prompts, responses):
    """fact_recall (mean share of the key facts carried), unsupported_fact_rate (summaries with any fact the
    document contradicts or does not give) and length (mean words)."""
    values = [details(_text(p), _text(r))[1] for p, r in zip(prompts, responses, strict=True)]
    return {
        "fact_recall": float(np.mean([v["fact_recall"] for v in values])),
        "unsupported_fact_rate": float(np.mean([v["unsupported"] for v in values])),
        "length": float(np.mean([v["length"] for v in values])),
    }
