import math

import numpy as np
import pytest

from rlhf_tf.errors import UserInputError
from rlhf_tf.feedback.labelers import FIRST, SECOND, TIE, BradleyTerryLabeler, SegmentTeacher


def _length_gold(prompts, responses):
    return [float(len(response)) for response in responses]


def test_noiseless_labeler_always_agrees_with_gold():
    labeler = BradleyTerryLabeler(_length_gold, temperature=0.0)
    labels = labeler.compare(["p"] * 3, ["aaa", "a", "aa"], ["a", "aaa", "aaaa"])
    assert labels == [FIRST, SECOND, SECOND]
    assert labeler.agreement == 1.0 and labeler.ceiling == 1.0


def test_noisy_labeler_agreement_matches_its_ceiling():
    # Score differences of 1 at temperature 1: P(agree) = sigmoid(1) = 0.731.
    labeler = BradleyTerryLabeler(_length_gold, temperature=1.0, seed=3)
    firsts = ["aa"] * 4000
    seconds = ["a"] * 4000
    labeler.compare([""] * 4000, firsts, seconds)
    assert labeler.ceiling == pytest.approx(1 / (1 + math.exp(-1)))
    assert labeler.agreement == pytest.approx(labeler.ceiling, abs=0.02)


def test_ties_below_the_threshold():
    labeler = BradleyTerryLabeler(_length_gold, temperature=0.0, tie_threshold=1.5)
    assert labeler.compare(["p", "p"], ["ab", "abcd"], ["a", "a"]) == [TIE, FIRST]
    assert labeler.tracker.ties == 1 and labeler.tracker.answered == 1


def test_bpref_oracle_myopic_skip_equal_and_mistakes():
    oracle = SegmentTeacher()
    assert oracle.label([1, 1, 1], [0, 0, 2]) == FIRST
    # Myopic: the last step weighs most, so a late reward beats an early one of the same size.
    myopic = SegmentTeacher(gamma=0.5)
    assert myopic.label([2, 0, 0], [0, 0, 1]) == SECOND
    assert myopic.agreement == 0.0  # the true return prefers segment 1
    skipping = SegmentTeacher(skip_threshold=1.0)
    assert skipping.label([0, 0.5], [0.2, 0.1]) is None and skipping.tracker.skipped == 1
    assert SegmentTeacher(equal_threshold=0.5).label([1, 1], [1, 1.2]) == TIE
    mistaken = SegmentTeacher(mistake_rate=0.2, seed=1)
    answers = [mistaken.label([1.0], [0.0]) for _ in range(5000)]
    assert np.mean(np.array(answers) == SECOND) == pytest.approx(0.2, abs=0.02)
    assert mistaken.ceiling == pytest.approx(0.8)
    stochastic = SegmentTeacher(beta=1.0, seed=2)
    answers = [stochastic.label([1.0, 1.0], [1.0, 0.0]) for _ in range(5000)]
    assert np.mean(np.array(answers) == FIRST) == pytest.approx(1 / (1 + math.exp(-1)), abs=0.02)


def test_bad_teacher_settings():
    with pytest.raises(UserInputError, match="`gamma` must be in"):
        SegmentTeacher(gamma=0)
    with pytest.raises(UserInputError, match="`temperature` must be >= 0"):
        BradleyTerryLabeler(_length_gold, temperature=-1)
