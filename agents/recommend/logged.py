"""Recommendation feedback and logs as JSON Lines: what `rlhf-tf recommend` writes for every round of labels
(`labels/round-N.jsonl`) and reads from people's files (`--feedback_file`, `--off_policy_file`), with the line-exact
errors of every other feedback file (`rlhf_tf.data.reader`: file, line and field; `--skip_bad_records` copies bad
lines with their reasons to `rejected_records.jsonl`).

One JSON object per line; items are catalogue ids (0 to items - 1); the context is what the recommender saw:

    context:   {"time": "evening", "device": "phone", "recent_genres": ["drama", "comedy", "drama"]}
    slates:    {"context": ..., "first": [12, 40, 7, 3, 99], "second": [5, 61, 18, 140, 2], "preferred": "second"}
    ratings:   {"context": ..., "item": 12, "rating": 4}                               (an integer from 1 to 5)
    clicks:    {"context": ..., "slate": [12, 40, 7, 3, 99], "clicks": [0, 1, 0, 0, 0]}
    logs:      {"context": ..., "candidates": [20 ids], "action": 12, "propensity": 0.031, "click": 1, "rating": 4}

A log is one visit of the logging (behaviour) policy: the candidates it chose from, the item it showed on top, the
probability it gave that item (off-policy estimates divide by it, so it is required), and what the person did
(`click` and/or `rating`; at least one). An optional "id" is kept for the user's own reference.
"""

import json
import math

import numpy as np

from rlhf_tf import files
from rlhf_tf.data import reader
from rlhf_tf.data.formats import FieldError
from rlhf_tf.envs import recommend

KINDS = ("slates", "ratings", "clicks", "logs")
_KEYS = {"slates": "first", "ratings": "item", "clicks": "slate", "logs": "propensity"}


def kind_of(obj):
    """The kind of one JSON object, from its keys (None when no kind fits)."""
    if "first" in obj or "second" in obj:
        return "slates"
    if "propensity" in obj or "candidates" in obj:
        return "logs"
    if "clicks" in obj or "slate" in obj:
        return "clicks"
    if "rating" in obj or "item" in obj:
        return "ratings"
    return None


def context_json(visit):
    """The JSON context of a visit (user, time, device, history): what the recommender saw, never the user."""
    _, time, device, history = visit
    return {
        "time": recommend.TIMES[time],
        "device": recommend.DEVICES[device],
        "recent_genres": [recommend.GENRES[g] for g in history],
    }


def _choice(value, field, allowed):
    if value not in allowed:
        raise FieldError(field, f"must be one of {list(allowed)}, got {value!r}")
    return allowed.index(value)


def _context(obj):
    context = obj.get("context")
    if not isinstance(context, dict):
        raise FieldError("context", "is missing or not an object with time, device and recent_genres")
    for name in ("time", "device", "recent_genres"):
        if name not in context:
            raise FieldError(f"context.{name}", "is missing")
    time = _choice(context["time"], "context.time", recommend.TIMES)
    device = _choice(context["device"], "context.device", recommend.DEVICES)
    recent = context["recent_genres"]
    if not isinstance(recent, list) or len(recent) != recommend.HISTORY:
        raise FieldError("context.recent_genres", f"must list the genres of the last {recommend.HISTORY} items")
    history = tuple(_choice(g, f"context.recent_genres[{i}]", recommend.GENRES) for i, g in enumerate(recent))
    return (-1, time, device, history)  # the user is never known to a learner


def _item(value, field, world):
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, f"must be an item id (an integer), got {value!r}")
    if not 0 <= value < world.num_items:
        raise FieldError(
            field, f"is item {value}, not in the catalogue of {world.num_items} items (0 to {world.num_items - 1})"
        )
    return value


def _items(obj, field, world, length):
    if field not in obj:
        raise FieldError(field, "is missing")
    value = obj[field]
    if not isinstance(value, list):
        raise FieldError(field, f"must be a list of item ids, got {type(value).__name__}")
    if len(value) != length:
        raise FieldError(field, f"has {len(value)} items; this run's lists have {length}")
    ids = [_item(v, f"{field}[{i}]", world) for i, v in enumerate(value)]
    if len(set(ids)) != len(ids):
        raise FieldError(field, "repeats an item")
    return np.asarray(ids, np.int64)


def _number(obj, field):
    value = obj.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(field, f"must be a finite number, got {value!r}")
    return float(value)


def _rating(obj, field):
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (1, 2, 3, 4, 5):
        raise FieldError(field, f"must be an integer rating from 1 to 5, got {value!r}")
    return int(value)


