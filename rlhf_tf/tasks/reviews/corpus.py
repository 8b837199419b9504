"""A deterministic generator of short product and movie reviews of mixed sentiment, and their prompts.

A review is written for a subject (a branded product or a titled movie) with a star rating from 1 to 5 that sets
how likely each sentence is to be positive; 3-star reviews mix praise and complaints. Prompts open a review: a
header naming the subject ("Review of the Apex blender:"), sometimes followed by the first words of the review.
Brands and titles are split so that evaluation prompts name subjects never seen in training.
"""

import dataclasses
import functools
import random

from rlhf_tf.data import records
from rlhf_tf.tasks.reviews import lexicon

PLURAL_PRODUCTS = {"headphones", "running shoes"}
TRAIN_BRANDS = lexicon.BRANDS[:24]
HELD_OUT_BRANDS = lexicon.BRANDS[24:]
TRAIN_TITLE_FIRST = lexicon.TITLE_FIRST[:16]
HELD_OUT_TITLE_FIRST = lexicon.TITLE_FIRST[16:]


@dataclasses.dataclass(frozen=True)
class Subject:
    """What a review is about."""

    kind: str  # "product" or "movie"
    category: str  # the product category ("blender") or the genre ("thriller")
    name: str  # "Apex blender" or 'thriller "Midnight Harbor"'

    @property
    def header(self):
        return f"Review of the {self.name}:"


@dataclasses.dataclass(frozen=True)
class Review:
    subject: Subject
    stars: int
    prompt: str
    completion: str

    @property
    def text(self):
        return self.prompt + self.completion


def _subjects(brands, title_firsts):
    subjects = [Subject("product", product, f"{brand} {product}") for brand in brands for product in lexicon.PRODUCTS]
    for genre in lexicon.GENRES:
        for first in title_firsts:
            for second in lexicon.TITLE_SECOND:
                subjects.append(Subject("movie", genre, f'{genre} "{first} {second}"'))
    return subjects


def train_subjects():
    return _subjects(TRAIN_BRANDS, TRAIN_TITLE_FIRST)


def held_out_subjects():
    return _subjects(HELD_OUT_BRANDS, HELD_OUT_TITLE_FIRST)


class _Writer:
    """Writes the sentences of one review."""

    def __init__(self, rng, subject):
        self.rng = rng
        self.subject = subject
        self.used_aspects = []

    def pick(self, options):
        return self.rng.choice(options)

    def aspect(self):
        pool = (
            lexicon.PRODUCTS[self.subject.category]["aspects"]
            if self.subject.kind == "product"
            else lexicon.MOVIE_ASPECTS
        )
        fresh = [aspect for aspect in pool if aspect not in self.used_aspects] or pool
        chosen = self.pick(fresh)
        self.used_aspects.append(chosen)
        return chosen

    def aspect_with(self, singular, plural):
        """An aspect with its verb in agreement: "blades are", "motor is"."""
        aspect = self.aspect()
        is_plural = aspect.endswith("s") and not aspect.endswith("ss")
        return f"{aspect} {plural if is_plural else singular}"

    def adjective(self, positive):
        table = lexicon.PRODUCT_ADJECTIVES if self.subject.kind == "product" else lexicon.MOVIE_ADJECTIVES
        word = self.pick(table[positive])
        if self.rng.random() < 0.25:
            word = f"{self.pick(['very', 'really', 'quite', 'absolutely'])} {word}"
        return word

    def duration(self):
        count = self.rng.randint(2, 6)
        return f"{['two', 'three', 'four', 'five', 'six'][count - 2]} {self.pick(['days', 'weeks', 'months'])}"

    # Product sentences -------------------------------------------------------------------------------------------

    def product_sentence(self, polarity):
        category = self.subject.category
        plural = category in PLURAL_PRODUCTS
        pronoun, be = ("They", "are") if plural else ("It", "is")
        phrases = lexicon.PRODUCTS[category]
        if polarity > 0:
            templates = [
                lambda: f"The {self.aspect_with('is', 'are')} {self.adjective(True)}.",
                lambda: f"{pronoun} {self.pick(phrases['positive'])}.",
                lambda: f"I love the {self.aspect()}.",
                lambda: f"The {self.aspect()} and the {self.aspect()} are both {self.adjective(True)}.",
                lambda: f"For the price, {pronoun.lower()} {be} {self.adjective(True)}.",
                lambda: f"{pronoun} {be} {self.adjective(True)} and {self.adjective(True)}.",
            ]
        elif polarity < 0:
            templates = [
                lambda: f"The {self.aspect_with('is', 'are')} {self.adjective(False)}.",
                lambda: f"{pronoun} {self.pick(phrases['negative'])}.",
                lambda: f"Unfortunately the {self.aspect()} stopped working after {self.duration()}.",
                lambda: f"The {self.aspect_with('feels', 'feel')} {self.adjective(False)}.",
                lambda: f"I returned {'them' if plural else 'it'} after {self.duration()}.",
                lambda: f"{pronoun} {be} {self.adjective(False)} for the price.",
            ]
        else:
            templates = [
                lambda: (
                    f"The {self.aspect_with('is', 'are')} {self.adjective(True)}, "
                    f"but the {self.aspect_with('is', 'are')} {self.adjective(False)}."
                ),
                lambda: f"The {self.aspect_with('is', 'are')} fine, nothing special.",
                lambda: (
                    f"The {self.aspect()} could be better, "
                    f"but the {self.aspect_with('is', 'are')} {self.adjective(True)}."
                ),
            ]
        return self.pick(templates)()

    def product_opening(self):
        category = self.subject.category
        return self.pick(
            [
                f"I bought {'these' if category in PLURAL_PRODUCTS else 'this'} {category} {self.duration()} ago.",
                f"I have used {'them' if category in PLURAL_PRODUCTS else 'it'} every day for a month.",
                f"This replaced my old {category}.",
                f"I got {'these' if category in PLURAL_PRODUCTS else 'this'} as a gift last year.",
            ]
        )

    # Movie sentences ---------------------------------------------------------------------------------------------

    def movie_sentence(self, polarity):
        if polarity > 0:
            templates = [
                lambda: f"The {self.aspect_with('was', 'were')} {self.adjective(True)}.",
                lambda: f"It {self.pick(lexicon.MOVIE_POSITIVE)}.",
                lambda: f"I loved the {self.aspect()}.",
                lambda: f"The {self.aspect()} and the {self.aspect()} were both {self.adjective(True)}.",
            ]
        elif polarity < 0:
            templates = [
                lambda: f"The {self.aspect_with('was', 'were')} {self.adjective(False)}.",
                lambda: f"It {self.pick(lexicon.MOVIE_NEGATIVE)}.",
                lambda: f"The {self.aspect()} felt {self.adjective(False)}.",
                lambda: f"Sadly the {self.aspect_with('was', 'were')} {self.adjective(False)}.",
            ]
        else:
            templates = [
                lambda: (
                    f"The {self.aspect_with('was', 'were')} {self.adjective(True)}, "
                    f"but the {self.aspect_with('was', 'were')} {self.adjective(False)}."
                ),
                lambda: f"The {self.aspect_with('was', 'were')} fine, nothing special.",
            ]
        return self.pick(templates)()

    def movie_opening(self):
        return self.pick(
            [
                f"I watched this {self.subject.category} with my "
                f"{self.pick(['family', 'friends', 'sister', 'partner'])} "
                f"last {self.pick(['weekend', 'night', 'week'])}.",
                "We saw it at the theater on a rainy evening.",
                "I finally watched it after hearing about it for months.",
            ]
        )

    # Closings ----------------------------------------------------------------------------------------------------

    def closing(self, stars):
        if self.subject.kind == "movie":
            good = ["I would watch it again.", "I would recommend it to anyone.", "Five stars."]
            bad = ["I would not watch it again.", "Save your money.", "One star."]
        else:
            good = ["I would recommend it to anyone.", "Worth every penny.", "Five stars."]
            bad = ["I would not recommend it.", "Save your money.", "One star."]
        if stars >= 4:
            return self.pick(good)
        if stars <= 2:
            return self.pick(bad)
        return "It does the job." if self.subject.kind == "product" else "It was an okay way to spend an evening."


