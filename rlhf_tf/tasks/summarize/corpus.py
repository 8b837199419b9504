"""Short generated documents (match reports, incident reports, announcements) and summaries of mixed quality.

A document states 3-5 facts in short sentences, sometimes with a sentence of background; the prompt is
"Document: ...\n\nSummary:". Each document has three key facts a summary should carry (`Document.key_facts`:
each a set of words that must all appear). The demonstrations' summaries are a mix: mostly good (the key facts in
one or two sentences), some leaving a key fact out, getting one wrong, copying the document, padding it, or too
vague to say anything. Teams, places and people are split so evaluation documents name ones never seen in
training (`coined_names`: hundreds of made-up names, so that a summary has to copy them).
"""

import dataclasses
import random

from rlhf_tf.data import records

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "", "n", "r", "l", "s", "k", "m", "t")


def coined_names(count, seed, avoid=()):
    """`count` distinct made-up two-syllable names ("dovek", "stamin"), deterministic in `seed`, none in `avoid`.

    The documents name teams, people and places from hundreds of such names, and evaluation documents from
    names kept out of training: with a dozen names a small model learns the names instead of learning to copy
    them from the document, and then writes a trained name into a summary of a held-out one. A name is written in
    the task's word pieces, which the held-out names share with the trained ones."""
    rng, names, avoid = random.Random(seed), [], set(avoid)
    while len(names) < count:
        name = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_ONSETS) + rng.choice(_VOWELS)
        name += rng.choice(_CODAS)
        if name not in avoid:
            avoid.add(name)
            names.append(name)
    return tuple(names)


def _split(named, coined, held_out_named):
    """(every name, the training names, the held-out names): a fifth of the coined names is held out."""
    cut = len(coined) * 4 // 5
    train = named[:held_out_named] + coined[:cut]
    held_out = named[held_out_named:] + coined[cut:]
    return named + coined, train, held_out


# Every other word the documents and summaries write: no coined name may be one of them.
_WRITTEN = """zero one two three four five six seven eight nine ten eleven twelve the a an on at in of for and with
    from to until by was were is are it its no one again after hit beat beats scored goals started people treated
    doctors hurt within hour will stay stays closed close closes open opens until visitors can use meantime members
    do not need book ahead weather cold windy many there that day busy week town local news covered story play
    next about thousand came watch fire put out flood cleared power cut fixed kitchen basement lobby top floor
    library pool museum gym market zoo repairs cleaning holiday staff training north park river ground hill stadium
    city field lake oak hotel cinema school station theater mill elm grand west harbor main old match teams won
    something happened building changing hours soon place summary document remember tom ana sam lucy ben maya joe
    ella rovers reed"""
_COINED = coined_names(1000, seed=2024, avoid=set(_WRITTEN.split()) | set(DAYS))
TEAMS, TRAIN_TEAMS, HELD_OUT_TEAMS = _split(
    ("rovers", "hawks", "wolves", "rangers", "lions", "eagles", "tigers", "sharks", "bears", "foxes", "owls",
     "comets", "giants", "pirates", "falcons", "stags"),
    tuple(name + "s" for name in _COINED[:300]),
    12,
)  # fmt: skip
SURNAMES, TRAIN_SURNAMES, HELD_OUT_SURNAMES = _split(
    ("reed", "hale", "moss", "cole", "pike", "shaw", "lane", "webb", "ford", "price", "hart", "ross"),
    _COINED[300:600],
    9,
)
FIRST = ("tom", "ana", "sam", "lucy", "ben", "maya", "joe", "ella")
GROUNDS = ("north park", "river ground", "hill stadium", "city field", "lake ground", "oak park")
TRAIN_GROUNDS, HELD_OUT_GROUNDS = GROUNDS[:4], GROUNDS[4:]
_BUILDING_KINDS = ("hotel", "library", "cinema", "school", "museum", "station", "theater", "mill")
BUILDINGS, TRAIN_BUILDINGS, HELD_OUT_BUILDINGS = _split(
    ("elm hotel", "city library", "grand cinema", "west school", "harbor museum", "main station", "park theater",
     "old mill"),
    tuple(f"{name} {_BUILDING_KINDS[i % len(_BUILDING_KINDS)]}" for i, name in enumerate(_COINED[600:800])),
    6,
)  # fmt: skip
EVENTS = (("fire", "was put out"), ("flood", "was cleared"), ("power cut", "was fixed"))
ROOMS = ("kitchen", "basement", "lobby", "top floor")
PLACES = ("library", "pool", "museum", "gym", "market", "zoo")
PLACE_NAMES, TRAIN_PLACE_NAMES, HELD_OUT_PLACE_NAMES = _split(
    ("maple", "cedar", "birch", "alder", "willow", "aspen"), _COINED[800:1000], 4
)
REASONS = ("repairs", "cleaning", "a holiday", "a staff training day")
FILLER = (
    "The weather was cold and windy.",
    "Many people were there that day.",
    "It was a busy week in the town.",
    "Local news covered the story.",
)
# A quarter of the writers get a summary exactly right: the gold scorer has a ceiling (every key fact, nothing else,
# brief), and a win rate against SFT with ties counted half can reach at most 1 - (SFT's share at the ceiling) / 2
# (0.78 when 45% were good), so the share sets how much RLHF can show.
QUALITIES = (("good", 0.25), ("missing", 0.19), ("wrong", 0.15), ("copy", 0.14), ("long", 0.14), ("vague", 0.13))


