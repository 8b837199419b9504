"""Benchmark: comparisons per second delivered by the preference pipeline from TFRecord shards.

Target (issue: data): at least 20,000 pairs/s, byte tokenized, seq_len 128, batch 64, on a 2-core machine. In the
same run, a plain Python loop does the same work (parse the examples, encode to bytes, truncate by the same rule,
pad to the same buckets into NumPy arrays), for scale.

usage: python benchmarks/preference_pipeline.py [--pairs=40000] [--batches=600]
"""

import argparse
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (first: routes tf.keras before TensorFlow loads)

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.data import pipelines, records, tfrecord  # noqa: E402

SEQ_LEN, BATCH, MAX_PROMPT = 128, 64, 64
WORDS = "the this sound battery screen plot acting great poor solid cheap loud quiet fast slow works broke love".split()


def make_pairs(count, seed=0):
    generator = random.Random(seed)

    def text(low, high):
        return " ".join(generator.choice(WORDS) for _ in range(generator.randint(low, high)))

    return [records.Comparison(f"Review of the {text(1, 6)}:", text(6, 30), text(6, 30)) for _ in range(count)]


def pipeline_pairs_per_second(files, batches):
    config = pipelines.PipelineConfig(seq_len=SEQ_LEN, max_prompt_tokens=MAX_PROMPT, batch_size=BATCH)
    source = pipelines.TextSource(files, "comparison")
    dataset = pipelines.preference_dataset_fn(source, config)(None)
    iterator = iter(dataset)
    for _ in range(20):  # warm up: fill the shuffle buffer, trace the functions
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    batch["token_ids"].numpy()
    return batches * BATCH / (time.perf_counter() - started), batch


def python_pairs_per_second(files, batches):
    buckets = pipelines.PipelineConfig(seq_len=SEQ_LEN).bucket_lengths()
    serialized = [value for path in files for value in tf.data.TFRecordDataset(path).as_numpy_iterator()]
    started = time.perf_counter()
    delivered = 0
    index = 0
    while delivered < batches * BATCH:
        rows = []
        for _ in range(BATCH):
            record = tfrecord.from_example(serialized[index % len(serialized)])
            index += 1
            prompt = list(record.prompt.encode("utf-8"))
            for response in (record.chosen, record.rejected):
                tokens = list(response.encode("utf-8"))
                if len(prompt) + len(tokens) + 1 > SEQ_LEN:
                    keep = min(len(prompt), max(MAX_PROMPT, SEQ_LEN - 1 - len(tokens)))
                    prompt_part = prompt[len(prompt) - keep :]
                    room = SEQ_LEN - keep
                    sequence = prompt_part + tokens[:room] if len(tokens) + 1 > room else prompt_part + tokens + [256]
                else:
                    sequence = prompt + tokens + [256]
                rows.append(sequence)
        length = next(b for b in buckets if b >= max(len(row) for row in rows))
        ids = np.zeros((BATCH, 2, length), np.int32)
        mask = np.zeros((BATCH, 2, length), bool)
        for position, row in enumerate(rows):
            ids[position // 2, position % 2, : len(row)] = row
            mask[position // 2, position % 2, : len(row)] = True
        delivered += BATCH
    return delivered / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40_000)
    parser.add_argument("--batches", type=int, default=600)
    args = parser.parse_args()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        files, _ = tfrecord.write_tfrecords(make_pairs(args.pairs), os.path.join(directory, "pairs"), num_shards=4)
        rate, batch = pipeline_pairs_per_second(files, args.batches)
        shapes = {name: tuple(value.shape) for name, value in batch.items() if name in ("token_ids", "padding_mask")}
        print(f"tf.data pipeline: {rate:,.0f} pairs/s over {args.batches} batches of {BATCH} (last batch {shapes})")
        python_rate = python_pairs_per_second(files, max(20, args.batches // 10))
        print(f"plain Python loop, same work: {python_rate:,.0f} pairs/s")
    print(f"pipeline / Python: {rate / python_rate:.1f}x")
    print(f"target: at least 20,000 pairs/s -> {'PASS' if rate >= 20_000 else 'FAIL'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
