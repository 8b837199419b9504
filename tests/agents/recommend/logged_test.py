import json

import numpy as np
import pytest

from rlhf_tf.agents.recommend import bandits, feedback, logged
from rlhf_tf.agents.recommend import run as recommend_run
from rlhf_tf.data import reader
from rlhf_tf.envs import recommend

WORLD = recommend.make_world(0)


def _visits(count, seed=0):
    return recommend.draw_visits(WORLD, count, np.random.default_rng(seed))


def _slate_records(count, seed=0):
    visits = _visits(count, seed)
    rng = np.random.default_rng(seed + 1)
    uniform = np.full(visits.candidates.shape, 1.0 / visits.candidates.shape[1])
    first, second = feedback.sample_lists(uniform, 5, rng), feedback.sample_lists(uniform, 5, rng)
    return visits, first, second, feedback.slate_choices(WORLD, visits, first, second, rng)


def test_records_written_and_read_back_give_the_examples_of_the_simulated_visits(tmp_path):
    visits, first, second, records = _slate_records(30)
    path = tmp_path / "slates.jsonl"
    logged.write(path, records)
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == {"context", "first", "second", "preferred"} and line["preferred"] in ("first", "second")
    assert line["first"] == [int(i) for i in visits.candidates[0, first[0]]]
    assert "user" not in json.dumps(line)  # the learner never sees who the person is
    back, report = logged.read(path, "slates", WORLD, slate_size=5)
    assert report.records == 30 and report.rejected == 0
    examples = logged.examples(WORLD, "slates", back)
    observations = visits.observations(WORLD)
    # The features a learner gets from the file are those of the simulated visit (the user never enters them).
    np.testing.assert_array_equal(examples["global"], observations["global"])
    np.testing.assert_array_equal(examples["first"], np.take_along_axis(observations["per_arm"], first[:, :, None], 1))
    assert examples["preferred"].tolist() == [r["preferred"] for r in records]


BAD_LINES = [
    ("slates", {"first": [1, 2, 3, 4], "second": [5, 6, 7, 8, 9], "preferred": "first"}, "first", "has 4 items"),
    ("slates", {"first": [1, 2, 3, 4, 250], "second": [5, 6, 7, 8, 9], "preferred": "first"}, "first[4]", "item 250"),
    ("slates", {"first": [1, 2, 3, 4, 5], "second": [5, 6, 7, 8, 9], "preferred": "left"}, "preferred", "'left'"),
    ("ratings", {"item": 3, "rating": 7}, "rating", "from 1 to 5, got 7"),
    ("ratings", {"item": 3, "rating": 2.5}, "rating", "from 1 to 5"),
    ("clicks", {"slate": [1, 2, 3, 4, 5], "clicks": [0, 1, 0, 2, 0]}, "clicks", "0 or 1"),
    ("logs", {"candidates": list(range(20)), "action": 3, "click": 1}, "propensity", "is missing"),
    ("logs", {"candidates": list(range(20)), "action": 3, "propensity": 0.0, "click": 1}, "propensity", "(0, 1]"),
    ("logs", {"candidates": list(range(20)), "action": 33, "propensity": 0.1, "click": 1}, "action", "not among"),
    ("logs", {"candidates": list(range(19)), "action": 3, "propensity": 0.1, "click": 1}, "candidates", "has 19"),
]


@pytest.mark.parametrize("kind, record, field, message", BAD_LINES)
def test_a_bad_line_is_refused_with_file_line_and_field(tmp_path, kind, record, field, message):
    good = {"context": logged.context_json(WORLD.visit(np.random.default_rng(0)))}
    good.update(
        {
            "slates": {"first": [1, 2, 3, 4, 5], "second": [5, 6, 7, 8, 9], "preferred": "second"},
            "ratings": {"item": 3, "rating": 4},
            "clicks": {"slate": [1, 2, 3, 4, 5], "clicks": [0, 1, 0, 0, 0]},
            "logs": {"candidates": list(range(20)), "action": 3, "propensity": 0.1, "click": 1, "rating": 4},
        }[kind]
    )
    bad = {"context": good["context"], **record}
    path = tmp_path / "feedback.jsonl"
    path.write_text("\n".join(json.dumps(obj) for obj in (good, good, bad, good)) + "\n")
    with pytest.raises(reader.DataError) as raised:
        logged.read(path, kind, WORLD, slate_size=5)
    text = str(raised.value)
    assert f"{path}, line 3, field '{field}'" in text and message in text, text
    # Skipped instead: the other lines are read and the bad one is kept, verbatim with its reason.
    rejected = reader.RejectedRecords(tmp_path / "rejected_records.jsonl")
    records, report = logged.read(path, kind, WORLD, slate_size=5, rejected=rejected)
    rejected.close()
    assert len(records) == 3 and report.rejected == 1
    kept = json.loads((tmp_path / "rejected_records.jsonl").read_text())
    assert kept["line"] == 3 and kept["field"] == field and json.loads(kept["text"]) == bad


