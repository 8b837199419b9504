"""Simulated labelers that stand in for people in experiments and tests.

Each labeler answers against a noiseless gold judgement and keeps two figures:
- `agreement`: the fraction of its (non-tie, non-skipped) answers that agree with the gold ordering;
- `ceiling`: the expected agreement of the best possible predictor with its answers, mean(max(p, 1 - p)) over the
  questions it answered, where p is its probability of preferring the first candidate. No reward model can beat
  this on the labeler's own labels, so reward accuracy is judged against it.

`BradleyTerryLabeler` compares texts: P(first preferred) = sigmoid((gold(first) - gold(second)) / temperature).
`SegmentTeacher` compares trajectory segments with the B-Pref teacher variants (Lee et al., 2021).
"""

import dataclasses
import math

import numpy as np

from rlhf_tf import configs

FIRST, SECOND, TIE = 0.0, 1.0, 0.5


def label_to_choice(label):
    """A labeler's answer (FIRST, SECOND, TIE, or None for a skip) as a feedback-store choice."""
    if label is None:
        return {"skip": True}
    if label == TIE:
        return {"tie": True}
    return {"preferred": int(label)}


def gold_verdict(score_first, score_second):
    """Which of two candidates their gold scores prefer: 0 or 1, None when equal (recorded with store items for the
    labeling app's agreement with gold)."""
    return None if score_first == score_second else int(score_second > score_first)


def choice_to_label(choice):
    """A feedback-store choice of a pair as FIRST, SECOND or TIE (None for a skip)."""
    if choice.get("skip"):
        return None
    if choice.get("tie"):
        return TIE
    return float(choice["preferred"])


def _sigmoid(value):
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))


@dataclasses.dataclass
class AgreementTracker:
    """Counts a labeler's answers against the gold ordering."""

    answered: int = 0
    agreed: int = 0
    ceiling_sum: float = 0.0
    ties: int = 0
    skipped: int = 0

    def record(self, label, gold_first_better, probability_first):
        if label is None:
            self.skipped += 1
            return
        if label == TIE:
            self.ties += 1
            return
        if gold_first_better is not None:
            self.answered += 1
            self.agreed += int((label == FIRST) == gold_first_better)
            self.ceiling_sum += max(probability_first, 1.0 - probability_first)

    @property
    def agreement(self):
        return self.agreed / self.answered if self.answered else float("nan")

    @property
    def ceiling(self):
        return self.ceiling_sum / self.answered if self.answered else float("nan")

    def metrics(self, prefix="labeler"):
        return {
            f"{prefix}/agreement_with_gold": self.agreement,
            f"{prefix}/ceiling": self.ceiling,
            f"{prefix}/answered": self.answered,
            f"{prefix}/ties": self.ties,
            f"{prefix}/skipped": self.skipped,
        }


class _TrackedLabeler:
    """What every simulated labeler reports: `agreement` with the gold ordering and the `ceiling`."""

    @property
    def agreement(self):
        return self.tracker.agreement

    @property
    def ceiling(self):
        return self.tracker.ceiling


class BradleyTerryLabeler(_TrackedLabeler):
    """A Bradley-Terry chooser over a gold scoring function.

    Args:
      gold_fn: `(prompts, responses) -> scores` over lists (batched, so a scorer can vectorise).
      temperature: noise scale; 0 answers deterministically by the gold score.
      tie_threshold: answer "tie" when the gold scores differ by less than this (0: never).
      seed: seeds the labeler's random choices.
    """

    def __init__(self, gold_fn, temperature=1.0, tie_threshold=0.0, seed=0):
        configs.require_non_negative(temperature=temperature, tie_threshold=tie_threshold)
        self.gold_fn = gold_fn
        self.temperature = temperature
        self.tie_threshold = tie_threshold
        self.random = np.random.default_rng(seed)
        self.tracker = AgreementTracker()

    def probability_first(self, score_first, score_second):
        difference = score_first - score_second
        if self.temperature == 0:
            return 1.0 if difference > 0 else 0.0 if difference < 0 else 0.5
        return _sigmoid(difference / self.temperature)

    def compare(self, prompts, firsts, seconds):
        """Labels a batch of pairs: 0.0 (first preferred), 1.0 (second) or 0.5 (tie)."""
        scores_first = np.asarray(self.gold_fn(list(prompts), list(firsts)), dtype=np.float64)
        scores_second = np.asarray(self.gold_fn(list(prompts), list(seconds)), dtype=np.float64)
        labels = []
        for a, b in zip(scores_first, scores_second):
            probability = self.probability_first(a, b)
            if abs(a - b) < self.tie_threshold:
                label = TIE
            else:
                label = FIRST if self.random.random() < probability else SECOND
            self.tracker.record(label, a > b if a != b else None, probability)
            labels.append(label)
        return labels