_POSITIVE_PROBABILITY = {1: 0.1, 2: 0.3, 3: 0.5, 4: 0.75, 5: 0.92}


def write_review(rng, subject, stars=None):
    """One review of `subject` (a random star rating when None)."""
    stars = stars or rng.randint(1, 5)
    writer = _Writer(rng, subject)
    sentences = []
    if rng.random() < 0.5:
        sentences.append(writer.product_opening() if subject.kind == "product" else writer.movie_opening())
    for _ in range(rng.randint(1, 3)):
        if stars == 3 and rng.random() < 0.3:
            polarity = 0
        else:
            polarity = 1 if rng.random() < _POSITIVE_PROBABILITY[stars] else -1
        sentences.append(
            writer.product_sentence(polarity) if subject.kind == "product" else writer.movie_sentence(polarity)
        )
    if rng.random() < 0.6:
        sentences.append(writer.closing(stars))
    body = " ".join(sentences)
    prompt = subject.header
    if rng.random() < 0.3:
        words = body.split(" ")
        cut = rng.randint(2, min(4, len(words) - 1))
        prompt = f"{prompt} {' '.join(words[:cut])}"
        completion = " " + " ".join(words[cut:])
    else:
        completion = " " + body
    return Review(subject, stars, prompt, completion)


def generate_reviews(count, seed=0, held_out=False):
    """`count` reviews, deterministic in `seed`. `held_out` draws subjects kept out of training."""
    rng = random.Random(seed)
    return [write_review(rng, _pick_subject(rng, held_out)) for _ in range(count)]


@functools.lru_cache(maxsize=4)
def _subjects_by_kind(held_out, kind):
    subjects = held_out_subjects() if held_out else train_subjects()
    return tuple(subject for subject in subjects if subject.kind == kind)


def _pick_subject(rng, held_out):
    """Products and movies in equal measure (there are far more movie titles than branded products)."""
    return rng.choice(_subjects_by_kind(held_out, rng.choice(["product", "movie"])))


def demonstrations(count=20_000, seed=0, held_out=False):
    """`Demonstration(prompt, completion)` records (training subjects, or held-out ones)."""
    return [
        records.Demonstration(review.prompt, review.completion)
        for review in generate_reviews(count, seed, held_out=held_out)
    ]


def evaluation_prompts(count=1000, seed=12345):
    """Held-out prompts (subjects never seen in training), distinct, deterministic in `seed`."""
    rng = random.Random(seed)
    prompts, seen = [], set()
    attempts = 0
    while len(prompts) < count and attempts < 100 * count:
        attempts += 1
        prompt = write_review(rng, _pick_subject(rng, held_out=True)).prompt
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(records.Prompt(prompt))
    return prompts


def training_prompts(count=5000, seed=1):
    """Prompts from the training distribution (for RL and for sampling pairs to label)."""
    return [records.Prompt(review.prompt) for review in generate_reviews(count, seed)]
