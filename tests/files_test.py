import json
import math

from rlhf_tf import files


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "metrics.json"
    files.atomic_write_json(target, {"a/b": 1.5})
    files.atomic_write_json(target, {"a/b": 2.5, "bad": math.nan})
    assert json.loads(target.read_text()) == {"a/b": 2.5, "bad": "nan"}
    assert [path.name for path in target.parent.iterdir()] == ["metrics.json"]


def test_numpy_and_tensor_scalars_become_numbers(tmp_path):
    import numpy as np
    import tensorflow as tf

    files.atomic_write_json(tmp_path / "m.json", {"x": np.float32(0.5), "y": tf.constant(3), "z": [np.int64(2)]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"x": 0.5, "y": 3, "z": [2]}


def test_read_json_of_a_missing_file_is_none(tmp_path):
    assert files.read_json(tmp_path / "absent.json") is None
