import json
import os

import pytest

from rlhf_tf.data import formats, reader, records, sources

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
MIXED = os.path.join(FIXTURES, "pairwise_mixed_bad.jsonl")

EXPECTED_BAD_LINES = {
    2: ("(json)", "is not valid JSON"),
    3: ("rejected", "is missing"),
    4: ("chosen", "must be a string, got int"),
    5: ("chosen", "is empty"),
    6: ("(line)", "is not valid UTF-8"),
    7: ("margin", "must be finite, got nan"),
    8: ("(record)", "is a ranking record in a file of pairwise records"),
    9: ("(line)", "longer than 2048 bytes"),
    12: ("margin", "must be finite, got inf"),
}


def test_every_bad_line_is_named_with_its_field():
    found, report = reader.read_jsonl(MIXED, on_error="collect", max_line_bytes=2048)
    assert [record.id for record in found] == ["", "", ""] and len(found) == 3
    assert report.format == "pairwise" and report.blank_lines == 1
    assert {error.line: error.field for error in report.errors} == {
        line: field for line, (field, _) in EXPECTED_BAD_LINES.items()
    }
    for error in report.errors:
        assert EXPECTED_BAD_LINES[error.line][1] in error.message
        assert str(error).startswith(f"{MIXED}, line {error.line}, field '{error.field}': ")


def test_the_first_bad_line_stops_reading_by_default():
    with pytest.raises(reader.DataError, match=r"pairwise_mixed_bad\.jsonl, line 2, field '\(json\)'") as caught:
        reader.read_jsonl(MIXED, max_line_bytes=2048)
    assert "--skip_bad_records" in str(caught.value)


def test_skipped_lines_are_copied_verbatim_with_reasons(tmp_path):
    loaded, stats = sources.load_records(MIXED, skip_bad_records=True, output_dir=tmp_path, max_line_bytes=2048)
    assert stats == {"data/records": 3, "data/rejected_records": 9}
    rejected = [json.loads(line) for line in (tmp_path / "rejected_records.jsonl").read_text().splitlines()]
    assert [entry["line"] for entry in rejected] == sorted(EXPECTED_BAD_LINES)
    raw_lines = open(MIXED, "rb").read().split(b"\n")
    import base64

    for entry in rejected:
        original = raw_lines[entry["line"] - 1]
        copied = entry["text"].encode("utf-8") if "text" in entry else base64.b64decode(entry["text_base64"])
        assert copied == original, entry["line"]
        assert entry["reason"] and entry["field"] == EXPECTED_BAD_LINES[entry["line"]][0]


def test_long_lines_are_not_read_whole(tmp_path):
    path = tmp_path / "long.jsonl"
    good = json.dumps({"prompt": "p", "completion": "c"})
    path.write_bytes((good + "\n" + "y" * 5_000_000 + "\n" + good).encode())
    loaded, report = reader.read_jsonl(path, on_error="collect", max_line_bytes=4096)
    assert len(loaded) == 2 and [error.line for error in report.errors] == [2]


def test_hh_transcripts_split_at_the_last_assistant_turn():
    loaded, report = reader.read_jsonl(os.path.join(FIXTURES, "hh_transcripts.jsonl"))
    assert report.format == "transcript" and len(loaded) == 12
    first = loaded[0]
    assert first.prompt.endswith("\n\nHuman: And soap?\n\nAssistant:")
    assert first.prompt.startswith("\n\nHuman: How do I clean a cast iron pan, attempt 0?")
    assert first.chosen == " A little mild soap is fine; dry it and oil it after."
    assert first.rejected == " Never touch it."


def test_transcripts_that_do_not_share_the_dialogue_are_rejected():
    obj = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: z\n\nAssistant: b"}
    with pytest.raises(formats.FieldError, match="does not share the chosen dialogue"):
        formats.parse(obj, "transcript")


