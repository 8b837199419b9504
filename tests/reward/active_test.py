"""Active-learning reward training: rounds ask about the pairs the ensemble disagrees on, through the feedback store,
answered by the simulated labeler or by a person in the labeling app; a rerun resumes."""

import json

import pytest

from rlhf_tf import tasks, testing, training
from rlhf_tf.data import pipelines, reader
from rlhf_tf.errors import UserInputError
from rlhf_tf.feedback.store import FeedbackStore
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.reward import active, trainer


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    directory = tmp_path_factory.mktemp("policy")
    tokenizer = tasks.get_task("reviews").tokenizer()
    policy_lib.save_policy(
        directory, testing.tiny_causal_lm(tokenizer.vocabulary_size, max_sequence_length=64), tokenizer
    )
    return str(directory)


def _config(output_dir, policy, **changes):
    reward = trainer.RewardConfig(
        output_dir="-",
        train="-",
        ensemble_size=2,
        epochs=0,
        loop=training.LoopConfig(steps=6, log_every=3, checkpoint_every=6, eval_every=6, progress=False),
        pipeline=pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=16, batch_size=8),
        jit_compile=False,
    )
    settings = dict(
        num_labels=30,
        eval_fraction=0.2,
        rounds=2,
        pool_size=48,
        temperature=0.0,
        max_new_tokens=8,
        gold_check_pairs=40,
        reward=reward,
    )
    settings.update(changes)
    return active.ActiveConfig(output_dir=str(output_dir), policy=policy, **settings)


def test_rounds_ask_the_most_disputed_pairs_and_web_answers_equal_simulated_ones(tmp_path, policy):
    simulated = active.train_active(_config(tmp_path / "simulated", policy))
    assert simulated["active/labels_used"] == 30 and simulated["active/rounds"] == 2
    assert simulated["active/round_0_train_pairs"] == 12 and simulated["active/round_1_train_pairs"] == 24
    # Round 1 asked the 12 unasked pairs the round-0 ensemble disagreed on most, not a random share of the pool.
    assert simulated["active/round_1_asked_disagreement"] > simulated["active/round_1_pool_disagreement"]
    with FeedbackStore(tmp_path / "simulated" / "feedback.sqlite") as store:
        items = store.items()
        asked_in_round_1 = sorted(item.priority for item in items if item.metadata["round"] == 1)
        assert len(items) == 30 and len(store.labels()) == 30
    assert min(asked_in_round_1) > 0
    evaluation, _ = reader.read_jsonl(tmp_path / "simulated" / "rounds" / "round-1" / "eval.jsonl")
    assert len(evaluation) == 6
    assert (tmp_path / "simulated" / "export" / "reward" / "saved_model.pb").exists()
    saved = json.loads((tmp_path / "simulated" / "metrics.json").read_text())
    assert saved["active/labels_used"] == 30 and "reward/eval_accuracy_vs_gold" in saved
    assert 0.0 <= saved["active/round_1_gold_check_accuracy"] <= 1.0

    # A rerun resumes: nothing is asked twice and the result is the same.
    again = active.train_active(_config(tmp_path / "simulated", policy))
    with FeedbackStore(tmp_path / "simulated" / "feedback.sqlite") as store:
        assert store.item_count() == 30 and len(store.labels()) == 30
    assert again["reward/eval_accuracy"] == simulated["reward/eval_accuracy"]

    # People answering in the labeling app as the (noiseless) simulated labeler would give the same run.
    shared = str(tmp_path / "shared.sqlite")
    with testing.person_answering_by_gold(shared) as person:
        web = active.train_active(_config(tmp_path / "web", policy, labeler="web", store=shared, label_timeout=120))
    assert person["answered"] == 30
    for name in ("reward/eval_accuracy", "reward/eval_loss", "active/round_1_asked_disagreement"):
        assert web[name] == simulated[name], name


def test_the_budget_must_cover_the_rounds_and_disagreement_needs_an_ensemble(tmp_path, policy):
    with pytest.raises(UserInputError, match="every round"):
        _config(tmp_path, policy, num_labels=5, rounds=5)
    single = trainer.RewardConfig(output_dir="-", train="-", ensemble_size=1)
    with pytest.raises(UserInputError, match="ensemble of at least 2"):
        active.ActiveConfig(output_dir=str(tmp_path), policy=policy, reward=single)
    active.ActiveConfig(output_dir=str(tmp_path), policy=policy, reward=single, selection="random")
