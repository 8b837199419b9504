"""English sentences to translate into Veltan (`grammar.py`), and translations of mixed quality.

A sentence has a subject, a verb in the present, past or future, an object, and sometimes a place ("near the
bank"); "bank", "light" and "watch" appear in both their senses, the sentence deciding which. The prompt is
"Translate to Veltan: <sentence>\n\nVeltan:". The demonstrations' translations are a mix: mostly right, some word
by word (English order, no particle, no agreement), with a wrong word or a wrong sense, an English word left
untranslated, the wrong tense, a phrase dropped, or the words scrambled. Evaluation sentences pair subjects and
objects that no training sentence pairs.
"""

import dataclasses
import random

from rlhf_tf.data import records
from rlhf_tf.tasks.translate import grammar

# A quarter of the translators render a sentence exactly: the gold scorer has a ceiling (the one correct
# rendering), and a win rate against SFT with ties counted half can reach at most 1 - (SFT's share at the ceiling) / 2
# (0.76 when 45% were good), so the share sets how much RLHF can show.
QUALITIES = (
    ("good", 0.25),
    ("word_by_word", 0.16),
    ("wrong_word", 0.16),
    ("untranslated", 0.13),
    ("wrong_tense", 0.12),
    ("missing", 0.11),
    ("scrambled", 0.07),
)
ANIMATE = ("dog", "cat", "man", "woman", "child", "bird", "teacher", "farmer")
OBJECTS = tuple(noun for noun in grammar.NOUNS if noun not in ("river", "garden", "market"))
MONEY_OBJECTS = ("coin", "key", "box")
RIVER_OBJECTS = ("fish", "boat", "bird")
LIGHT_OBJECTS = ("box", "cup", "lamp", "book")


def held_out_pair(subject, obj):
    """Subject-object pairs kept out of training (about one in five)."""
    return (sorted(grammar.NOUNS).index(subject) * 3 + sorted(grammar.NOUNS).index(obj)) % 5 == 0


def _phrase(rng, noun, allow_plural=True, allow_indefinite=True):
    adjective = rng.choice(tuple(grammar.ADJECTIVES)) if rng.random() < 0.5 else ""
    if noun in LIGHT_OBJECTS and rng.random() < 0.15:
        adjective = "light"
    plural = allow_plural and noun in grammar.NOUNS and noun not in grammar.SINGULAR_ONLY and rng.random() < 0.3
    definite = plural or not allow_indefinite or rng.random() < 0.7
    return grammar.Phrase(noun, adjective, plural, definite)


def make_sentence(rng, held_out=False):
    while True:
        subject = rng.choice(ANIMATE)
        obj = rng.choice(OBJECTS)
        if held_out_pair(subject, obj) == held_out and subject != obj:
            break
    verb = rng.choice(tuple(grammar.VERBS))
    tense = rng.choice(tuple(grammar.TENSES))
    object_phrase = _phrase(rng, obj)
    special = rng.random()
    if special < 0.1:  # the noun "light" or "watch" as the object
        object_phrase = grammar.Phrase(rng.choice(("light", "watch")), rng.choice(("", "old", "new")))
    elif special < 0.2:  # the verb "watch"
        verb = "watch"
    place = ()
    if rng.random() < 0.35:
        if obj in MONEY_OBJECTS and rng.random() < 0.6:
            place = ("in", grammar.Phrase("bank", sense="money"))
        elif obj in RIVER_OBJECTS and rng.random() < 0.6:
            place = ("near", grammar.Phrase("bank", sense="river"))
        else:
            place = (rng.choice(tuple(grammar.PLACES)), _phrase(rng, rng.choice(("river", "garden", "market", "tree"))))
    return grammar.Sentence(_phrase(rng, subject, allow_indefinite=False), verb, tense, object_phrase, place)


def _choose(rng):
    value, total = rng.random(), 0.0
    for name, share in QUALITIES:
        total += share
        if value < total:
            return name
    return QUALITIES[-1][0]


def write_translation(rng, sentence, quality):
    if quality == "good":
        return grammar.translate(sentence)
    if quality == "word_by_word":
        return grammar.word_by_word(sentence)
    if quality == "wrong_tense":
        other = rng.choice([tense for tense in grammar.TENSES if tense != sentence.tense])
        return grammar.translate(dataclasses.replace(sentence, tense=other))
    if quality == "missing":
        if sentence.place:
            return grammar.translate(dataclasses.replace(sentence, place=()))
        return grammar.translate(
            dataclasses.replace(sentence, object=dataclasses.replace(sentence.object, adjective=""))
        )
    words = grammar.translate(sentence).rstrip(".").split()
    if quality == "scrambled":
        rng.shuffle(words)
        return " ".join(words) + "."
    english = sentence.english().lower().rstrip(".").split()
    content = [word for word in english if word not in ("the", "a", "an", "will")]
    if quality == "untranslated":
        index = rng.randrange(len(words) - 1)
        words[index] = rng.choice(content)
        return " ".join(words) + "."
    # wrong_word: a noun or adjective replaced by another Veltan word of its kind (or the other sense)
    nouns = set(grammar.NOUNS.values()) | set(grammar.BANK.values())
    candidates = [index for index, word in enumerate(words) if word.rstrip("n") in nouns or word in nouns]
    index = rng.choice(candidates)
    if words[index] in grammar.BANK.values():
        words[index] = next(value for value in grammar.BANK.values() if value != words[index])
    else:
        words[index] = rng.choice([value for value in grammar.NOUNS.values() if value != words[index].rstrip("n")])
    return " ".join(words) + "."


@dataclasses.dataclass(frozen=True)
class Example:
    sentence: grammar.Sentence
    quality: str
    prompt: str
    completion: str


def prompt_of(sentence):
    return f"Translate to Veltan: {sentence.english()}\n\nVeltan:"


def generate_examples(count, seed=0, held_out=False):
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        sentence = make_sentence(rng, held_out)
        quality = _choose(rng)
        examples.append(
            Example(sentence, quality, prompt_of(sentence), " " + write_translation(rng, sentence, quality))
        )
    return examples


def demonstrations(count=20_000, seed=0, held_out=False):
    return [records.Demonstration(e.prompt, e.completion) for e in generate_examples(count, seed, held_out)]


def evaluation_prompts(count=1000, seed=12345):
    """Held-out prompts (subject-object pairs no training sentence has), distinct, deterministic in `seed`."""
    rng = random.Random(seed)
    prompts, seen = [], set()
    while len(prompts) < count:
        prompt = prompt_of(make_sentence(rng, held_out=True))
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(records.Prompt(prompt))
    return prompts


def training_prompts(count=5000, seed=1):
    rng = random.Random(seed)
    return [records.Prompt(prompt_of(make_sentence(rng))) for _ in range(count)]
