"""TFRecord shards of `tf.train.Example`: the scalable form of the same records, for data that does not fit in memory.

Every example carries its `kind`; a set of shards holds one kind. Files ending in `.gz` are GZIP-compressed.
"""

import os
import uuid

import numpy as np
import tensorflow as tf

from rlhf_tf.data import records
from rlhf_tf.errors import UserInputError

SUFFIX = ".tfrecord"


def _bytes(*values):
    return tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[v.encode("utf-8") if isinstance(v, str) else v for v in values])
    )


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _array(rows):
    array = np.asarray(rows, dtype=np.float32)
    return array.reshape(array.shape[0], -1) if array.ndim > 1 else array


def to_example(record):
    """A record as a `tf.train.Example`."""
    feature = {"kind": _bytes(record.kind), "id": _bytes(record.id)}
    if isinstance(record, records.Comparison):
        feature.update(
            prompt=_bytes(record.prompt),
            chosen=_bytes(record.chosen),
            rejected=_bytes(record.rejected),
            margin=_floats([record.margin]),
            tie=_ints([int(record.tie)]),
        )
    elif isinstance(record, records.Ranking):
        feature.update(prompt=_bytes(record.prompt), responses=_bytes(*record.responses), scores=_floats(record.scores))
    elif isinstance(record, records.Rating):
        feature.update(prompt=_bytes(record.prompt), response=_bytes(record.response), score=_floats([record.score]))
    elif isinstance(record, records.Demonstration):
        feature.update(prompt=_bytes(record.prompt), completion=_bytes(record.completion))
    elif isinstance(record, records.Prompt):
        feature.update(prompt=_bytes(record.prompt))
    elif isinstance(record, records.SegmentComparison):
        for suffix in ("1", "2"):
            for name in ("observations", "actions"):
                array = _array(getattr(record, f"{name}_{suffix}"))
                feature[f"{name}_{suffix}"] = _floats(array.ravel())
                feature[f"{name}_{suffix}_shape"] = _ints(array.shape)
            feature[f"frames_{suffix}"] = _bytes(*getattr(record, f"frames_{suffix}"))
        feature["label"] = _floats([record.label])
    else:
        raise TypeError(f"Not a record: {type(record).__name__}")
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _text(features, name):
    return features[name].bytes_list.value[0].decode("utf-8")


def _rows(features, name):
    values = list(features[name].float_list.value)
    shape = list(features[f"{name}_shape"].int64_list.value)
    if len(shape) == 1:
        return tuple(values)
    width = shape[1]
    return tuple(tuple(values[start : start + width]) for start in range(0, len(values), width))


def from_example(example):
    """The record a `tf.train.Example` (or its serialized bytes) holds."""
    if isinstance(example, bytes):
        example = tf.train.Example.FromString(example)
    features = example.features.feature
    kind = _text(features, "kind")
    identifier = _text(features, "id")
    if kind == "comparison":
        return records.Comparison(
            prompt=_text(features, "prompt"),
            chosen=_text(features, "chosen"),
            rejected=_text(features, "rejected"),
            margin=float(features["margin"].float_list.value[0]),
            tie=bool(features["tie"].int64_list.value[0]),
            id=identifier,
        )
    if kind == "ranking":
        return records.Ranking(
            prompt=_text(features, "prompt"),
            responses=tuple(value.decode("utf-8") for value in features["responses"].bytes_list.value),
            scores=tuple(float(value) for value in features["scores"].float_list.value),
            id=identifier,
        )
    if kind == "rating":
        return records.Rating(
            prompt=_text(features, "prompt"),
            response=_text(features, "response"),
            score=float(features["score"].float_list.value[0]),
            id=identifier,
        )
    if kind == "demonstration":
        return records.Demonstration(
            prompt=_text(features, "prompt"), completion=_text(features, "completion"), id=identifier
        )
    if kind == "prompt":
        return records.Prompt(prompt=_text(features, "prompt"), id=identifier)
    if kind == "segment_comparison":
        return records.SegmentComparison(
            observations_1=_rows(features, "observations_1"),
            actions_1=_rows(features, "actions_1"),
            observations_2=_rows(features, "observations_2"),
            actions_2=_rows(features, "actions_2"),
            label=float(features["label"].float_list.value[0]),
            frames_1=tuple(features["frames_1"].bytes_list.value),
            frames_2=tuple(features["frames_2"].bytes_list.value),
            id=identifier,
        )
    raise UserInputError(f"Unknown record kind in TFRecord example. Received: kind={kind!r}")


def compression_of(path):
    return "GZIP" if os.fspath(path).endswith(".gz") else ""


def shard_paths(prefix, num_shards, compression=""):
    suffix = SUFFIX + (".gz" if compression == "GZIP" else "")
    return [f"{prefix}-{index:05d}-of-{num_shards:05d}{suffix}" for index in range(num_shards)]


