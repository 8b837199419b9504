import pytest
import tensorflow_datasets as tfds

from rlhf_tf.data import reader, records, sources, tfds_builder
from rlhf_tf.errors import UserInputError


def _prepare(tmp_path, kind, train, test=None):
    manual = tmp_path / "manual"
    reader.write_jsonl(manual / "train-part1.jsonl", train)
    if test:
        reader.write_jsonl(manual / "test.jsonl", test)
    download_config = tfds.download.DownloadConfig(manual_dir=str(manual))
    return tfds.load(
        f"{tfds_builder.NAME}/{kind}",
        split="train",
        data_dir=str(tmp_path / "tfds"),
        download_and_prepare_kwargs={"download_config": download_config},
    )


def test_tfds_round_trip_gives_back_exactly_the_records(tmp_path):
    train = [
        records.Comparison("Review:", "Great.", "Awful.", margin=0.5, id="a"),
        records.Comparison("", "ünïcode ✓", "x", tie=True),
    ]
    test = [records.Comparison("p", "c", "r")]
    _prepare(tmp_path, "comparison", train, test)
    data_dir = str(tmp_path / "tfds")
    back = list(sources.iter_records(f"tfds:{tfds_builder.NAME}/comparison", tfds_data_dir=data_dir))
    assert sorted(back, key=repr) == sorted(train, key=repr)
    back_test = list(sources.iter_records(f"tfds:{tfds_builder.NAME}/comparison:test", tfds_data_dir=data_dir))
    assert back_test == test


def test_tfds_rankings_round_trip(tmp_path):
    train = [records.Ranking("p", ("best", "mid", "worst")), records.Ranking("q", ("a", "b"), scores=(2.0, 1.0))]
    _prepare(tmp_path, "ranking", train)
    back = list(sources.iter_records(f"tfds:{tfds_builder.NAME}/ranking", tfds_data_dir=str(tmp_path / "tfds")))
    assert sorted(back, key=repr) == sorted(train, key=repr)


def test_a_bad_line_stops_the_build_with_its_line_number(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "train.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p"}\n')
    with pytest.raises(reader.DataError, match=r"train\.jsonl, line 2"):
        tfds.load(
            f"{tfds_builder.NAME}/comparison",
            data_dir=str(tmp_path / "tfds"),
            download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(manual_dir=str(manual))},
        )


def test_unprepared_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(UserInputError, match="not prepared"):
        list(sources.iter_records(f"tfds:{tfds_builder.NAME}/rating", tfds_data_dir=str(tmp_path)))
