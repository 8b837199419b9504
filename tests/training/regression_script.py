"""Trains the testing regression problem in its own process (for kill -9 and multi-worker tests).

usage: python regression_script.py OUTPUT_DIR STEPS WEIGHTS_OUT [--strategy=multi_worker] [--no_shuffle]
Writes the final weights to WEIGHTS_OUT (.npz) and prints "step N" lines as checkpoints are written.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from rlhf_tf import files, testing, training  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("steps", type=int)
    parser.add_argument("weights_out")
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--checkpoint_every", type=int, default=200)
    parser.add_argument("--no_shuffle", action="store_true")
    args = parser.parse_args()
    strategy = training.create_strategy(args.strategy)
    config = training.LoopConfig(
        steps=args.steps, log_every=100, checkpoint_every=args.checkpoint_every, progress=False
    )
    model, metrics, _ = testing.train_regression(
        args.output_dir,
        config,
        strategy=strategy,
        dropout=0.0 if args.strategy == "multi_worker" else 0.1,
        shuffle_seed=None if args.no_shuffle else 1,
    )
    buffer = __import__("io").BytesIO()
    np.savez(buffer, *[np.array(weight) for weight in model.weights])
    files.atomic_write_bytes(args.weights_out, buffer.getvalue())
    print(f"done {metrics['regression/steps']}", flush=True)


if __name__ == "__main__":
    main()