def parser(kind, world, slate_size, num_candidates):
    """A `reader.iter_jsonl` parser of one kind's records (module docstring) into dicts of arrays."""

    def parse(obj):
        if not isinstance(obj, dict):
            raise FieldError("(record)", f"must be a JSON object, got {type(obj).__name__}")
        found = kind_of(obj)
        if found is None:
            raise FieldError("(record)", f"has none of the fields of a {kind} record ({_KEYS[kind]}, ...)")
        if found != kind:
            raise FieldError("(record)", f"is a {found} record in a file of {kind}")
        record = {"visit": _context(obj)}
        if kind == "slates":
            record["first"] = _items(obj, "first", world, slate_size)
            record["second"] = _items(obj, "second", world, slate_size)
            record["preferred"] = _choice(obj.get("preferred"), "preferred", ("first", "second"))
        elif kind == "ratings":
            record["item"] = _item(obj.get("item"), "item", world)
            if "rating" not in obj:
                raise FieldError("rating", "is missing")
            record["rating"] = _rating(obj, "rating")
        elif kind == "clicks":
            record["slate"] = _items(obj, "slate", world, slate_size)
            clicks = obj.get("clicks")
            if not isinstance(clicks, list) or len(clicks) != slate_size or any(c not in (0, 1) for c in clicks):
                raise FieldError("clicks", f"must be {slate_size} clicks of 0 or 1 (one per position), got {clicks!r}")
            record["clicks"] = np.asarray(clicks, np.float32)
        else:
            record["candidates"] = _items(obj, "candidates", world, num_candidates)
            action = _item(obj.get("action"), "action", world)
            if action not in record["candidates"]:
                raise FieldError("action", f"is item {action}, which is not among the visit's candidates")
            record["action"] = int(np.flatnonzero(record["candidates"] == action)[0])
            if "propensity" not in obj:
                raise FieldError(
                    "propensity",
                    "is missing: off-policy estimates need the probability the logging policy gave the shown item",
                )
            propensity = _number(obj, "propensity")
            if not 0.0 < propensity <= 1.0:
                raise FieldError("propensity", f"must be a probability in (0, 1], got {propensity}")
            record["propensity"] = propensity
            if "click" not in obj and "rating" not in obj:
                raise FieldError("click", "is missing: a log needs what the person did (click and/or rating)")
            if "click" in obj:
                if obj["click"] not in (0, 1) or isinstance(obj["click"], float) and not obj["click"].is_integer():
                    raise FieldError("click", f"must be 0 or 1, got {obj['click']!r}")
                record["click"] = int(obj["click"])
            if "rating" in obj:
                record["rating"] = _rating(obj, "rating")
        return record

    return parse


def read(path, kind, world, slate_size, num_candidates=20, rejected=None):
    """The records of one file of `kind` and its `reader.ReadReport`; bad lines raise `reader.DataError` (file, line,
    field) unless `rejected` (a `reader.RejectedRecords`) is given, which receives them."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: {kind!r}")
    report = reader.ReadReport(str(path))
    records = list(
        reader.iter_jsonl(
            path,
            format=kind,
            on_error="skip" if rejected is not None else "raise",
            rejected=rejected,
            report=report,
            parser=parser(kind, world, slate_size, num_candidates),
        )
    )
    if not records:
        raise reader.DataError(
            [reader.RecordError(str(path), 0, "(file)", f"has no good {kind} record")], hint=rejected is None
        )
    return records, report


def to_json(record):
    """A parsed record (or one the simulator made) as its JSON object."""
    obj = {"context": context_json(record["visit"])}
    for name, value in record.items():
        if name == "visit":
            continue
        if name == "preferred":
            obj[name] = ("first", "second")[int(value)]
        elif name == "action":
            obj[name] = int(record["candidates"][value])
        elif isinstance(value, np.ndarray):
            obj[name] = [int(v) for v in value]
        elif isinstance(value, (np.floating, float)):
            obj[name] = float(value)
        else:
            obj[name] = int(value)
    return obj


def write(path, records):
    """Writes records as JSON Lines, atomically."""
    files.atomic_write_text(path, "".join(json.dumps(to_json(r)) + "\n" for r in records))


def examples(world, kind, records):
    """Training examples (`feedback` module docstring) of slates, ratings or clicks records."""
    visits = [r["visit"] for r in records]

    def arms(name):
        return recommend.Visits(visits, np.stack([r[name] for r in records])).observations(world)

    if kind == "slates":
        first = arms("first")
        return {
            "global": first["global"],
            "first": first["per_arm"],
            "second": arms("second")["per_arm"],
            "preferred": np.asarray([r["preferred"] for r in records], np.int32),
        }
    if kind == "ratings":
        observed = recommend.Visits(visits, np.asarray([[r["item"]] for r in records])).observations(world)
        return {
            "global": observed["global"],
            "items": observed["per_arm"],
            "rating": np.asarray([r["rating"] for r in records], np.float32),
        }
    shown = arms("slate")
    return {"global": shown["global"], "slate": shown["per_arm"], "clicks": np.stack([r["clicks"] for r in records])}
