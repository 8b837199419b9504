"""The words of the `reviews` task: subjects, aspects, and a sentiment lexicon written for this project.

The corpus generator writes with these words and the gold scorer judges with them, so both agree on what is
positive, what is on topic and what is English.
"""

# Product categories: the noun phrase, its aspects, and phrases that only make sense for it.
PRODUCTS = {
    "wireless charger": {
        "aspects": ["charging speed", "charging pad", "cable", "stand", "indicator light"],
        "positive": ["charges my phone overnight without getting warm", "holds the phone at a good angle"],
        "negative": ["gets hot after an hour", "stops charging if the phone moves a little"],
    },
    "vacuum cleaner": {
        "aspects": ["suction", "battery", "filter", "brush", "dust bin"],
        "positive": ["picks up pet hair from the carpet", "gets into the corners easily"],
        "negative": ["leaves crumbs behind on the rug", "clogs after one room"],
    },
    "headphones": {
        "aspects": ["sound", "bass", "ear cushions", "battery", "noise cancelling"],
        "positive": ["block out the noise on the train", "stay comfortable for a whole afternoon"],
        "negative": ["hurt my ears after an hour", "crackle when the volume goes up"],
    },
    "blender": {
        "aspects": ["motor", "blades", "jar", "lid", "speed settings"],
        "positive": ["crushes ice in seconds", "makes smooth soup and smoothies"],
        "negative": ["leaves chunks of fruit in every smoothie", "leaks around the lid"],
    },
    "coffee maker": {
        "aspects": ["brew time", "carafe", "water tank", "timer", "filter basket"],
        "positive": ["has hot coffee ready when I wake up", "keeps the coffee warm for hours"],
        "negative": ["makes coffee that tastes burnt", "drips water all over the counter"],
    },
    "desk lamp": {
        "aspects": ["brightness", "arm", "base", "switch", "color temperature"],
        "positive": ["lights up the whole desk without glare", "stays exactly where I point it"],
        "negative": ["flickers at the lowest setting", "droops slowly over the evening"],
    },
    "running shoes": {
        "aspects": ["cushioning", "grip", "laces", "sole", "fit"],
        "positive": ["feel light on long runs", "grip well on wet roads"],
        "negative": ["gave me blisters in the first week", "lost their cushioning within a month"],
    },
    "backpack": {
        "aspects": ["straps", "zippers", "pockets", "laptop sleeve", "fabric"],
        "positive": ["carries my laptop and lunch with room to spare", "stays dry in the rain"],
        "negative": ["tore at the seam after a month", "digs into my shoulders"],
    },
    "kettle": {
        "aspects": ["boil time", "handle", "spout", "lid", "auto shutoff"],
        "positive": ["boils water in two minutes", "pours without spilling"],
        "negative": ["makes the water taste of plastic", "rattles loudly while it heats"],
    },
    "keyboard": {
        "aspects": ["keys", "backlight", "wrist rest", "layout", "connection"],
        "positive": ["makes typing all day a pleasure", "pairs with my laptop instantly"],
        "negative": ["misses letters when I type fast", "drops the connection every few minutes"],
    },
    "air fryer": {
        "aspects": ["basket", "temperature control", "timer", "capacity", "nonstick coating"],
        "positive": ["makes crispy fries without much oil", "cooks chicken evenly every time"],
        "negative": ["leaves the middle of the food raw", "fills the kitchen with smoke"],
    },
    "tent": {
        "aspects": ["poles", "rain fly", "floor", "zippers", "stakes"],
        "positive": ["went up in ten minutes at the campsite", "kept us dry through a stormy night"],
        "negative": ["leaked on the first rainy night", "bent a pole in light wind"],
    },
}

BRANDS = [
    "Apex",
    "Nimbus",
    "Vertex",
    "Orbit",
    "Lumen",
    "Harbor",
    "Summit",
    "Pioneer",
    "Cascade",
    "Ember",
    "Falcon",
    "Granite",
    "Horizon",
    "Juniper",
    "Keystone",
    "Meridian",
    "Northwind",
    "Oakridge",
    "Pinnacle",
    "Quartz",
    "Redwood",
    "Sterling",
    "Tidewater",
    "Vanguard",
    "Willow",
    "Zenith",
    "Atlas",
    "Beacon",
    "Cobalt",
    "Drift",
]

