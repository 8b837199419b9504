"""`rlhf-tf convert-data`: convert feedback data between JSON Lines and TFRecord shards.

JSONL (any accepted shape) -> TFRecord shards of `tf.train.Example` when --output does not end in `.jsonl`;
TFRecord shards -> JSONL in canonical shapes when it does.
"""

import os

from absl import flags

from rlhf_tf.bin import runner

_DATA = flags.DEFINE_string("data", None, "Input: JSONL file(s) (comma-separated), TFRecord shards, or a glob.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "Output: a .jsonl file, or a prefix for shards named PREFIX-00000-of-0000N.tfrecord[.gz]."
)
_FORMAT = flags.DEFINE_enum(
    "format",
    None,
    ["pairwise", "transcript", "chat", "ranking", "rating", "demonstration", "prompt", "segments"],
    "Force the input JSONL shape.",
)
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Number of TFRecord shards to write.")
_COMPRESSION = flags.DEFINE_enum("compression", "", ["", "GZIP"], "TFRecord compression.")
_SKIP_BAD_RECORDS = flags.DEFINE_bool(
    "skip_bad_records", False, "Skip bad input lines (copied with reasons to rejected_records.jsonl beside --output)."
)
flags.mark_flags_as_required(["data", "output"])


def convert(data, output, format=None, num_shards=1, compression="", skip_bad_records=False):
    """Converts and returns a one-line summary."""
    from rlhf_tf import training
    from rlhf_tf.data import reader, sources, tfrecord

    output_dir = os.path.dirname(os.path.abspath(output))
    records, stats = sources.load_records(data, format, skip_bad_records=skip_bad_records, output_dir=output_dir)
    if output.endswith(".jsonl"):
        count = reader.write_jsonl(output, records)
        written = output
    else:
        paths, count = tfrecord.write_tfrecords(records, output, num_shards=num_shards, compression=compression)
        written = f"{len(paths)} shard{'s' if len(paths) > 1 else ''} ({paths[0]} ...)"
    summary = f"wrote {count} records to {written}"
    if stats["data/rejected_records"]:
        summary += (
            f"; skipped {stats['data/rejected_records']} bad records "
            f"(see {training.RunPaths(output_dir).rejected_records_path})"
        )
    return summary


def main(argv):
    del argv
    print(
        convert(
            _DATA.value, _OUTPUT.value, _FORMAT.value, _NUM_SHARDS.value, _COMPRESSION.value, _SKIP_BAD_RECORDS.value
        )
    )


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