def test_a_record_of_another_kind_and_a_bad_context_are_named(tmp_path):
    context = {"time": "evening", "device": "phone", "recent_genres": ["drama", "comedy", "drama"]}
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"context": context, "item": 3, "rating": 4}) + "\n")
    with pytest.raises(reader.DataError, match=r"line 1, field '\(record\)': is a ratings record in a file of slates"):
        logged.read(path, "slates", WORLD, slate_size=5)
    path.write_text(
        json.dumps({"context": {**context, "recent_genres": ["drama", "jazz", "drama"]}, "item": 3, "rating": 4})
    )
    with pytest.raises(reader.DataError, match=r"field 'context.recent_genres\[1\]': must be one of .* got 'jazz'"):
        logged.read(path, "ratings", WORLD, slate_size=5)


def test_a_run_trains_on_a_people_file_and_estimates_from_a_log_file_skipping_bad_lines(tmp_path):
    _, _, _, records = _slate_records(300, seed=3)
    feedback_file = tmp_path / "people.jsonl"
    logged.write(feedback_file, records)
    with open(feedback_file, "a") as handle:
        bad = logged.to_json(records[0])
        handle.write(json.dumps({**bad, "context": {**bad["context"], "time": "noon"}}) + "\n")
    visits = _visits(3000, seed=4)
    rng = np.random.default_rng(5)
    behaviour = feedback.behaviour_probabilities(WORLD, visits)
    actions = feedback.sample_lists(behaviour, 1, rng)[:, 0]
    logs = [
        {
            "visit": v,
            "candidates": c,
            "action": int(a),
            "propensity": float(mu[a]),
            "click": int(recommend.clicks(WORLD, v, [c[a]], rng)[0]),
        }
        for v, c, a, mu in zip(visits.visits, visits.candidates, actions, behaviour)
    ]
    log_file = tmp_path / "logs.jsonl"
    logged.write(log_file, logs)
    with open(log_file, "a") as handle:  # a log without its propensity cannot be weighed
        handle.write(json.dumps({k: v for k, v in logged.to_json(logs[0]).items() if k != "propensity"}) + "\n")
    config = recommend_run.RecommendConfig(
        output_dir=str(tmp_path / "run"),
        rounds=1,
        num_labels=300,
        eval_visits=300,
        oracle=False,
        bandit=bandits.BanditHyperparameters(steps=80),
        feedback_file=str(feedback_file),
        off_policy_file=str(log_file),
        off_policy_logs=2000,
        skip_bad_records=True,
        seed=2,
    )
    metrics = recommend_run.train_recommender(config)
    assert metrics["labels"] == 300 and metrics["rejected/slates"] == 1 and metrics["rejected/logs"] == 1
    kept = [json.loads(line) for line in (tmp_path / "run" / "rejected_records.jsonl").read_text().splitlines()]
    assert [(entry["file"], entry["line"], entry["field"]) for entry in kept] == [
        (str(feedback_file), 301, "context.time"),
        (str(log_file), 3001, "propensity"),
    ]
    assert (tmp_path / "run" / "labels" / "round-0.jsonl").read_text() == "".join(
        line + "\n" for line in feedback_file.read_text().splitlines()[:-1]
    )
    # Only clicks were logged: the table estimates click-through alone, for learned, random and popularity.
    table = (tmp_path / "run" / "off_policy" / "table.md").read_text()
    assert "| click | random |" in table and "rating" not in table.split("\n", 2)[2]
    assert metrics["learned/satisfaction"] > metrics["random/satisfaction"] + 0.1
    # Without --skip_bad_records the bad line stops the run, naming it.
    with pytest.raises(reader.DataError, match=r"people.jsonl, line 301, field 'context.time'"):
        recommend_run.train_recommender(
            recommend_run.RecommendConfig(
                **{**config.__dict__, "output_dir": str(tmp_path / "b"), "skip_bad_records": False}
            )
        )