def test_chat_pairs_and_chat_demonstrations():
    chat = {
        "prompt": [{"role": "user", "content": "Is this charger good?"}],
        "chosen": [{"role": "assistant", "content": "Yes, it charges fast."}],
        "rejected": [{"role": "assistant", "content": "No idea."}],
    }
    assert formats.detect_format(chat) == "chat"
    record = formats.parse(chat, "chat")
    assert record.prompt == "\n\nHuman: Is this charger good?\n\nAssistant:"
    assert record.chosen == " Yes, it charges fast." and record.rejected == " No idea."
    demo = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
    assert formats.parse(demo, formats.detect_format(demo)) == records.Demonstration(
        prompt="\n\nHuman: Hi\n\nAssistant:", completion=" Hello!"
    )
    with pytest.raises(formats.FieldError, match=r"messages\[1\]\.role"):
        formats.parse(
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "x"}]}, "demonstration"
        )


def test_rankings_from_indices_or_scores_come_out_best_first():
    by_index = formats.parse({"prompt": "p", "responses": ["a", "b", "c"], "ranking": [2, 0, 1]}, "ranking")
    assert by_index.responses == ("c", "a", "b")
    by_score = formats.parse({"prompt": "p", "responses": ["a", "b", "c"], "scores": [0.1, 0.9, 0.5]}, "ranking")
    assert by_score.responses == ("b", "c", "a") and by_score.scores == (0.9, 0.5, 0.1)
    with pytest.raises(formats.FieldError, match="permutation"):
        formats.parse({"prompt": "p", "responses": ["a", "b"], "ranking": [1, 1]}, "ranking")


def test_ties_ratings_prompts_and_segments():
    tie = formats.parse({"prompt": "p", "chosen": "a", "rejected": "b", "tie": True, "margin": 0.5}, "pairwise")
    assert tie.tie and tie.margin == 0.5
    with pytest.raises(formats.FieldError, match="margin"):
        formats.parse({"prompt": "p", "chosen": "a", "rejected": "b", "margin": -1}, "pairwise")
    assert formats.parse({"prompt": "p", "response": "r", "score": 1}, "rating").score == 1.0
    with pytest.raises(formats.FieldError, match="score"):
        formats.parse({"prompt": "p", "response": "r", "score": "high"}, "rating")
    assert formats.parse({"prompt": "Write:"}, "prompt") == records.Prompt("Write:")
    segment = {"observations": [[0.0, 1.0], [0.5, 1.5]], "actions": [0, 1]}
    record = formats.parse({"segment_1": segment, "segment_2": segment, "label": 1}, "segments")
    assert record.observations_1 == ((0.0, 1.0), (0.5, 1.5)) and record.actions_2 == (0.0, 1.0)
    with pytest.raises(formats.FieldError, match="label"):
        formats.parse({"segment_1": segment, "segment_2": segment, "label": 2}, "segments")
    with pytest.raises(formats.FieldError, match=r"segment_1\.actions"):
        formats.parse(
            {"segment_1": {"observations": [[0.0]], "actions": [0, 1]}, "segment_2": segment, "label": 0}, "segments"
        )


def test_forced_format_and_unknown_shapes(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(reader.DataError, match="is a pairwise record in a file of rating records"):
        reader.read_jsonl(path, format="rating")
    with pytest.raises(formats.FieldError, match="no known shape"):
        formats.detect_format({"question": "?"})


def test_jsonl_writer_round_trips_every_kind(tmp_path):
    originals = [
        records.Comparison("p", "a", "b", margin=1.5, tie=False, id="x1"),
        records.Comparison("p", "a", "b", tie=True),
    ]
    reader.write_jsonl(tmp_path / "c.jsonl", originals)
    assert reader.read_jsonl(tmp_path / "c.jsonl")[0] == originals
    ranking = [records.Ranking("p", ("best", "worse"), scores=(2.0, 1.0))]
    reader.write_jsonl(tmp_path / "r.jsonl", ranking)
    assert reader.read_jsonl(tmp_path / "r.jsonl")[0] == ranking
