"""One entry point for feedback data wherever it lives: JSON Lines, TFRecord shards, or a TFDS dataset.

A data spec is a path to a `.jsonl` file, TFRecord shards (a `.tfrecord[.gz]` file, a glob, or a directory), or
`tfds:NAME[/CONFIG][:SPLIT]` for a tensorflow-datasets dataset (with `tfds_data_dir`).
"""

import os

from rlhf_tf.data import reader, tfrecord
from rlhf_tf.errors import UserInputError
from rlhf_tf.training.run_directory import RunPaths


def is_tfds(spec):
    return isinstance(spec, str) and spec.startswith("tfds:")


def split_specs(spec):
    """A comma-separated spec string as a list of specs (lists pass through)."""
    if isinstance(spec, (list, tuple)):
        return [os.fspath(item) for item in spec]
    return [item for item in os.fspath(spec).split(",") if item]


def iter_records(
    spec,
    format=None,
    on_error="raise",
    rejected=None,
    max_line_bytes=reader.DEFAULT_MAX_LINE_BYTES,
    reports=None,
    tfds_data_dir=None,
):
    """Yields the records of every source in `spec` (see the module docstring), in order."""
    for item in split_specs(spec):
        if is_tfds(item):
            # Only for tfds: specs: tensorflow-datasets takes seconds to import, and most runs never need it.
            from rlhf_tf.data import tfds_builder

            yield from tfds_builder.iter_tfds_records(item, data_dir=tfds_data_dir)
        elif tfrecord.is_tfrecord(item):
            yield from tfrecord.iter_tfrecords(item)
        else:
            report = reader.ReadReport(item)
            if reports is not None:
                reports.append(report)
            yield from reader.iter_jsonl(item, format, on_error, rejected, max_line_bytes, report)


def load_records(
    spec,
    format=None,
    skip_bad_records=False,
    output_dir=None,
    kind=None,
    max_line_bytes=reader.DEFAULT_MAX_LINE_BYTES,
    tfds_data_dir=None,
):
    """Reads all records of `spec` into a list, applying the bad-input contract.

    Args:
      spec: the data spec(s).
      format: force a JSONL shape (`formats.FORMATS`).
      skip_bad_records: skip bad lines instead of stopping; they go to `<output_dir>/rejected_records.jsonl`.
      output_dir: where the rejected-records file goes (needed with `skip_bad_records`).
      kind: the record kind the caller needs ("comparison", ...); other kinds raise a clear error.

    Returns:
      (records, stats) where stats is {"data/records": n, "data/rejected_records": m}.
    """
    if skip_bad_records and output_dir is None:
        raise UserInputError("`skip_bad_records` needs an output directory for rejected_records.jsonl.")
    reports = []
    rejected = reader.RejectedRecords(RunPaths(output_dir).rejected_records_path) if skip_bad_records else None
    try:
        loaded = list(
            iter_records(
                spec, format, "skip" if skip_bad_records else "raise", rejected, max_line_bytes, reports, tfds_data_dir
            )
        )
    finally:
        if rejected is not None:
            rejected.close()
    if kind is not None:
        wrong = {record.kind for record in loaded} - {kind}
        if wrong:
            raise UserInputError(f"This command needs {kind} records; the data holds {sorted(wrong)}. Received: {spec}")
    if not loaded:
        raise UserInputError(f"No records in the data. Received: {spec}")
    stats = {"data/records": len(loaded), "data/rejected_records": rejected.count if rejected else 0}
    return loaded, stats
