import pytest
import tensorflow as tf

from rlhf_tf.data import records, tfrecord
from rlhf_tf.errors import UserInputError

EVERY_KIND = {
    "comparison": [
        records.Comparison("Review:", "Great sound.", "Crackles.", margin=0.5, id="a"),
        records.Comparison("Review:", "Fine.", "Also fine.", tie=True),
        records.Comparison("", "ünïcode ✓", "emoji 🎧"),
    ],
    "ranking": [records.Ranking("Rank:", ("best", "mid", "worst")), records.Ranking("R", ("x", "y"), (2.0, 1.0))],
    "rating": [records.Rating("p", "r", 6.0, id="7"), records.Rating("p", "r2", -1.5)],
    "demonstration": [records.Demonstration("Review of a lamp:", " Bright and sturdy.")],
    "prompt": [records.Prompt("Review of the blender:"), records.Prompt("Review of the film:")],
    "segment_comparison": [
        records.SegmentComparison(
            observations_1=((0.0, 1.0), (0.5, -1.0)),
            actions_1=(0.0, 1.0),
            observations_2=((1.0, 2.0), (1.5, 2.5)),
            actions_2=(1.0, 1.0),
            label=0.5,
            frames_1=(b"\x89PNG-one", b"\x89PNG-two"),
        )
    ],
}


@pytest.mark.parametrize("compression", ["", "GZIP"])
@pytest.mark.parametrize("kind", sorted(EVERY_KIND))
def test_round_trip_gives_back_exactly_the_records(tmp_path, kind, compression):
    originals = EVERY_KIND[kind] * 3
    paths, count = tfrecord.write_tfrecords(originals, str(tmp_path / kind), num_shards=2, compression=compression)
    assert count == len(originals) and len(paths) == 2
    assert all(path.endswith(".tfrecord.gz" if compression else ".tfrecord") for path in paths)
    back = list(tfrecord.iter_tfrecords(str(tmp_path / f"{kind}-*")))
    assert sorted(back, key=repr) == sorted(originals, key=repr)
    assert tfrecord.peek_kind(str(tmp_path)) == kind


def test_shards_hold_one_kind_and_leave_no_partial_files(tmp_path):
    mixed = [records.Prompt("a"), records.Rating("p", "r", 1.0)]
    with pytest.raises(UserInputError, match="one record kind"):
        tfrecord.write_tfrecords(mixed, str(tmp_path / "mixed"))
    assert list(tmp_path.iterdir()) == []


def test_batched_parsing_inside_tf_data(tmp_path):
    tfrecord.write_tfrecords(EVERY_KIND["comparison"], str(tmp_path / "c"))
    dataset = tf.data.TFRecordDataset(tfrecord.resolve_files(str(tmp_path))).batch(3)
    batch = next(iter(dataset.map(lambda serialized: tfrecord.parse_batch(serialized, "comparison"))))
    assert batch["chosen"].numpy().tolist() == [b"Great sound.", b"Fine.", "ünïcode ✓".encode()]
    assert batch["tie"].numpy().tolist() == [0, 1, 0]
    assert batch["margin"].numpy().tolist() == [0.5, 0.0, 0.0]


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(UserInputError, match="No TFRecord files found"):
        tfrecord.resolve_files(str(tmp_path / "nothing-*"))