class SegmentTeacher(_TrackedLabeler):
    """The B-Pref simulated teacher for trajectory segments (Lee et al., 2021).

    Given the true per-step rewards of two segments of H steps, the teacher:
    - weighs step t (1-based) by gamma^(H - t) (myopic when gamma < 1: recent steps count more);
    - skips the query when both segments' returns are below `skip_threshold` (neither shows anything useful);
    - answers "equal" (0.5) when the returns differ by less than `equal_threshold`;
    - otherwise prefers segment 1 with probability exp(beta R1) / (exp(beta R1) + exp(beta R2)), deterministic
      when beta is infinite (the "oracle" teacher);
    - then flips its answer with probability `mistake_rate`.
    Agreement is measured against the undiscounted true returns.

    Args:
      beta: rationality (inverse temperature); math.inf for a perfectly rational teacher.
      gamma: myopia discount in (0, 1].
      mistake_rate: probability of flipping an answer.
      skip_threshold: skip when max(R1, R2) < this (None never skips).
      equal_threshold: answer 0.5 when |R1 - R2| < this (0 never).
      seed: seeds the teacher's random choices.
    """

    def __init__(self, beta=math.inf, gamma=1.0, mistake_rate=0.0, skip_threshold=None, equal_threshold=0.0, seed=0):
        configs.require(beta > 0, "`beta` must be > 0 (math.inf for a rational teacher).", beta=beta)
        configs.require(0 < gamma <= 1, "`gamma` must be in (0, 1].", gamma=gamma)
        configs.require(0 <= mistake_rate <= 0.5, "`mistake_rate` must be in [0, 0.5].", mistake_rate=mistake_rate)
        configs.require_non_negative(equal_threshold=equal_threshold)
        self.beta = beta
        self.gamma = gamma
        self.mistake_rate = mistake_rate
        self.skip_threshold = skip_threshold
        self.equal_threshold = equal_threshold
        self.random = np.random.default_rng(seed)
        self.tracker = AgreementTracker()

    def _weighted_return(self, rewards):
        rewards = np.asarray(rewards, dtype=np.float64)
        weights = self.gamma ** np.arange(len(rewards) - 1, -1, -1)
        return float(np.sum(weights * rewards))

    def label(self, rewards_1, rewards_2):
        """0.0 (segment 1 preferred), 1.0 (segment 2), 0.5 (equal) or None (skipped)."""
        true_1, true_2 = float(np.sum(rewards_1)), float(np.sum(rewards_2))
        seen_1, seen_2 = self._weighted_return(rewards_1), self._weighted_return(rewards_2)
        gold = true_1 > true_2 if true_1 != true_2 else None
        if self.skip_threshold is not None and max(seen_1, seen_2) < self.skip_threshold:
            self.tracker.record(None, gold, 0.5)
            return None
        if abs(seen_1 - seen_2) < self.equal_threshold:
            self.tracker.record(TIE, gold, 0.5)
            return TIE
        if math.isinf(self.beta):
            probability = 1.0 if seen_1 > seen_2 else 0.0 if seen_1 < seen_2 else 0.5
        else:
            probability = _sigmoid(self.beta * (seen_1 - seen_2))
        probability = probability * (1 - self.mistake_rate) + (1 - probability) * self.mistake_rate
        label = FIRST if self.random.random() < probability else SECOND
        # The ceiling is about agreeing with the gold order, so it uses the probability of the gold-preferred one.
        self.tracker.record(label, gold, probability)
        return label