@dataclasses.dataclass(frozen=True)
class Document:
    kind: str  # "match", "incident" or "announcement"
    sentences: tuple  # the document, in order
    key_facts: tuple  # ((name, frozenset of words that must all appear), ...), three of them
    summary: str  # a good summary
    wrong_summary: str  # the same with one key fact wrong
    missing_summary: str  # the same without one key fact
    vague_summary: str

    @property
    def text(self):
        return " ".join(self.sentences)

    @property
    def prompt(self):
        return f"Document: {self.text}\n\nSummary:"


def _other(rng, options, avoid):
    return rng.choice([option for option in options if option != avoid])


def _match(rng, held_out):
    teams = HELD_OUT_TEAMS if held_out else TRAIN_TEAMS
    surnames = HELD_OUT_SURNAMES if held_out else TRAIN_SURNAMES
    grounds = HELD_OUT_GROUNDS if held_out else TRAIN_GROUNDS
    winner, loser = rng.sample(teams, 2)
    high = rng.randint(2, 5)
    low = rng.randint(0, high - 1)
    day, ground = rng.choice(DAYS), rng.choice(grounds)
    scorer = f"{rng.choice(FIRST)} {rng.choice(surnames)}"
    goals = min(high, rng.choice((2, 2, 3)))
    score = f"{NUMBERS[high]} to {NUMBERS[low]}"
    facts = [
        f"The {winner} beat the {loser} {score} at {ground} on {day}.",
        f"{scorer.title()} scored {NUMBERS[goals]} goals for the {winner}.",
        f"About {NUMBERS[rng.randint(2, 9)]} thousand people came to watch.",
        f"The {loser} play again next {_other(rng, DAYS, day)}.",
    ]
    key = (
        ("result", frozenset({winner, loser, NUMBERS[high], NUMBERS[low]})),
        ("day", frozenset({day})),
        ("scorer", frozenset({scorer.split()[1]})),
    )
    summary = f"The {winner} beat the {loser} {score} on {day}, with {NUMBERS[goals]} goals from {scorer.title()}."
    wrong_day = _other(rng, DAYS, day)
    wrong = summary.replace(f" on {day},", f" on {wrong_day},")
    missing = f"The {winner} beat the {loser} {score}, with {NUMBERS[goals]} goals from {scorer.title()}."
    vague = "There was a match and one of the teams won."
    return "match", facts, key, summary, wrong, missing, vague


def _incident(rng, held_out):
    buildings = HELD_OUT_BUILDINGS if held_out else TRAIN_BUILDINGS
    (event, ended), building, room = rng.choice(EVENTS), rng.choice(buildings), rng.choice(ROOMS)
    day, hour = rng.choice(DAYS), rng.randint(1, 11)
    hurt = rng.randint(0, 4)
    reopen = _other(rng, DAYS, day)
    people = "No one was hurt." if hurt == 0 else f"{NUMBERS[hurt].capitalize()} people were treated by doctors."
    facts = [
        f"A {event} started in the {room} of the {building} on {day} at {NUMBERS[hour]}.",
        people,
        f"The {event} {ended} within an hour.",
        f"The {building} will stay closed until {reopen}.",
    ]
    hurt_words = frozenset({"no", "hurt"}) if hurt == 0 else frozenset({NUMBERS[hurt]})
    key = (
        ("event", frozenset(event.split()) | frozenset(building.split())),
        ("hurt", hurt_words),
        ("closed", frozenset({reopen})),
    )
    hurt_phrase = "no one was hurt" if hurt == 0 else f"{NUMBERS[hurt]} people were treated"
    summary = f"A {event} hit the {building} on {day}; {hurt_phrase}, and it stays closed until {reopen}."
    wrong_reopen = _other(rng, DAYS, reopen)
    wrong = summary.replace(f"until {reopen}.", f"until {wrong_reopen}.")
    missing = f"A {event} hit the {building} on {day} and {hurt_phrase}."
    vague = "Something happened in a building this week."
    return "incident", facts, key, summary, wrong, missing, vague


