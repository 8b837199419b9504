"""Preferences over trajectory segments for control (Christiano et al. 2017): segments cut from the agent's own
experience, pairs chosen to ask about, labels through the feedback store, and a reward ensemble fitted to them.

The pieces, in the order a run uses them:
- `sample_segments` cuts segments of `length` consecutive steps out of a TF-Agents replay buffer, dropping windows
  that cross an episode boundary (a boundary step's action is never taken), and keeps the true per-step rewards for
  the simulated teacher and evaluation only.
- `choose_pairs` pairs segments at random or by ensemble disagreement (the std over members of
  P(first preferred)): ask about what the ensemble is least sure of.
- `LabelRounds` writes the chosen segments to the run directory (`segments/round-N.npz`, atomically), puts one
  `segment_comparison` item per pair (with the two segments' observations, for the labeling app's clips) into the
  SQLite feedback store through a `rlhf_tf.feedback.labeling_round.LabelingRound`, has them answered (the simulated
  teacher answers at once; people answer through the store), and reads every answered label back. Since labels live
  in the store and segments on disk, a resumed run rebuilds its label set exactly, and who answers changes nothing
  else.

The learned reward the labels train is `rlhf_tf.reward.segment_preference.PreferenceReward`.
"""

import io
import os

import numpy as np
import tensorflow as tf

from rlhf_tf import configs, files, training
from rlhf_tf.feedback import labelers as labelers_lib
from rlhf_tf.feedback import labeling_round
from rlhf_tf.feedback import store as store_lib
from rlhf_tf.reward import ensemble as ensemble_lib

SIMULATED_LABELER = "simulated"


# Segments -----------------------------------------------------------------------------------------------------------


def sample_segments(replay_buffer, count, length, attempts=4):
    """Up to `count` segments of `length` steps from `replay_buffer`, none crossing an episode boundary.

    Returns numpy arrays {"observations": [M, L, D], "actions": [M, L, ...], "rewards": [M, L]} (rewards: the
    environment's true rewards, for teachers and evaluation only).
    """
    kept = {"observations": [], "actions": [], "rewards": []}
    total = 0
    for _ in range(attempts):
        trajectory, _ = replay_buffer.get_next(sample_batch_size=count, num_steps=length)
        boundary = trajectory.is_boundary().numpy().any(axis=1)
        good = ~boundary
        kept["observations"].append(trajectory.observation.numpy()[good])
        kept["actions"].append(trajectory.action.numpy()[good])
        kept["rewards"].append(trajectory.reward.numpy()[good].astype(np.float32))
        total += int(good.sum())
        if total >= count:
            break
    return {name: np.concatenate(parts)[:count] for name, parts in kept.items()}


def choose_pairs(segments, num_pairs, selection, ensemble, rng):
    """Index pairs [num_pairs, 2] into `segments`: "random", or the most disputed among random candidates."""
    count = len(segments["rewards"])
    configs.require(count >= 2, "Too few segments to pair.", segments=count)
    candidates = num_pairs if selection == "random" else num_pairs * 10
    first = rng.integers(0, count, size=candidates)
    second = (first + rng.integers(1, count, size=candidates)) % count  # never a segment with itself
    pairs = np.stack([first, second], axis=1)
    if selection == "random" or ensemble is None:
        return pairs[:num_pairs], np.zeros(min(num_pairs, candidates), np.float32)
    returns = ensemble.member_returns(segments["observations"], segments["actions"])  # [K, count]
    spread = ensemble_lib.disagreement(tf.gather(returns, first, axis=1), tf.gather(returns, second, axis=1)).numpy()
    order = np.argsort(-spread, kind="stable")[:num_pairs]
    return pairs[order], spread[order]


# Labels through the feedback store --------------------------------------------------------------------------------


