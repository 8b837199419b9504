import numpy as np
import pytest

from rlhf_tf import testing
from rlhf_tf.agents.language import evaluation
from rlhf_tf.data.tokenizers import resolve_tokenizer


def _lm(seed, tokenizer):
    return testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=seed)


def test_win_rates_kl_and_lengths():
    tokenizer = resolve_tokenizer("byte")
    policy, baseline = _lm(0, tokenizer), _lm(1, tokenizer)
    prompts = [f"prompt {i}:" for i in range(20)]
    # A judge that prefers longer text: the win rate must agree with the lengths it sees.
    judge = lambda ps, rs: [float(len(r)) for r in rs]  # noqa: E731
    metrics, rows = evaluation.evaluate_policy(
        policy,
        baseline,
        tokenizer,
        prompts,
        gold_score=judge,
        max_new_tokens=8,
        max_prompt_tokens=12,
        batch_size=8,
        num_samples_shown=20,
    )
    assert metrics["prompts"] == 20 and len(rows) == 20
    wins = np.mean(
        [(len(r["policy"]) > len(r["baseline"])) + 0.5 * (len(r["policy"]) == len(r["baseline"])) for r in rows]
    )
    assert metrics["win_rate_vs_baseline_gold"] == pytest.approx(wins)
    assert rows[0]["policy_gold"] == float(len(rows[0]["policy"]))
    assert metrics["kl_to_reference"] > 0  # two different random models
    same, _ = evaluation.evaluate_policy(
        policy, policy, tokenizer, prompts, max_new_tokens=8, max_prompt_tokens=12, batch_size=8
    )
    assert same["kl_to_reference"] == pytest.approx(0.0, abs=1e-4)
    assert 0 < metrics["response_length"] <= 8


def test_win_rate_counts_ties_as_halves():
    assert evaluation._win_rate([1, 2, 3], [1, 1, 4]) == pytest.approx((0.5 + 1 + 0) / 3)
