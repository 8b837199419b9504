import numpy as np
import pytest

from rlhf_tf import testing
from rlhf_tf.agents.language import evaluation
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError


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


def test_judge_reports_diversity_length_control_and_further_judges(tmp_path, monkeypatch):
    prompts = ["a", "b", "c", "d"]
    policy, baseline = ["good one", "good one", "fine too", "x"], ["bad", "worse", "bad", "meh"]
    module = tmp_path / "my_judges.py"
    module.write_text("def vowels(prompts, responses):\n    return [sum(c in 'aeiou' for c in r) for r in responses]\n")
    monkeypatch.chdir(tmp_path)
    name, vowels = evaluation.load_judge("my_judges:vowels")
    metrics, rows = evaluation.judge(prompts, policy, baseline, judges={name: vowels})
    assert metrics["unique_responses"] == 0.5 and metrics["baseline_unique_responses"] == 0.5
    # words: good one good one fine too x (5 of 7 distinct); bad worse bad meh (3 of 4)
    assert metrics["distinct_1"] == pytest.approx(5 / 7) and metrics["baseline_distinct_1"] == pytest.approx(3 / 4)
    # vowels: policy 4, 4, 4, 0; baseline 1, 2, 1, 1
    assert metrics["judge_vowels_score"] == pytest.approx(12 / 4) and metrics["baseline_judge_vowels_score"] == 1.25
    assert metrics["win_rate_vs_baseline_judge_vowels"] == 0.75 and rows[3]["baseline_judge_vowels"] == 1.0
    assert 0.0 < metrics["length_controlled_win_rate_vs_baseline_judge_vowels"] < 1.0
    assert evaluation.public_name("baseline_distinct_2") == "sft_distinct_2"


def test_judges_from_a_name_and_bad_judges_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "judges.py").write_text("def short(p, r):\n    return [1.0]\nnot_callable = 3\n")
    name, _ = evaluation.load_judge("brief=judges:short")
    assert name == "brief"
    with pytest.raises(UserInputError, match="one finite score per response: 2 responses gave 1 scores"):
        evaluation.judge(["p", "q"], ["a", "b"], ["c", "d"], judges={"short": evaluation.load_judge("judges:short")[1]})
    with pytest.raises(UserInputError, match="has no callable `not_callable`"):
        evaluation.load_judge("judges:not_callable")
    with pytest.raises(UserInputError, match="does not import"):
        evaluation.load_judge("no_such_module_here:f")
    with pytest.raises(UserInputError, match="no such path. Received: judge=missing/dir"):
        evaluation.load_judge("missing/dir")


def test_evaluator_samples_a_prefix_of_prompts_as_the_whole_and_draws_the_baseline_once():
    tokenizer = resolve_tokenizer("byte")
    policy, baseline = _lm(0, tokenizer), _lm(1, tokenizer)
    prompts = [f"prompt {i}:" for i in range(16)]
    evaluator = evaluation.PolicyEvaluator(policy, baseline, tokenizer, 8, 12, batch_size=8)
    whole, whole_rows = evaluator.evaluate(prompts, seed=5)
    part, part_rows = evaluator.evaluate(prompts[:8], seed=5)
    assert [row["policy"] for row in part_rows] == [row["policy"] for row in whole_rows[:8]]
    assert [row["baseline"] for row in part_rows] == [row["baseline"] for row in whole_rows[:8]]
    assert [row["kl"] for row in part_rows] == pytest.approx([row["kl"] for row in whole_rows[:8]], abs=1e-5)
    assert part["kl_to_reference"] == pytest.approx(np.mean([row["kl"] for row in whole_rows[:8]]), abs=1e-5)
    # The baseline does not change: a second evaluation reuses its samples instead of drawing them again.
    calls = []
    evaluator._baseline_sampler.generate = lambda *args: calls.append(args)
    again, again_rows = evaluator.evaluate(prompts, seed=5)
    assert not calls and [row["baseline"] for row in again_rows] == [row["baseline"] for row in whole_rows]
    assert again["kl_to_reference"] == whole["kl_to_reference"]