class LabelRounds:
    """Rounds of questions about segment pairs, asked and answered through a feedback store.

    Args:
      run_dir: the run directory; segments go to `run_dir/segments/`, the store defaults to
        `run_dir/feedback.sqlite`.
      store_path: a feedback store shared with people (the labeling app) instead of the run's own.
      teacher: a `SegmentTeacher` answering as labeler "simulated", or None when people answer.
      source: the item's `source` field (which run asked).
      env_name, fixed_horizon: recorded with each item so that the labeling app can draw the clips (which it draws
        from the observations each item carries in the store).
    """

    def __init__(self, run_dir, teacher=None, store_path="", source="", env_name="", fixed_horizon=True):
        self.paths = training.RunPaths(run_dir)
        self.segment_dir = self.paths.segments_dir
        os.makedirs(self.segment_dir, exist_ok=True)
        self.store = store_lib.FeedbackStore(store_path or self.paths.feedback_store_path)
        self.teacher = teacher
        self.source = source or os.path.abspath(run_dir)
        self.questions = labeling_round.LabelingRound(
            self.store,
            self.source,
            "segment_comparison",
            labeling_round.SIMULATED if teacher is not None else labeling_round.WEB,
        )
        self.env_name = env_name
        self.fixed_horizon = fixed_horizon
        self._segments = {}  # round -> arrays, cached

    def close(self):
        self.store.close()

    def rounds_done(self):
        names = [name for name in os.listdir(self.segment_dir) if name.startswith("round-") and name.endswith(".npz")]
        return sorted(int(name[len("round-") : -len(".npz")]) for name in names)

    def segments(self, round_number):
        if round_number not in self._segments:
            with np.load(self.paths.segments_path(round_number)) as data:
                self._segments[round_number] = {name: data[name] for name in data.files}
        return self._segments[round_number]

    def ask(self, segments, pairs, priorities, round_number):
        """Saves the round's segments and puts one item per pair into the store; returns the items."""
        used = np.unique(pairs)
        remap = {int(old): new for new, old in enumerate(used)}
        kept = {name: values[used] for name, values in segments.items()}
        path = self.paths.segments_path(round_number)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **kept)
        files.atomic_write_bytes(path, buffer.getvalue())
        self._segments[round_number] = kept
        items = [
            store_lib.Item(
                kind="segment_comparison",
                candidates=(f"{round_number}/{remap[int(a)]}", f"{round_number}/{remap[int(b)]}"),
                source=self.source,
                metadata={
                    "round": round_number,
                    "disagreement": float(priority),
                    "env": self.env_name,
                    "fixed_horizon": self.fixed_horizon,
                    # The true returns' verdict, for the labeling app's agreement-with-gold (never for training).
                    "gold_preferred": labelers_lib.gold_verdict(
                        float(np.sum(segments["rewards"][a])), float(np.sum(segments["rewards"][b]))
                    ),
                },
                priority=float(priority),
                # What the labeling app draws the clips from (people never see the true rewards).
                attachments=tuple(
                    store_lib.encode_arrays({"observations": segments["observations"][index]}) for index in (a, b)
                ),
            )
            for (a, b), priority in zip(pairs, priorities)
        ]
        return self.questions.ask(items)

    def answer_pending(self):
        """The simulated teacher answers every open item of this run; returns how many it answered."""
        if self.teacher is None:
            return 0
        items = self.questions.open_items(SIMULATED_LABELER)
        targets = []
        for item in items:
            first, second = (self.segment(candidate) for candidate in item.candidates)
            targets.append(self.teacher.label(first["rewards"], second["rewards"]))
        choices = [labelers_lib.label_to_choice(target) for target in targets]
        return self.questions.answer(SIMULATED_LABELER, [item.id for item in items], choices)

    def wait_for_answers(self, timeout, report=None):
        """Waits until every item this run asked is answered (people answer through the labeling app), or until
        `timeout` seconds pass. Returns how many are still waiting: training goes on with the labels that came, and
        later answers are picked up by later rounds."""
        return self.store.wait_for_labels(self.source, timeout, kind=self.questions.kind, on_wait=report)

    def segment(self, segment_id):
        round_number, index = (int(part) for part in segment_id.split("/"))
        arrays = self.segments(round_number)
        return {name: values[index] for name, values in arrays.items()}

    def labels(self, since_label_id=0):
        """(last label id, [(segment 1, segment 2, target)], [their label ids]) for this run's answered, non-skipped
        items, in label order."""
        last, answers = self.questions.answers(since_label_id)
        rows = [(*(self.segment(candidate) for candidate in item.candidates), target) for item, _, target in answers]
        return last, rows, [label.id for _, label, _ in answers]

    def withdrawn(self, label_ids):
        """How many of `label_ids` are no longer in the store (a labeler undid them in the labeling app)."""
        return self.questions.withdrawn(label_ids)

    def asked_count(self):
        """Items this run has put into the store (answered or not)."""
        return self.questions.asked_count()
