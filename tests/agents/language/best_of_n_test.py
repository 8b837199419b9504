import math

import pytest
import tensorflow as tf

from rlhf_tf import export, tasks, testing
from rlhf_tf.agents.language import best_of_n, rl
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.reward import language_model


def test_select_keeps_each_prompts_highest_scored_candidate():
    candidates = ["a", "bbb", "cc", "dddd", "e", "ff"]
    texts, scores = best_of_n.select(["p", "q"], candidates, lambda p, r: [float(len(x)) for x in r], 3)
    assert texts == ["bbb", "dddd"] and list(scores) == [3.0, 4.0]
    assert best_of_n.kl_bound(1) == 0.0
    assert best_of_n.kl_bound(16) == pytest.approx(math.log(16) - 15 / 16)


def test_best_of_n_beats_single_samples_by_its_reward_and_exports_one_graph(tmp_path):
    tokenizer = tasks.get_task("reviews").tokenizer()
    policy_lib.save_policy(
        tmp_path / "sft",
        testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=3, hidden_dim=32, max_sequence_length=64),
        tokenizer,
    )
    reward_model = language_model.LanguageRewardModel(
        testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=4, hidden_dim=32, max_sequence_length=64).backbone
    )
    reward_model.build()
    export.export_reward(reward_model, tokenizer, str(tmp_path / "rm"), seq_len=48, max_prompt_tokens=16)
    config = best_of_n.BestOfNConfig(
        output_dir=str(tmp_path / "bon"),
        rollouts=rl.RolloutConfig(
            policy=str(tmp_path / "sft"),
            reward=str(tmp_path / "rm"),
            num_eval_prompts=48,
            max_prompt_tokens=16,
            max_new_tokens=8,
        ),
        n=4,
    )
    metrics = best_of_n.run_best_of_n(config)
    # The best of 4 beats one fresh sample about 4/5 of the time by the reward that picked it; chance is 1/2.
    assert metrics["rl/win_rate_vs_sft_reward"] > 0.65
    assert metrics["rl/kl_to_reference"] == pytest.approx(math.log(4) - 0.75)
    served = tf.saved_model.load(str(tmp_path / "bon" / "export" / "policy"))
    responses = served.signatures["serving_default"](prompt=tf.constant(["Review of the Atlas kettle:"] * 3))
    assert responses["response"].shape == (3,) and responses["response"].dtype == tf.string
    # Serving graphs only: the training-only gradient functions (with their XLA barrier op) are not saved.
    for exported in (tmp_path / "rm", tmp_path / "bon" / "export" / "policy"):
        assert b"XlaOptimizationBarrier" not in (exported / "saved_model.pb").read_bytes()
