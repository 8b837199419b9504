import json

from rlhf_tf import tasks, testing
from rlhf_tf.data import reader
from rlhf_tf.feedback import collect
from rlhf_tf.feedback.store import FeedbackStore
from rlhf_tf.models import policy as policy_lib


def test_collect_samples_labels_stores_and_exports(tmp_path):
    tokenizer = tasks.get_task("reviews").tokenizer()
    policy_lib.save_policy(
        tmp_path / "policy", testing.tiny_causal_lm(tokenizer.vocabulary_size, max_sequence_length=64), tokenizer
    )
    config = collect.CollectConfig(
        output_dir=str(tmp_path / "labels"),
        policy=str(tmp_path / "policy"),
        num_pairs=24,
        eval_fraction=0.25,
        max_new_tokens=8,
        batch_size=16,
    )
    report = collect.collect(config)
    left_out = report[collect.EMPTY_LEFT_OUT] + report[collect.IDENTICAL_LEFT_OUT]
    assert report["train_pairs"] + report["eval_pairs"] + left_out == 24
    train, _ = reader.read_jsonl(tmp_path / "labels" / "train.jsonl")
    evaluation, _ = reader.read_jsonl(tmp_path / "labels" / "eval.jsonl")
    assert len(train) == report["train_pairs"] and len(evaluation) == report["eval_pairs"]
    assert not {pair.id for pair in train} & {pair.id for pair in evaluation}
    store = FeedbackStore(tmp_path / "labels" / "feedback.sqlite")
    assert store.counts()["labels"] == 24 - left_out
    saved = json.loads((tmp_path / "labels" / "labeler.json").read_text())
    assert 0.5 <= saved["ceiling"] <= 1.0 and saved["policy"] == str(tmp_path / "policy")


def test_collect_with_people_in_the_labeling_app(tmp_path):
    """--labeler=web: the pairs wait in the shared store; what people answer (here through the app's HTTP
    interface, as the gold scorer would) is what gets exported; a rerun keeps their answers."""
    tokenizer = tasks.get_task("reviews").tokenizer()
    policy_lib.save_policy(
        tmp_path / "policy", testing.tiny_causal_lm(tokenizer.vocabulary_size, max_sequence_length=64), tokenizer
    )
    shared = str(tmp_path / "shared.sqlite")
    config = collect.CollectConfig(
        output_dir=str(tmp_path / "labels"),
        policy=str(tmp_path / "policy"),
        num_pairs=12,
        eval_fraction=0.25,
        max_new_tokens=8,
        batch_size=16,
        labeler="web",
        store=shared,
        label_timeout=120,
    )
    with testing.person_answering_by_gold(shared):
        report = collect.collect(config)
    assert report["labeler"] == "web" and report["unanswered_at_timeout"] == 0
    with FeedbackStore(shared) as store:
        labels = store.labels()
    assert {label.labeler for label in labels} == {"ann"}
    train, _ = reader.read_jsonl(tmp_path / "labels" / "train.jsonl")
    evaluation, _ = reader.read_jsonl(tmp_path / "labels" / "eval.jsonl")
    assert len(train) + len(evaluation) == len(labels) == report["train_pairs"] + report["eval_pairs"]
    strict = [label for label in labels if "preferred" in label.choice]
    assert strict and report["agreement_with_gold"] == 1.0  # answered as the gold scorer would


def test_pairs_with_an_empty_or_two_identical_responses_are_left_out_and_counted():
    prompts = ["p1", "p2", "p3", "p4", "p5"]
    firsts, seconds = ["a", " ", "same", "x", "b"], ["b", "c", "same ", "", "a"]
    *kept, left_out = collect.drop_unusable_pairs(prompts, firsts, seconds)
    assert kept == [["p1", "p5"], ["a", "b"], ["b", "a"]]
    assert left_out == {collect.EMPTY_LEFT_OUT: 2, collect.IDENTICAL_LEFT_OUT: 1}
