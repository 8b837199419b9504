import pytest

from rlhf_tf.errors import UserInputError
from rlhf_tf.feedback import labeling_round
from rlhf_tf.feedback import store as store_lib


def _pair(source, prompt):
    return store_lib.Item("comparison", (f"{prompt} good", f"{prompt} bad"), prompt=prompt, source=source)


def test_a_round_asks_answers_and_reads_back_only_its_own_items(tmp_path):
    with store_lib.FeedbackStore(tmp_path / "feedback.sqlite") as store:
        mine = labeling_round.LabelingRound(store, "run-a", "comparison")
        other = labeling_round.LabelingRound(store, "run-b", "comparison")
        ids = mine.ask([_pair("run-a", "p1"), _pair("run-a", "p2"), _pair("run-a", "p3")])
        (other_id,) = other.ask([_pair("run-b", "q1")])
        assert [item.id for item in mine.open_items()] == ids and mine.asked_count() == 3
        # The other run's item is answered by someone else first: this round's answers never include it.
        store.add_label(other_id, "ann", {"preferred": 0})
        answered = mine.answer("simulated", ids, [{"preferred": 1}, {"tie": True}, {"skip": True}])
        assert answered == 3
        assert [item.id for item in mine.open_items()] == [ids[2]]  # a skip leaves the item open
        last, answers = mine.answers()
        # Skips are passed over; a tie is target 0.5, "second preferred" target 1.0.
        assert [(item.id, target) for item, _, target in answers] == [(ids[0], 1.0), (ids[1], 0.5)]
        assert last == answers[-1][1].id  # the newest non-skip label read (skips are not read at all)
        assert mine.answers(since_label_id=last) == (last, [])
        records = mine.records()
        assert [record.chosen for record in records] == ["p1 bad", "p2 good"] and records[1].tie
        assert [record.prompt for record in mine.records([ids[0]])] == ["p1"]
        assert mine.withdrawn([label.id for _, label, _ in answers]) == 0
        store.undo_last("simulated")  # the skip
        store.undo_last("simulated")  # the tie
        assert mine.withdrawn([label.id for _, label, _ in answers]) == 1


def test_a_simulated_answer_to_an_item_answered_first_by_a_person_is_left_out(tmp_path):
    with store_lib.FeedbackStore(tmp_path / "feedback.sqlite") as store:
        questions = labeling_round.LabelingRound(store, "run", "comparison")
        (item_id,) = questions.ask([_pair("run", "p")])
        store.add_label(item_id, "ann", {"preferred": 0})
        assert questions.answer("simulated", [item_id], [{"preferred": 1}]) == 0
        assert [label.labeler for label in store.labels()] == ["ann"]


def test_people_answer_within_the_timeout_or_the_round_goes_on(tmp_path):
    with store_lib.FeedbackStore(tmp_path / "feedback.sqlite") as store:
        questions = labeling_round.LabelingRound(store, "run", "comparison", labeler="web", timeout=0.0)
        ids = questions.ask([_pair("run", "p1"), _pair("run", "p2")])
        assert questions.people_answer and questions.wait_for_people() == 2
        store.add_label(ids[0], "ann", {"preferred": 0})
        assert questions.wait_for_people() == 1


def test_a_round_refuses_other_runs_items_and_unknown_labelers(tmp_path):
    with store_lib.FeedbackStore(tmp_path / "feedback.sqlite") as store:
        questions = labeling_round.LabelingRound(store, "run", "comparison")
        with pytest.raises(UserInputError, match="source"):
            questions.ask([_pair("another-run", "p")])
        with pytest.raises(UserInputError, match="kind"):
            questions.ask([store_lib.Item("rating", ("r",), source="run")])
        with pytest.raises(UserInputError, match="labeler"):
            labeling_round.LabelingRound(store, "run", "comparison", labeler="crowd")
