import numpy as np
import pytest

from rlhf_tf.agents.language import text_metrics


def test_win_rate_counts_ties_as_halves():
    assert text_metrics.win_rate([1, 2, 3], [1, 1, 4]) == pytest.approx((0.5 + 1 + 0) / 3)


def test_distinct_n_and_unique_responses_on_hand_counted_texts():
    texts = ["A b a", "a b", " a b "]
    # unigrams a b a a b a b: 2 of 7 distinct; bigrams (a b) (b a) (a b) (a b): 2 of 4; trigrams (a b a): 1 of 1
    assert text_metrics.distinct_n(texts, 1) == pytest.approx(2 / 7)
    assert text_metrics.distinct_n(texts, 2) == pytest.approx(2 / 4)
    metrics = text_metrics.diversity(texts)
    assert metrics["distinct_3"] == 1.0
    assert metrics["unique_responses"] == pytest.approx(1 / 3)  # "a b" twice once stripped
    assert text_metrics.distinct_n(["one"], 2) == 0.0


def _lengths(rng, count, mean_difference):
    theirs = rng.uniform(50, 150, count)
    return theirs + mean_difference + rng.normal(0, 60, count), theirs


def test_length_control_removes_a_win_rate_that_only_length_explains():
    rng = np.random.default_rng(0)
    ours_length, theirs_length = _lengths(rng, 2000, 40.0)
    # The judge rewards length and nothing else: same quality, the policy merely writes longer.
    ours, theirs = ours_length + rng.normal(0, 30, 2000), theirs_length + rng.normal(0, 30, 2000)
    raw = text_metrics.win_rate(ours, theirs)
    controlled = text_metrics.length_controlled_win_rate(ours, theirs, ours_length, theirs_length)
    assert raw > 0.65
    assert abs(controlled - 0.5) < 0.05


def test_length_control_keeps_a_win_rate_that_length_does_not_explain():
    rng = np.random.default_rng(1)
    ours_length, theirs_length = _lengths(rng, 2000, 40.0)
    wins = rng.uniform(size=2000) < 0.8  # better 80% of the time whatever the lengths
    ours, theirs = wins.astype(float), np.zeros(2000)
    raw = text_metrics.win_rate(ours, theirs)
    controlled = text_metrics.length_controlled_win_rate(ours, theirs, ours_length, theirs_length)
    assert controlled == pytest.approx(raw, abs=0.03)
    # Degenerate cases: equal lengths give the raw rate; all wins stay all wins.
    assert text_metrics.length_controlled_win_rate(ours, theirs, theirs_length, theirs_length) == raw
    assert text_metrics.length_controlled_win_rate(np.ones(5), np.zeros(5), np.arange(5), np.zeros(5)) == 1.0
