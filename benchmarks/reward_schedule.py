"""Reward training's default schedule on data it was not tuned on: does stopping on the held-out loss land within a
point of the best fixed number of passes?

    python benchmarks/reward_schedule.py [--seeds=0,1 --fixed_epochs=1,2,4,6,8 --train_pairs=3000]

The data (built here, `instruction_pairs`): HH-layout transcripts in which the better answer depends on what the
person asked. Each prompt states a fact about a made-up person or thing, asks about it and adds an instruction
("Answer in one word.", "Reply in all caps.", "Get straight to the point.", ...). The chosen answer states the
fact the way the instruction asks; the rejected one states it in a way the instruction rules out (one word when a
sentence was asked for, a sentence or lower case when capitals were, filler when the person asked for none) or, in
one pair in four, in the right way with a wrong fact. Names in the test
and validation sets never occur in training, so a model has to read the instruction and the fact, not remember
names.

For each seed: `rlhf-tf train-reward --train=train.jsonl --eval=valid.jsonl` with default flags (a fresh byte-level
backbone; training stops when the held-out loss stops improving and keeps the best evaluation's weights), and
the same with `--epochs=E --patience=0` for each fixed schedule; every export is then scored by `rlhf-tf
evaluate-reward` on a separate test set that no run saw (the validation set chose the default's stopping point, so
its accuracy there would flatter it). Prints test accuracy per run and the default's distance from the best fixed
schedule of its seed.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time

COLOURS = ("red", "blue", "green", "yellow", "black", "white", "purple", "orange", "grey", "brown")
PLACES = ("Oslo", "Lima", "Rome", "Cairo", "Perth", "Quito", "Riga", "Kyiv", "Doha", "Bern", "Nice", "Pisa")
THINGS = ("cup", "hat", "bike", "coat", "door", "kite", "lamp", "boat", "desk", "bag")
PETS = ("cats", "dogs", "fish", "birds", "goats", "hens")
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vo", "ni", "pel", "da", "ri", "mo", "zu", "fen", "ta", "bi")

INSTRUCTIONS = {
    "word": ("Answer in one word.", "One word only.", "Reply with a single word."),
    "sentence": ("Answer in a full sentence.", "Please use a complete sentence.", "Reply in a sentence."),
    "caps": ("Answer in capitals.", "Reply in all caps.", "Use capital letters only."),
    "lower": ("Answer in lower case.", "No capital letters, please.", "Reply in lowercase."),
    "plain": ("Get straight to the point.", "No filler, please.", "Skip the small talk."),
}
# The forms each instruction rules out (a padded or capitalised sentence is still a sentence; one word is to the
# point): the rejected answer of a pair that differs in form takes one of them.
WRONG_FORMS = {
    "word": ("sentence", "caps", "lower", "filler"),
    "sentence": ("word",),
    "caps": ("word", "sentence", "lower", "filler"),
    "lower": ("word", "sentence", "caps", "filler"),
    "plain": ("filler",),
}
FILLERS = ("Well, good question! ", "Let me think. ", "Sure, happy to help! ", "Hmm, okay. ")


def _names(rng, count, taken=()):
    names = set()
    while len(names) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        if name not in taken:
            names.add(name)
    return sorted(names)


def _fact(rng, name):
    """(statement, question, one-word answer, sentence answer, a wrong one-word answer, the wrong sentence)."""
    kind = rng.randrange(3)
    if kind == 0:
        thing = rng.choice(THINGS)
        colour, wrong = rng.sample(COLOURS, 2)
        sentence = lambda value: f"{name}'s {thing} is {value}."  # noqa: E731
        return sentence(colour), f"What colour is {name}'s {thing}?", colour, sentence(colour), wrong, sentence(wrong)
    if kind == 1:
        place, wrong = rng.sample(PLACES, 2)
        sentence = lambda value: f"{name} lives in {value}."  # noqa: E731
        return sentence(place), f"Where does {name} live?", place, sentence(place), wrong, sentence(wrong)
    pets = rng.choice(PETS)
    number, wrong = rng.sample(NUMBERS, 2)
    sentence = lambda value: f"{name} has {value} {pets}."  # noqa: E731
    return sentence(number), f"How many {pets} does {name} have?", number, sentence(number), wrong, sentence(wrong)


def _styled(style, word, sentence, rng):
    if style == "word":
        return word[0].upper() + word[1:] + "."
    if style == "caps":
        return sentence.upper()
    if style == "lower":
        return sentence.lower()
    if style == "filler":
        return rng.choice(FILLERS) + sentence
    return sentence  # "sentence" and "plain"


def instruction_pairs(count, names, rng):
    """`count` comparison records ({"chosen", "rejected"} HH transcripts) about `names`."""
    records = []
    for _ in range(count):
        name = rng.choice(names)
        statement, question, word, sentence, wrong_word, wrong_sentence = _fact(rng, name)
        style = rng.choice(tuple(INSTRUCTIONS))
        prompt = f"\n\nHuman: {statement} {question} {rng.choice(INSTRUCTIONS[style])}\n\nAssistant:"
        chosen = _styled(style, word, sentence, rng)
        if rng.random() < 0.25:  # the right form, the wrong fact
            rejected = _styled(style, wrong_word, wrong_sentence, rng)
        else:  # the right fact in a form the instruction rules out
            rejected = _styled(rng.choice(WRONG_FORMS[style]), word, sentence, rng)
        records.append({"chosen": f"{prompt} {chosen}", "rejected": f"{prompt} {rejected}"})
    return records


def write_data(directory, train_pairs, seed=1234):
    """train.jsonl, valid.jsonl and test.jsonl; validation and test names never occur in training."""
    rng = random.Random(seed)
    train_names = _names(rng, 400)
    held_names = _names(rng, 200, taken=set(train_names))
    sizes = {"train": (train_pairs, train_names), "valid": (500, held_names[:100]), "test": (1000, held_names[100:])}
    paths = {}
    for split, (count, names) in sizes.items():
        paths[split] = os.path.join(directory, f"{split}.jsonl")
        with open(paths[split], "w") as handle:
            for record in instruction_pairs(count, names, rng):
                handle.write(json.dumps(record) + "\n")
    return paths


def _command(*args):
    subprocess.run(
        [shutil.which("rlhf-tf") or "rlhf-tf", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def run_one(paths, output_dir, seed, extra):
    """Trains (or reuses a finished run), scores its export on the test set; returns the row."""
    started = time.perf_counter()
    _command(
        "train-reward",
        f"--train={paths['train']}",
        f"--eval={paths['valid']}",
        f"--seed={seed}",
        "--progress=false",
        f"--output_dir={output_dir}",
        *extra,
    )
    seconds = time.perf_counter() - started
    _command("evaluate-reward", f"--model={output_dir}", f"--data={paths['test']}", f"--output_dir={output_dir}/test")
    with open(os.path.join(output_dir, "metrics.json")) as handle:
        trained = json.load(handle)
    with open(os.path.join(output_dir, "test", "metrics.json")) as handle:
        tested = json.load(handle)
    return {
        "test_accuracy": tested["reward/accuracy"],
        "valid_accuracy": trained["reward/eval_accuracy"],
        "steps": trained["reward/steps"],
        "best_step": trained.get("reward/best_step"),
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--fixed_epochs", default="1,2,4,6,8")
    parser.add_argument("--train_pairs", type=int, default=3000)
    parser.add_argument("--workdir", default="")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="reward_schedule_")
    os.makedirs(workdir, exist_ok=True)
    paths = write_data(workdir, args.train_pairs)
    print(f"data: {args.train_pairs} training pairs, 500 validation, 1000 test (held-out names); workdir {workdir}")
    print("| seed | schedule | steps (best) | validation accuracy | test accuracy | seconds |")
    print("|---|---|---|---|---|---|")
    verdicts = []
    for seed in [int(seed) for seed in args.seeds.split(",")]:
        rows = {"default": run_one(paths, os.path.join(workdir, f"default_s{seed}"), seed, [])}
        for epochs in args.fixed_epochs.split(","):
            rows[f"{epochs} passes"] = run_one(
                paths, os.path.join(workdir, f"fixed{epochs}_s{seed}"), seed, [f"--epochs={epochs}", "--patience=0"]
            )
        for name, row in rows.items():
            best = f" ({row['best_step']})" if name == "default" else ""
            print(
                f"| {seed} | {name} | {row['steps']}{best} | {row['valid_accuracy']:.4f} | {row['test_accuracy']:.4f} "
                f"| {row['seconds']:.0f} |",
                flush=True,
            )
        fixed = {name: row["test_accuracy"] for name, row in rows.items() if name != "default"}
        best_name = max(fixed, key=fixed.get)
        gap = 100 * (fixed[best_name] - rows["default"]["test_accuracy"])
        verdicts.append(gap <= 1.0)
        print(
            f"seed {seed}: default {rows['default']['test_accuracy']:.4f} vs best fixed ({best_name}) "
            f"{fixed[best_name]:.4f}: {gap:+.1f} points behind",
            flush=True,
        )
    verdict = "PASS" if all(verdicts) else "FAIL"
    print(f"target: default within 1 point of the best fixed schedule on every seed -> {verdict}")


if __name__ == "__main__":
    main()