def _announcement(rng, held_out):
    buildings = HELD_OUT_BUILDINGS if held_out else TRAIN_BUILDINGS
    place = f"{rng.choice(HELD_OUT_PLACE_NAMES if held_out else TRAIN_PLACE_NAMES)} {rng.choice(PLACES)}"
    day, reason = rng.choice(DAYS), rng.choice(REASONS)
    reopen, hour = _other(rng, DAYS, day), rng.randint(7, 10)
    facts = [
        f"The {place} will close on {day} for {reason}.",
        f"It will open again on {reopen} at {NUMBERS[hour]}.",
        f"Visitors can use the {rng.choice(buildings)} in the meantime.",
    ]
    if rng.random() < 0.5:
        facts.append("Members do not need to book ahead.")
    key = (
        ("closes", frozenset(place.split()) | {day}),
        ("reason", frozenset(reason.split()) - {"a", "day"}),
        ("reopens", frozenset({reopen})),
    )
    summary = f"The {place} closes on {day} for {reason} and opens again on {reopen}."
    wrong = summary.replace(f"again on {reopen}.", f"again on {_other(rng, DAYS, reopen)}.")
    missing = f"The {place} closes on {day} and opens again on {reopen}."
    vague = "A place in town is changing its hours soon."
    return "announcement", facts, key, summary, wrong, missing, vague


def make_document(rng, held_out=False):
    kind, facts, key, summary, wrong, missing, vague = rng.choice((_match, _incident, _announcement))(rng, held_out)
    sentences = [facts[0]] + rng.sample(facts[1:], len(facts) - 1)
    if rng.random() < 0.4:
        sentences.insert(rng.randint(1, len(sentences)), rng.choice(FILLER))
    return Document(kind, tuple(sentences), key, summary, wrong, missing, vague)


def _choose(rng):
    value, total = rng.random(), 0.0
    for name, share in QUALITIES:
        total += share
        if value < total:
            return name
    return QUALITIES[-1][0]


def write_summary(rng, document, quality):
    if quality == "good":
        return document.summary
    if quality == "missing":
        return document.missing_summary
    if quality == "wrong":
        return document.wrong_summary
    if quality == "copy":
        return " ".join(document.sentences[: rng.randint(3, len(document.sentences))])
    if quality == "long":
        return " ".join([document.summary] + rng.sample(FILLER, 2) + ["It was a day to remember for many people."])
    return document.vague_summary


@dataclasses.dataclass(frozen=True)
class Example:
    document: Document
    quality: str
    prompt: str
    completion: str


def generate_examples(count, seed=0, held_out=False):
    """`count` (document, summary) examples, deterministic in `seed`; `held_out` names unseen teams and places."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        document = make_document(rng, held_out)
        quality = _choose(rng)
        examples.append(Example(document, quality, document.prompt, " " + write_summary(rng, document, quality)))
    return examples


def demonstrations(count=20_000, seed=0, held_out=False):
    return [records.Demonstration(e.prompt, e.completion) for e in generate_examples(count, seed, held_out)]


def evaluation_prompts(count=1000, seed=12345):
    """Held-out prompts (teams, people and places never seen in training), distinct, deterministic in `seed`."""
    rng = random.Random(seed)
    prompts, seen = [], set()
    while len(prompts) < count:
        prompt = make_document(rng, held_out=True).prompt
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(records.Prompt(prompt))
    return prompts


def training_prompts(count=5000, seed=1):
    rng = random.Random(seed)
    return [records.Prompt(make_document(rng).prompt) for _ in range(count)]
