import os
import subprocess
import sys

from rlhf_tf.data import reader, tfrecord

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "data", "fixtures")


def _cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "rlhf_tf.bin.cli", *arguments], capture_output=True, text=True, timeout=300
    )


def test_validate_data_names_every_bad_line_and_exits_2():
    path = os.path.join(FIXTURES, "pairwise_mixed_bad.jsonl")
    result = _cli("validate-data", f"--data={path}", "--max_line_bytes=2048")
    assert result.returncode == 2
    for line, field in [
        (2, "(json)"),
        (3, "rejected"),
        (4, "chosen"),
        (5, "chosen"),
        (6, "(line)"),
        (7, "margin"),
        (8, "(record)"),
        (9, "(line)"),
        (12, "margin"),
    ]:
        assert f"line {line}, field '{field}'" in result.stdout
    assert "3 good records (pairwise)" in result.stdout
    assert "9 bad lines" in result.stdout


def test_validate_data_on_clean_hh_layout_exits_0_with_the_count():
    result = _cli("validate-data", f"--data={os.path.join(FIXTURES, 'hh_transcripts.jsonl')}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "12 good records (transcript)" in result.stdout
    assert "comparison: 12" in result.stdout


def test_convert_data_jsonl_to_tfrecord_and_back(tmp_path):
    source = os.path.join(FIXTURES, "hh_transcripts.jsonl")
    result = _cli(
        "convert-data", f"--data={source}", f"--output={tmp_path / 'hh'}", "--num_shards=3", "--compression=GZIP"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 12 records" in result.stdout
    assert len(tfrecord.resolve_files(str(tmp_path))) == 3
    result = _cli("convert-data", f"--data={tmp_path}/hh-*", f"--output={tmp_path / 'back.jsonl'}")
    assert result.returncode == 0, result.stderr[-2000:]
    original, _ = reader.read_jsonl(source)
    back, report = reader.read_jsonl(tmp_path / "back.jsonl")
    assert report.format == "pairwise"
    assert sorted(back, key=repr) == sorted(original, key=repr)


def test_convert_data_stops_on_bad_input_or_skips_it_with_a_record(tmp_path):
    source = os.path.join(FIXTURES, "ranking_mixed_bad.jsonl")
    result = _cli("convert-data", f"--data={source}", f"--output={tmp_path / 'r'}")
    assert result.returncode == 2
    assert "ranking_mixed_bad.jsonl, line 2, field 'ranking'" in result.stderr
    result = _cli("convert-data", f"--data={source}", f"--output={tmp_path / 'r'}", "--skip_bad_records")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped 2 bad records" in result.stdout
    assert len((tmp_path / "rejected_records.jsonl").read_text().splitlines()) == 2
