import json
import multiprocessing

import pytest

from rlhf_tf.data import reader, records, tfrecord
from rlhf_tf.errors import UserInputError
from rlhf_tf.feedback.store import AlreadyAnswered, FeedbackStore, Item, ItemAlreadyLabeled


def _pair(index, **kwargs):
    return Item("comparison", (f"first {index}", f"second {index}"), prompt=f"Review {index}:", **kwargs)


def test_items_labels_undo_and_export(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    ids = store.add_items([_pair(0), _pair(1, priority=5.0), _pair(2)])
    assert [item.id for item in store.next_items("ann", limit=3)] == [ids[1], ids[0], ids[2]]
    store.add_label(ids[1], "ann", {"preferred": 1}, comment="second reads better", seconds=3.5)
    store.add_label(ids[0], "ann", {"tie": True})
    store.add_label(ids[2], "ann", {"skip": True})
    assert store.pending_count("ann") == 0 and store.pending_count("bob") == 1  # skipped item still wants a label
    exported = store.export_records()
    assert exported == [
        records.Comparison("Review 1:", "second 1", "first 1", id=f"item{ids[1]}-label1"),
        records.Comparison("Review 0:", "first 0", "second 0", tie=True, id=f"item{ids[0]}-label2"),
    ]
    assert store.labels(ids[1])[0].comment == "second reads better"
    undone = store.undo_last("ann")
    assert undone.item_id == ids[2] and undone.choice == {"skip": True}
    assert store.pending_count("ann") == 1
    assert store.export(tmp_path / "labels.jsonl") == 2
    assert reader.read_jsonl(tmp_path / "labels.jsonl")[0] == exported
    store.export(str(tmp_path / "shards"))
    assert list(tfrecord.iter_tfrecords(str(tmp_path / "shards-*"))) == exported


def test_one_answer_wins_when_an_item_wants_one_label(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    (item_id,) = store.add_items([_pair(0)])
    store.add_label(item_id, "ann", {"preferred": 0})
    with pytest.raises(ItemAlreadyLabeled):
        store.add_label(item_id, "bob", {"preferred": 1})
    assert len(store.labels(item_id)) == 1
    (shared,) = store.add_items([_pair(1, labels_wanted=2)])
    store.add_label(shared, "ann", {"preferred": 0})
    with pytest.raises(AlreadyAnswered):
        store.add_label(shared, "ann", {"preferred": 1})
    store.add_label(shared, "bob", {"preferred": 1})
    assert [label.labeler for label in store.labels(shared)] == ["ann", "bob"]


def test_rankings_ratings_and_bad_choices(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    ranking, rating = store.add_items(
        [Item("ranking", ("a", "b", "c"), prompt="p"), Item("rating", ("only",), prompt="q")]
    )
    with pytest.raises(UserInputError, match="Not a valid answer for a ranking item"):
        store.add_label(ranking, "ann", {"ranking": [0, 0, 1]})
    with pytest.raises(UserInputError, match="Not a valid answer for a rating item"):
        store.add_label(rating, "ann", {"score": float("nan")})
    with pytest.raises(UserInputError, match="No item with that id"):
        store.add_label(999, "ann", {"skip": True})
    with pytest.raises(UserInputError, match="needs 2 candidates"):
        Item("comparison", ("a",))
    store.add_label(ranking, "ann", {"ranking": [2, 0, 1]})
    store.add_label(rating, "ann", {"score": 6})
    assert store.export_records("ranking") == [records.Ranking("p", ("c", "a", "b"), id=f"item{ranking}-label1")]
    assert store.export_records("rating")[0].score == 6.0


def _writer(path, worker, count, queue):
    store = FeedbackStore(path)
    ids = [item.id for item in store.next_items(f"worker{worker}", limit=-1) if item.metadata["worker"] == worker]
    for item_id in ids[:count]:
        store.add_label(item_id, f"worker{worker}", {"preferred": item_id % 2})
    queue.put(len(ids[:count]))


def _contender(path, worker, queue):
    store = FeedbackStore(path)
    won = lost = 0
    for item in store.next_items(f"c{worker}", limit=-1):
        try:
            store.add_label(item.id, f"c{worker}", {"preferred": 0})
            won += 1
        except ItemAlreadyLabeled:
            lost += 1
    queue.put((won, lost))


def test_four_concurrent_writer_processes_lose_no_label(tmp_path):
    path = str(tmp_path / "concurrent.sqlite")
    store = FeedbackStore(path)
    store.add_items([_pair(i, metadata={"worker": i % 4}) for i in range(2000)])
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_writer, args=(path, worker, 500, queue)) for worker in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
        assert process.exitcode == 0
    assert sorted(queue.get() for _ in processes) == [500] * 4
    counts = store.counts()
    assert counts["labels"] == 2000 and all(counts[f"labels/worker{w}"] == 500 for w in range(4))
    assert {label.item_id for label in store.labels()} == set(range(1, 2001))


def test_concurrent_answers_to_the_same_items_record_exactly_one_each(tmp_path):
    path = str(tmp_path / "contended.sqlite")
    FeedbackStore(path).add_items([_pair(i) for i in range(300)])
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_contender, args=(path, worker, queue)) for worker in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    results = [queue.get() for _ in processes]
    assert sum(won for won, _ in results) == 300
    labels = FeedbackStore(path).labels()
    assert len(labels) == 300 and len({label.item_id for label in labels}) == 300
    assert json.dumps(labels[0].choice) == '{"preferred": 0}'


def test_open_counts_follow_answers_skips_and_undo_and_use_the_open_index(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    ids = store.add_items([_pair(0, labels_wanted=2), _pair(1), _pair(2, source="round1")])
    assert store.pending_count() == 3 and store.pending_count(source="round1") == 1
    store.add_label(ids[0], "ann", {"preferred": 0})
    store.add_label(ids[1], "ann", {"skip": True})
    assert store.pending_count() == 3 and store.pending_count("ann") == 1  # item 0 wants a second label
    store.add_label(ids[0], "bob", {"preferred": 1})
    assert store.pending_count() == 2 and store.pending_count("bob") == 2
    with pytest.raises(ItemAlreadyLabeled):
        store.add_label(ids[0], "cat", {"preferred": 1})
    store.undo_last("bob")  # a real answer taken back: the item wants it again
    assert store.pending_count() == 3 and store.lease_next("cat").id == ids[0]
    plan = " ".join(
        row[-1]
        for row in store._connection.execute(
            "EXPLAIN QUERY PLAN SELECT items.* FROM items WHERE items.labels_given < items.labels_wanted"
            " ORDER BY items.priority DESC, items.id LIMIT 1"
        )
    )
    assert "items_open" in plan and "TEMP B-TREE" not in plan  # read in index order, no sort of the queue


def test_a_version_2_store_gains_the_open_counts_when_opened(tmp_path):
    import sqlite3

    from rlhf_tf.feedback import schema

    path = tmp_path / "old.sqlite"
    old_schema = schema.SCHEMA.replace(",\n    labels_given INTEGER NOT NULL DEFAULT 0", "")
    old_schema = "\n".join(line for line in old_schema.splitlines() if "WHERE labels_given" not in line)
    connection = sqlite3.connect(path)
    connection.executescript(old_schema + "\nPRAGMA user_version = 2;")
    connection.execute(
        "INSERT INTO items (id, kind, candidates, created_at) VALUES (1, 'comparison', '[\"a\", \"b\"]', 0)"
    )
    connection.execute(
        "INSERT INTO items (id, kind, candidates, created_at) VALUES (2, 'comparison', '[\"a\", \"b\"]', 0)"
    )
    connection.execute(
        "INSERT INTO labels (item_id, labeler, choice, created_at) VALUES (1, 'ann', '{\"preferred\": 0}', 0)"
    )
    connection.execute(
        "INSERT INTO labels (item_id, labeler, choice, created_at) VALUES (2, 'ann', '{\"skip\": true}', 0)"
    )
    connection.commit()
    connection.close()
    store = FeedbackStore(path)
    assert store._connection.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert store.pending_count() == 1 and store.next_items("bob")[0].id == 2
    with pytest.raises(ItemAlreadyLabeled):
        store.add_label(1, "bob", {"preferred": 1})


def test_the_running_open_count_matches_a_count_of_the_items(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    ids = store.add_items([_pair(i, labels_wanted=1 + i % 2) for i in range(6)])
    counted = lambda: store._connection.execute(  # noqa: E731
        "SELECT COUNT(*) FROM items WHERE labels_given < labels_wanted"
    ).fetchone()[0]
    for step, (item, labeler, choice) in enumerate(
        [(ids[0], "ann", {"preferred": 0}), (ids[1], "ann", {"skip": True}), (ids[1], "bob", {"tie": True})]
        + [(ids[1], "cat", {"preferred": 1}), (ids[2], "bob", {"preferred": 1})]
    ):
        store.add_label(item, labeler, choice)
        assert store.pending_count() == counted(), step
    store.undo_last("cat")
    assert store.pending_count() == counted() == 4  # items 3, 4, 5 and item 1 again
    reopened = FeedbackStore(tmp_path / "f.sqlite")
    assert reopened.pending_count() == 4 and reopened.pending_count("bob") == 3  # bob answered item 1
