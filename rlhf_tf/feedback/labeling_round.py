"""One labeling round through the feedback store: put a run's questions into the store, have them answered, read
the answers back. Reward collection (`collect`), active learning (`rlhf_tf.reward.active`) and the control preference
loop (`rlhf_tf.agents.control.preference_loop`) all ask through this one class.

Whoever answers, the answers live in the store: a simulated labeler answers at once through the same `add_label` a
person's browser uses, and people answer in the labeling app while the run waits (`wait_for_people`). A run that
reads its answers back from the store therefore does not depend on who gave them, and a resumed run finds its
questions and answers where it left them.
"""

import logging

from rlhf_tf.feedback import store as store_lib
from rlhf_tf.feedback.labelers import choice_to_label

SIMULATED = "simulated"
WEB = "web"
LABELERS = (SIMULATED, WEB)


class LabelingRound:
    """The questions one run asks, of one item kind, in one feedback store.

    Args:
      store: a `FeedbackStore` (shared with the labeling app when people answer).
      source: the run asking (an item's `source`); only this run's items are answered and read back.
      kind: the item kind ("comparison", "segment_comparison", ...).
      labeler: "simulated" (`answer_with` answers) or "web" (people answer; `wait_for_people` waits for them).
      timeout: with "web", the longest wait for answers (seconds).
    """

    def __init__(self, store, source, kind, labeler=SIMULATED, timeout=3600.0):
        if labeler not in LABELERS:
            raise store_lib.UserInputError(f"`labeler` must be one of {list(LABELERS)}. Received: {labeler!r}")
        self.store = store
        self.source = source
        self.kind = kind
        self.labeler = labeler
        self.timeout = timeout

    @property
    def people_answer(self):
        return self.labeler == WEB

    def ask(self, items):
        """Puts `items` (of this round's source and kind) into the store; returns their ids."""
        wrong = [item for item in items if item.source != self.source or item.kind != self.kind]
        if wrong:
            raise store_lib.UserInputError(
                f"A round asks {self.kind} items of source {self.source!r}. Received: kind={wrong[0].kind!r}, "
                f"source={wrong[0].source!r}"
            )
        return self.store.add_items(items)

    def items(self):
        """Every item this run has put into the store, in id order."""
        return [item for item in self.store.items(source=self.source) if item.kind == self.kind]

    def asked_count(self):
        return self.store.item_count(source=self.source)

    def open_items(self, labeler_name=""):
        """This run's items that still want a label (and that `labeler_name`, if given, has not answered), highest
        priority first."""
        return [
            item for item in self.store.next_items(labeler_name, limit=-1, kind=self.kind) if item.source == self.source
        ]

    def answer(self, labeler_name, item_ids, choices):
        """A simulated labeler's answers: one choice per item id (None: no answer). An item that another labeler
        answered first is left as it is. Returns how many answers were added."""
        answered = 0
        for item_id, choice in zip(item_ids, choices):
            if choice is None:
                continue
            try:
                self.store.add_label(item_id, labeler_name, choice)
            except (store_lib.ItemAlreadyLabeled, store_lib.AlreadyAnswered):
                continue
            answered += 1
        return answered

    def wait_for_people(self, describe=""):
        """Waits until every item of this run is answered or the timeout passes, logging how many wait; returns how
        many still wait (training goes on with what came; later answers join later rounds)."""
        return self.store.wait_for_labels(
            self.source,
            self.timeout,
            kind=self.kind,
            on_wait=lambda waiting: logging.info(
                "%sWaiting for %d answers from the labeling app (%s).", describe, waiting, self.store.path
            ),
        )

    def answers(self, since_label_id=0):
        """(last label id read, [(item, label, target)]) of this run's strict or tied answers after
        `since_label_id`, in label order; target is P(second candidate preferred) for comparisons (skips and
        answers of other runs are passed over)."""
        rows, last = [], since_label_id
        for item, label in self.store.labeled(self.kind, since_label_id=since_label_id):
            last = max(last, label.id)
            if item.source != self.source:
                continue
            target = choice_to_label(label.choice)
            if target is not None:
                rows.append((item, label, target))
        return last, rows

    def records(self, item_ids=None):
        """The answered text items of this run as records (`FeedbackStore.export_records`), optionally only those of
        `item_ids`, in label order."""
        wanted = set(item_ids) if item_ids is not None else {item.id for item in self.items()}
        return [record for record in self.store.export_records(self.kind) if store_lib.record_item_id(record) in wanted]

    def withdrawn(self, label_ids):
        """How many of `label_ids` are no longer in the store (a labeler undid them in the labeling app)."""
        return len(label_ids) - self.store.count_labels(label_ids)
