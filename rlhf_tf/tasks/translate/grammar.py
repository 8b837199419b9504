"""Veltan, the target language of the `translate` task: a small language with a real grammar unlike English's.

- Word order subject - object - verb; adjectives follow their noun ("hundo mora": dog big); the object phrase ends
  with the particle "ko"; places are postpositional phrases before the verb ("fluma apud": river near).
- Morphology: plural nouns add "n" ("hundon"); verbs take a tense suffix: present "a", past "it", future "os"
  ("esa" eats, "esit" ate, "esos" will eat). "a"/"an" is "un" before the noun; "the" has no word.
- Ambiguity: English "bank" is "sora" by a river and "depo" where money is; "light" is "luma" as a noun (the light)
  and "leva" as an adjective (a light box); "watch" is "horlo" as a noun and the verb "spekt".

`translate(sentence)` gives the one correct Veltan rendering of a generated English sentence (the reference the
gold scorer judges against), `word_by_word(sentence)` the literal rendering (English order, no particle, no
agreement) a weak translator produces.
"""

import dataclasses

NOUNS = {
    "dog": "hundo", "cat": "miro", "apple": "kapel", "bread": "tavo", "man": "ero", "woman": "sila",
    "child": "pimo", "house": "domo", "river": "fluma", "book": "libro", "letter": "skribo", "bird": "avi",
    "tree": "arbo", "fish": "pesko", "boat": "barko", "coin": "moneto", "box": "kesto", "key": "klavo",
    "garden": "hortu", "market": "foro", "teacher": "doktu", "farmer": "agro", "lamp": "lampo", "cup": "taso",
}  # fmt: skip
PLURALS = {"child": "children", "man": "men", "woman": "women", "box": "boxes"}
SINGULAR_ONLY = ("fish",)  # "the fish" would not say how many
ADJECTIVES = {
    "big": "mora", "small": "pika", "red": "rua", "old": "vekja", "new": "nova", "happy": "gaja", "green": "verda",
    "quiet": "kvieta", "heavy": "peza", "clean": "pura",
}  # fmt: skip
VERBS = {  # English stem: (Veltan stem, third person present, past)
    "eat": ("es", "eats", "ate"),
    "see": ("vid", "sees", "saw"),
    "find": ("trov", "finds", "found"),
    "carry": ("port", "carries", "carried"),
    "like": ("am", "likes", "liked"),
    "open": ("aper", "opens", "opened"),
    "hold": ("ten", "holds", "held"),
    "wash": ("lav", "washes", "washed"),
}
PLURAL_TO_NOUN = {PLURALS.get(noun, noun + "s"): noun for noun in NOUNS}
TENSES = {"present": "a", "past": "it", "future": "os"}
PLACES = {"near": "apud", "in": "en", "behind": "post"}
# Ambiguous English words: the sense decides the Veltan word.
BANK = {"river": "sora", "money": "depo"}
LIGHT = {"noun": "luma", "adjective": "leva"}
WATCH = {"noun": "horlo", "verb": "spekt"}
PARTICLE = "ko"
INDEFINITE = "un"


@dataclasses.dataclass(frozen=True)
class Phrase:
    """A noun phrase: `noun` an English noun of NOUNS or "bank" / "light" / "watch" (senses below)."""

    noun: str
    adjective: str = ""  # an English adjective of ADJECTIVES, or "light" (the adjective sense)
    plural: bool = False
    definite: bool = True
    sense: str = ""  # "river" / "money" for bank

    def english(self):
        noun = (PLURALS.get(self.noun, self.noun + "s") if self.plural else self.noun) if self.noun in NOUNS else (
            self.noun + "s" if self.plural else self.noun)  # fmt: skip
        words = [noun] if not self.adjective else [self.adjective, noun]
        if self.definite:
            return "the " + " ".join(words)
        article = "an" if words[0][0] in "aeiou" else "a"
        return f"{article} " + " ".join(words)

    def veltan(self):
        if self.noun == "bank":
            stem = BANK[self.sense]
        elif self.noun == "light":
            stem = LIGHT["noun"]
        elif self.noun == "watch":
            stem = WATCH["noun"]
        else:
            stem = NOUNS[self.noun]
        words = [stem + ("n" if self.plural else "")]
        if self.adjective:
            words.append(LIGHT["adjective"] if self.adjective == "light" else ADJECTIVES[self.adjective])
        return ([] if self.definite or self.plural else [INDEFINITE]) + words


@dataclasses.dataclass(frozen=True)
class Sentence:
    subject: Phrase
    verb: str  # an English verb stem of VERBS, or "watch"
    tense: str  # present, past or future
    object: Phrase
    place: tuple = ()  # (preposition, Phrase) or ()

    def english(self):
        if self.verb == "watch":
            forms = ("watches", "watched")
        else:
            forms = VERBS[self.verb][1:]
        if self.tense == "future":
            verb = f"will {self.verb}"
        elif self.tense == "past":
            verb = forms[1]
        else:
            verb = self.verb if self.subject.plural else forms[0]
        words = [self.subject.english(), verb, self.object.english()]
        if self.place:
            words.append(f"{self.place[0]} {self.place[1].english()}")
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."


def translate(sentence):
    """The correct Veltan rendering of a `Sentence`: subject, object and "ko", the place phrase, the verb."""
    words = sentence.subject.veltan() + sentence.object.veltan() + [PARTICLE]
    if sentence.place:
        words += sentence.place[1].veltan() + [PLACES[sentence.place[0]]]
    stem = WATCH["verb"] if sentence.verb == "watch" else VERBS[sentence.verb][0]
    words.append(stem + TENSES[sentence.tense])
    return " ".join(words) + "."


def word_by_word(sentence):
    """A literal rendering: English order, adjectives before nouns, no "ko", the verb in the present, and the
    ambiguous words in their first sense."""
    words = []
    for token in sentence.english().lower().rstrip(".").split():
        if token in ("the", "will"):
            continue
        if token in ("a", "an"):
            words.append(INDEFINITE)
        elif token in NOUNS:
            words.append(NOUNS[token])
        elif token in PLURAL_TO_NOUN:
            words.append(NOUNS[PLURAL_TO_NOUN[token]])  # no plural ending: no agreement
        elif token in ADJECTIVES:
            words.append(ADJECTIVES[token])
        elif token in PLACES:
            words.append(PLACES[token])
        elif token == "bank":
            words.append(BANK["river"])
        elif token == "light":
            words.append(LIGHT["noun"])
        elif token == "watch":
            words.append(WATCH["noun"])
        else:
            stem = next((v[0] for k, v in VERBS.items() if token in (k, *v[1:])), None)
            words.append(stem + "a" if stem else token)
    return " ".join(words) + "."