GENRES = [
    "thriller",
    "comedy",
    "drama",
    "documentary",
    "animated film",
    "horror film",
    "romance",
    "science fiction film",
]

MOVIE_ASPECTS = ["plot", "acting", "soundtrack", "pacing", "ending", "dialogue", "cinematography", "characters"]
MOVIE_POSITIVE = [
    "kept me on the edge of my seat",
    "made the whole theater laugh",
    "stayed with me for days",
    "had the audience clapping at the end",
]
MOVIE_NEGATIVE = [
    "had me checking my watch",
    "lost me halfway through",
    "felt twice as long as it was",
    "put half the audience to sleep",
]

TITLE_FIRST = [
    "Midnight",
    "Silent",
    "Broken",
    "Golden",
    "Hidden",
    "Last",
    "Crimson",
    "Distant",
    "Frozen",
    "Wild",
    "Quiet",
    "Burning",
    "Secret",
    "Lonely",
    "Electric",
    "Paper",
    "Velvet",
    "Iron",
    "Glass",
    "Northern",
]
TITLE_SECOND = [
    "Harbor",
    "Orchard",
    "Signal",
    "Summer",
    "Kingdom",
    "River",
    "Garden",
    "Station",
    "Letters",
    "Shadows",
    "Horizon",
    "Frontier",
    "Promise",
    "Lighthouse",
    "Carnival",
    "Echoes",
    "Island",
    "Winter",
    "Parade",
    "Canyon",
]

# Sentiment lexicon: word -> weight. Adjectives are also listed in ADJECTIVES for the piling check.
POSITIVE_ADJECTIVES = {
    "great": 1.0,
    "excellent": 1.5,
    "sturdy": 1.0,
    "reliable": 1.0,
    "comfortable": 1.0,
    "solid": 0.8,
    "impressive": 1.2,
    "fantastic": 1.5,
    "wonderful": 1.5,
    "smooth": 0.8,
    "quick": 0.7,
    "fast": 0.7,
    "gripping": 1.2,
    "hilarious": 1.2,
    "beautiful": 1.2,
    "clever": 1.0,
    "charming": 1.0,
    "moving": 1.0,
    "brilliant": 1.5,
    "perfect": 1.5,
    "pleasant": 0.8,
    "generous": 0.8,
    "handy": 0.8,
    "sharp": 0.7,
    "crisp": 0.8,
    "rich": 0.7,
    "lovely": 1.2,
    "superb": 1.5,
    "good": 0.8,
    "nice": 0.7,
    "decent": 0.4,
    "easy": 0.7,
    "convenient": 0.8,
    "memorable": 1.0,
    "stunning": 1.4,
    "touching": 1.0,
}
NEGATIVE_ADJECTIVES = {
    "flimsy": 1.2,
    "noisy": 0.8,
    "disappointing": 1.2,
    "boring": 1.2,
    "slow": 0.8,
    "cheap": 0.8,
    "dull": 1.0,
    "predictable": 0.8,
    "awful": 1.5,
    "terrible": 1.5,
    "poor": 1.0,
    "weak": 0.8,
    "clumsy": 0.8,
    "confusing": 0.8,
    "uncomfortable": 1.0,
    "fragile": 1.0,
    "loose": 0.6,
    "sloppy": 1.0,
    "forgettable": 1.0,
    "tedious": 1.2,
    "bland": 0.9,
    "annoying": 1.0,
    "useless": 1.5,
    "bad": 1.0,
    "mediocre": 0.8,
    "wobbly": 0.8,
    "stiff": 0.6,
    "overpriced": 1.0,
    "frustrating": 1.2,
    "messy": 0.8,
}
POSITIVE_WORDS = {
    "love": 1.2,
    "loved": 1.2,
    "recommend": 1.2,
    "enjoyed": 1.0,
    "works": 0.5,
    "worth": 0.8,
    "happy": 1.0,
    "pleased": 1.0,
    "favorite": 1.0,
    "delighted": 1.2,
    "glad": 0.8,
    "impressed": 1.0,
    "praise": 0.8,
}
NEGATIVE_WORDS = {
    "hate": 1.2,
    "hated": 1.2,
    "regret": 1.2,
    "returned": 1.0,
    "broke": 1.2,
    "broken": 1.2,
    "waste": 1.2,
    "refund": 1.0,
    "disappointed": 1.2,
    "avoid": 1.0,
    "failed": 1.0,
    "stopped": 0.6,
    "annoyed": 1.0,
    "complaint": 0.6,
    "sadly": 0.6,
    "unfortunately": 0.6,
}
NEGATORS = {"not", "never", "no", "hardly", "nothing", "without"}
INTENSIFIERS = {"very": 1.4, "really": 1.3, "truly": 1.3, "absolutely": 1.5, "quite": 1.1, "so": 1.2, "extremely": 1.5}

