"""`rlhf-tf validate-data`: check feedback files before training on them.

Reports, per file, the detected shape, record counts per kind, length statistics, and every bad line with its
number and field. Exits 2 when any line is bad, 0 when the data is clean.
"""

import collections
import statistics
import sys

from absl import flags

from rlhf_tf.bin import runner

_DATA = flags.DEFINE_string("data", None, "Data to check: JSONL file(s) (comma-separated) or TFRecord shards.")
_FORMAT = flags.DEFINE_enum(
    "format",
    None,
    ["pairwise", "transcript", "chat", "ranking", "rating", "demonstration", "prompt", "segments"],
    "Force a JSONL shape instead of detecting it.",
)
_MAX_LINE_BYTES = flags.DEFINE_integer("max_line_bytes", 16 * 1024 * 1024, "Longer lines are reported as bad.")
flags.mark_flag_as_required("data")


def _texts(record):
    """(prompt, [responses]) of a text record, for length statistics."""
    if record.kind == "comparison":
        return record.prompt, [record.chosen, record.rejected]
    if record.kind == "ranking":
        return record.prompt, list(record.responses)
    if record.kind == "rating":
        return record.prompt, [record.response]
    if record.kind == "demonstration":
        return record.prompt, [record.completion]
    if record.kind == "prompt":
        return record.prompt, []
    return None, []


def _describe(lengths):
    if not lengths:
        return "-"
    ordered = sorted(lengths)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"min {ordered[0]}, median {statistics.median(ordered):g}, p95 {p95}, max {ordered[-1]}"


def validate(spec, format=None, max_line_bytes=16 * 1024 * 1024, out=sys.stdout):
    """Prints the report; returns the number of bad lines."""
    from rlhf_tf.data import reader, sources, tfrecord

    total_errors = 0
    for item in sources.split_specs(spec):
        kinds = collections.Counter()
        prompt_lengths, response_lengths = [], []
        report = reader.ReadReport(item)
        if tfrecord.is_tfrecord(item):
            iterator = tfrecord.iter_tfrecords(item)
            report.format = "tfrecord"
        else:
            iterator = reader.iter_jsonl(item, format, "collect", None, max_line_bytes, report)
        for record in iterator:
            kinds[record.kind] += 1
            prompt, responses = _texts(record)
            if prompt is not None:
                prompt_lengths.append(len(prompt))
                response_lengths.extend(len(response) for response in responses)
        count = sum(kinds.values())
        print(f"{item}: {count} good record{'s' if count != 1 else ''} ({report.format or 'no shape found'})", file=out)
        for kind, number in sorted(kinds.items()):
            print(f"  {kind}: {number}", file=out)
        if prompt_lengths:
            print(f"  prompt characters: {_describe(prompt_lengths)}", file=out)
        if response_lengths:
            print(f"  response characters: {_describe(response_lengths)}", file=out)
        if report.blank_lines:
            print(f"  blank lines ignored: {report.blank_lines}", file=out)
        if report.errors:
            print(f"  {len(report.errors)} bad line{'s' if len(report.errors) != 1 else ''}:", file=out)
            for error in report.errors:
                print(f"    {error}", file=out)
        total_errors += len(report.errors)
    return total_errors


def main(argv):
    del argv
    errors = validate(_DATA.value, _FORMAT.value, _MAX_LINE_BYTES.value)
    if errors:
        print(f"{errors} bad line{'s' if errors != 1 else ''}; see above.", file=sys.stderr)
        sys.exit(2)


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
