"""What the feedback store holds: items to label, the labels given, the valid choices, and the encoding of the
arrays an item carries for people to see (a control segment's observations).

Choices by item kind:
- comparison / segment_comparison / slate_comparison: {"preferred": 0 or 1}, {"tie": true} or {"skip": true};
- ranking: {"ranking": [indices, best first]} or {"skip": true};
- rating: {"score": number} or {"skip": true}.
"""

import dataclasses
import io
import math

import numpy as np

from rlhf_tf.errors import UserInputError

ITEM_KINDS = ("comparison", "ranking", "rating", "segment_comparison", "slate_comparison")
PAIR_KINDS = ("comparison", "segment_comparison", "slate_comparison")


class ItemAlreadyLabeled(Exception):
    """The item has all the labels it wants (another labeler answered first)."""


class AlreadyAnswered(Exception):
    """This labeler has already answered this item."""


@dataclasses.dataclass(frozen=True)
class Item:
    """Something to label.

    Attributes:
      kind: "comparison", "ranking", "rating", "segment_comparison" or "slate_comparison".
      candidates: the responses (2 for a comparison, K >= 2 for a ranking, 1 for a rating), two segment ids, or two
        recommendation lists (one line per item, in the order shown).
      prompt: the context shown above the candidates.
      source: who produced the item (a run directory, a policy name).
      metadata: anything the producer wants back with the labels (JSON-serialisable), e.g. disagreement scores.
      priority: higher is asked first (e.g. ensemble disagreement).
      labels_wanted: how many labelers should answer it (more than 1 measures agreement between people).
      id: set by the store.
    """

    kind: str
    candidates: tuple
    prompt: str = ""
    source: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)
    priority: float = 0.0
    labels_wanted: int = 1
    id: int = 0
    # Bytes per candidate that a person needs to see it (a segment's observations, see `encode_arrays`), stored
    # beside the item; `FeedbackStore.attachment` reads them back. Not read back with the item itself.
    attachments: tuple = dataclasses.field(default=(), compare=False, repr=False)

    def __post_init__(self):
        if self.kind not in ITEM_KINDS:
            raise UserInputError(f"`kind` must be one of {list(ITEM_KINDS)}. Received: kind={self.kind!r}")
        wanted = {"rating": 1, **{kind: 2 for kind in PAIR_KINDS}}.get(self.kind)
        count = len(self.candidates)
        if (wanted is not None and count != wanted) or (self.kind == "ranking" and count < 2):
            raise UserInputError(
                f"A {self.kind} item needs {wanted or 'at least 2'} candidates. Received: {count} candidates"
            )
        if any(not isinstance(candidate, str) for candidate in self.candidates):
            raise UserInputError("Candidates must be strings (responses or segment ids).")
        if self.attachments and len(self.attachments) != count:
            raise UserInputError(
                f"An item has one attachment per candidate or none. Received: {len(self.attachments)} attachments "
                f"for {count} candidates"
            )
        if self.labels_wanted < 1:
            raise UserInputError(f"`labels_wanted` must be >= 1. Received: labels_wanted={self.labels_wanted}")


@dataclasses.dataclass(frozen=True)
class Label:
    """One answer to one item."""

    id: int
    item_id: int
    labeler: str
    choice: dict
    comment: str
    seconds: float
    created_at: float


def validate_choice(kind, choice, candidates_count):
    """Raises UserInputError unless `choice` is a valid answer for an item of `kind`."""
    if not isinstance(choice, dict) or len(choice) != 1:
        raise UserInputError(f"A choice is a one-key object such as {{'preferred': 0}}. Received: {choice!r}")
    ((key, value),) = choice.items()
    if key == "skip" and value is True:
        return
    if kind in PAIR_KINDS:
        if (key == "preferred" and value in (0, 1) and not isinstance(value, bool)) or (key == "tie" and value is True):
            return
    elif kind == "ranking":
        if key == "ranking" and isinstance(value, list) and sorted(value) == list(range(candidates_count)):
            return
    elif kind == "rating":
        if key == "score" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return
    raise UserInputError(f"Not a valid answer for a {kind} item (see rlhf_tf.feedback.store). Received: {choice!r}")


def record_item_id(record):
    """The store item an exported record came from (its id is "item<item id>-label<label id>")."""
    return int(record.id.split("-")[0][len("item") :])


def encode_arrays(arrays):
    """{name: numpy array} -> bytes (compressed .npz), the form of an item's attachments."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def decode_arrays(data):
    """The inverse of `encode_arrays`."""
    with np.load(io.BytesIO(data)) as loaded:
        return {name: loaded[name] for name in loaded.files}