# Which adjectives the generator uses for which kind of subject (the scorer accepts them all).
PRODUCT_ADJECTIVES = {
    True: [
        "great",
        "excellent",
        "sturdy",
        "reliable",
        "comfortable",
        "solid",
        "impressive",
        "smooth",
        "quick",
        "fast",
        "handy",
        "convenient",
        "easy",
        "pleasant",
        "good",
        "nice",
        "decent",
        "perfect",
        "fantastic",
    ],
    False: [
        "flimsy",
        "noisy",
        "disappointing",
        "slow",
        "cheap",
        "poor",
        "weak",
        "clumsy",
        "uncomfortable",
        "fragile",
        "loose",
        "wobbly",
        "stiff",
        "overpriced",
        "frustrating",
        "messy",
        "useless",
        "bad",
        "terrible",
        "awful",
        "mediocre",
        "annoying",
    ],
}
MOVIE_ADJECTIVES = {
    True: [
        "great",
        "excellent",
        "gripping",
        "hilarious",
        "beautiful",
        "clever",
        "charming",
        "moving",
        "brilliant",
        "memorable",
        "stunning",
        "touching",
        "superb",
        "lovely",
        "good",
        "perfect",
        "fantastic",
        "wonderful",
    ],
    False: [
        "disappointing",
        "boring",
        "dull",
        "predictable",
        "awful",
        "terrible",
        "poor",
        "weak",
        "clumsy",
        "confusing",
        "forgettable",
        "tedious",
        "bland",
        "annoying",
        "bad",
        "mediocre",
        "messy",
        "sloppy",
        "frustrating",
    ],
}

SENTIMENT = {**POSITIVE_ADJECTIVES, **POSITIVE_WORDS}
SENTIMENT.update({word: -weight for word, weight in {**NEGATIVE_ADJECTIVES, **NEGATIVE_WORDS}.items()})
ADJECTIVES = set(POSITIVE_ADJECTIVES) | set(NEGATIVE_ADJECTIVES)

# Words that are on topic for any subject: they never count as drifting.
GENERIC_TOPIC_WORDS = {"price", "quality", "design", "value", "size", "weight", "color", "box", "instructions"}

# Function words and glue the generator uses; with the lexicon and subject words they make the known vocabulary.
COMMON_WORDS = set(
    """a an the and but or so because after before when while if then than that this these those it its it's i me my
    we our us you your they them their he she is are was were be been being am do does did done have has had
    having will would could should can may might must to of in on at by for with from about into over under up down
    out off again once here there all any both each few more most other some such only own same too also just even
    still already yet as what which who whom how why where one two three four five ten first second last next
    time times day days week weeks month months year years hour hours minute minutes night evening morning
    afternoon weekend use used using bought buy got get gets getting make makes made take takes took give gives gave
    keep keeps kept come comes came go goes went look looks looked feel feels felt seem seems seemed watch watched
    watching saw see seen think thought expected expect say said tell told work worked working try tried
    thing things way lot little much many well better best worse worst enough every whole half part rest
    money penny stars star friends family kids wife husband partner sister brother parents home kitchen office
    desk car trip train campsite theater movie film story scene scenes review product item purchase order
    again ever almost barely exactly nearly definitely probably maybe overall honestly actually especially
    new old long short small big large high low hot cold warm dry wet full empty own same different
    recommend recommended anyone someone everyone nobody people person buyer viewers fans audience
    five four three two one price last first star stars out back around through during without within
    hold holds held runs ran run running fits fit fitting looks works broke need needs needed want wants wanted
    """.split()
)
