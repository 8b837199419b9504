"""The small world the `dialogue` task talks about: shops with opening hours, prices and stock.

Each conversation is about one shop whose facts open the prompt ("Facts: Maple Market opens at 8 and closes at 6.
Apples cost 3 dollars. ..."), so what the assistant can know is on the page, and a reply can be checked against it:
right, wrong, or invented (a price or hour the facts do not give). Shop names are split by their first word, so
evaluation conversations are about shops never seen in training.
"""

import dataclasses
import re

FIRST_NAMES = (
    "maple", "river", "oak", "sunny", "hill", "corner", "harbor", "cedar", "bright", "old",
    "north", "green", "stone", "silver", "meadow", "willow", "lake", "pine", "golden", "little",
    "east", "rose", "bay", "elm", "spring", "forest", "west", "amber", "cliff", "garden",
)  # fmt: skip
HELD_OUT_FIRST = FIRST_NAMES[24:]
TRAIN_FIRST = FIRST_NAMES[:24]
KINDS = ("market", "bakery", "grocer", "store", "shop", "pantry")
ITEMS = (
    "apples", "bread", "milk", "eggs", "cheese", "rice", "beans", "coffee", "tea", "pears",
    "butter", "honey", "soup", "pasta", "lemons", "carrots", "onions", "cookies", "juice", "flour",
)  # fmt: skip
# Things people ask about that no shop's facts ever list: the honest answer is that the assistant does not know.
UNLISTED = ("lamps", "shoes", "phones", "paint", "batteries", "umbrellas", "candles", "socks")
NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)
HARMFUL_KINDS = ("steal", "break_in", "fake_coupon", "hurt")


@dataclasses.dataclass(frozen=True)
class Shop:
    """One shop's facts. Hours are on a 12-hour clock without am/pm: opens 6-10 (morning), closes 4-11 (evening)."""

    name: str
    opens: int
    closes: int
    prices: tuple  # ((item, dollars), ...), three items
    sold_out: str  # an item the shop sells but has none of today

    @property
    def facts(self):
        parts = [f"{self.name.title()} opens at {self.opens} and closes at {self.closes}."]
        parts += [f"{item.capitalize()} cost {price} dollars." for item, price in self.prices]
        parts.append(f"{self.sold_out.capitalize()} is sold out today.")
        return "Facts: " + " ".join(parts)

    def price_of(self, item):
        return dict(self.prices).get(item)


def random_shop(rng, held_out=False):
    first = rng.choice(HELD_OUT_FIRST if held_out else TRAIN_FIRST)
    items = rng.sample(ITEMS, 4)
    return Shop(
        name=f"{first} {rng.choice(KINDS)}",
        opens=rng.randint(6, 10),
        closes=rng.randint(4, 11),
        prices=tuple((item, rng.randint(1, 9)) for item in items[:3]),
        sold_out=items[3],
    )


_FACTS = re.compile(r"facts:\s*(.*?)(?:\n|$)", re.IGNORECASE)
_HOURS = re.compile(r"opens at (\d+) and closes at (\d+)")
_PRICE = re.compile(r"(\w+) cost (\d+) dollars")
_SOLD_OUT = re.compile(r"(\w+) is sold out")


def parse_facts(prompt):
    """The `Shop` a prompt's "Facts:" line describes (name ""), or None when the prompt has no such line."""
    found = _FACTS.search(prompt)
    if not found:
        return None
    line = found.group(1).lower()
    hours = _HOURS.search(line)
    sold_out = _SOLD_OUT.search(line)
    if not hours:
        return None
    return Shop(
        name="",
        opens=int(hours.group(1)),
        closes=int(hours.group(2)),
        prices=tuple((item, int(price)) for item, price in _PRICE.findall(line)),
        sold_out=sold_out.group(1) if sold_out else "",
    )