def write_tfrecords(records_iterable, prefix, num_shards=1, compression=""):
    """Writes records round-robin into `num_shards` shard files, each atomically; returns (paths, count).

    Args:
      records_iterable: records of one kind.
      prefix: shards are named `<prefix>-00000-of-00004.tfrecord` (`.tfrecord.gz` with GZIP).
      compression: "" or "GZIP".
    """
    if num_shards < 1:
        raise UserInputError(f"`num_shards` must be >= 1. Received: num_shards={num_shards}")
    if compression not in ("", "GZIP"):
        raise UserInputError(f"`compression` must be '' or 'GZIP'. Received: compression={compression!r}")
    paths = shard_paths(prefix, num_shards, compression)
    directory = os.path.dirname(os.fspath(prefix))
    if directory:
        tf.io.gfile.makedirs(directory)
    token = uuid.uuid4().hex
    temporaries = [f"{path}.tmp-{token}" for path in paths]
    options = tf.io.TFRecordOptions(compression_type=compression)
    writers = [tf.io.TFRecordWriter(path, options) for path in temporaries]
    count, kind = 0, None
    try:
        for record in records_iterable:
            if kind is None:
                kind = record.kind
            elif record.kind != kind:
                raise UserInputError(
                    f"A set of TFRecord shards holds one record kind; got {record.kind} after {kind}. "
                    f"Received: record {count}"
                )
            writers[count % num_shards].write(to_example(record).SerializeToString())
            count += 1
    except BaseException:
        for writer, temporary in zip(writers, temporaries):
            writer.close()
            tf.io.gfile.remove(temporary)
        raise
    for writer, temporary, path in zip(writers, temporaries, paths):
        writer.close()
        tf.io.gfile.rename(temporary, path, overwrite=True)
    return paths, count


def resolve_files(spec):
    """The TFRecord files a spec names: a file, a glob, a directory of shards, or a list of these."""
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    found = []
    for item in specs:
        item = os.fspath(item)
        if tf.io.gfile.isdir(item):
            found += sorted(tf.io.gfile.glob(os.path.join(item, f"*{SUFFIX}")))
            found += sorted(tf.io.gfile.glob(os.path.join(item, f"*{SUFFIX}.gz")))
        elif any(character in item for character in "*?["):
            found += sorted(tf.io.gfile.glob(item))
        elif tf.io.gfile.exists(item):
            found.append(item)
    if not found:
        raise UserInputError(f"No TFRecord files found. Received: {spec}")
    return found


def is_tfrecord(spec):
    """True when a data spec names TFRecord shards rather than JSON Lines."""
    specs = spec if isinstance(spec, (list, tuple)) else [spec]
    first = os.fspath(specs[0])
    if first.endswith((SUFFIX, SUFFIX + ".gz")) or "*" in first:
        return True
    return tf.io.gfile.isdir(first)


def iter_tfrecords(spec):
    """Yields the records of TFRecord shards, file by file."""
    for path in resolve_files(spec):
        dataset = tf.data.TFRecordDataset(path, compression_type=compression_of(path))
        for serialized in dataset.as_numpy_iterator():
            yield from_example(serialized)


def peek_kind(spec):
    """The record kind of a set of shards, from its first example."""
    for path in resolve_files(spec):
        dataset = tf.data.TFRecordDataset(path, compression_type=compression_of(path))
        for serialized in dataset.take(1).as_numpy_iterator():
            return from_example(serialized).kind
    raise UserInputError(f"The TFRecord files hold no records. Received: {spec}")


# Feature specs for parsing batches of serialized examples inside tf.data (text kinds).
FEATURE_SPECS = {
    "comparison": {
        "prompt": tf.io.FixedLenFeature([], tf.string),
        "chosen": tf.io.FixedLenFeature([], tf.string),
        "rejected": tf.io.FixedLenFeature([], tf.string),
        "margin": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        "tie": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    },
    "ranking": {
        "prompt": tf.io.FixedLenFeature([], tf.string),
        "responses": tf.io.RaggedFeature(tf.string),
    },
    "rating": {
        "prompt": tf.io.FixedLenFeature([], tf.string),
        "response": tf.io.FixedLenFeature([], tf.string),
        "score": tf.io.FixedLenFeature([], tf.float32),
    },
    "demonstration": {
        "prompt": tf.io.FixedLenFeature([], tf.string),
        "completion": tf.io.FixedLenFeature([], tf.string),
    },
    "prompt": {"prompt": tf.io.FixedLenFeature([], tf.string)},
}


def parse_batch(serialized, kind):
    """Parses a [batch] string tensor of serialized examples into a dict of batched tensors."""
    if kind not in FEATURE_SPECS:
        raise UserInputError(f"No tf.data parser for {kind} records. Received: kind={kind!r}")
    return tf.io.parse_example(serialized, FEATURE_SPECS[kind])
