"""Benchmark: steps/s of the shared training loop vs a bare tf.function GradientTape step, in one run.

Target (issue: foundation): loop overhead at most 5%. Both train the same MLP on the same tf.data pipeline with
XLA; the loop runs with its default logging and checkpoint intervals and its progress bar on. Compilation is
excluded from both (the first call). Repeats alternate the two and the median is reported.

usage: python benchmarks/train_loop.py [--steps=1500] [--repeats=3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (first: routes tf.keras before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware, testing, training  # noqa: E402

FEATURES, HIDDEN, BATCH = 256, 1024, 256


def build(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def bare_steps_per_second(x, y, steps):
    model, optimizer = build(0)
    dataset = testing.regression_dataset_fn(x, y, BATCH)(None)

    @tf.function(jit_compile=True)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch["x"], training=True) - batch["y"]))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    iterator = iter(dataset)
    step(next(iterator)).numpy()
    started = time.perf_counter()
    for _ in range(steps - 1):
        loss = step(next(iterator))
    loss.numpy()
    return (steps - 1) / (time.perf_counter() - started)


def loop_steps_per_second(x, y, steps):
    with tempfile.TemporaryDirectory() as output_dir:
        config = training.LoopConfig(steps=steps)  # default logging, checkpointing and progress bar
        loop = training.TrainLoop(config, output_dir)
        model, optimizer = build(0)

        def loss_fn(batch):
            return training.global_mean(tf.square(model(batch["x"], training=True) - batch["y"])), {}

        step = training.GradientStep(loss_fn, model.trainable_variables, optimizer, jit_compile=True)
        metrics = loop.run(
            step, testing.regression_dataset_fn(x, y, BATCH), checkpoint={"model": model, "optimizer": optimizer}
        )
        return metrics["train/steps_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    generator = np.random.default_rng(0)
    x = generator.normal(size=(8192, FEATURES)).astype(np.float32)
    y = generator.normal(size=(8192, 1)).astype(np.float32)
    parameters = FEATURES * HIDDEN + HIDDEN * HIDDEN + HIDDEN + 2 * HIDDEN + 1
    print(f"cpu: {hardware.describe_cpu()}", flush=True)
    print(f"model: MLP {FEATURES}-{HIDDEN}-{HIDDEN}-1 ({parameters:,} parameters), batch {BATCH}, Adam, XLA")
    bare, looped = [], []
    for repeat in range(args.repeats):
        # Alternate which one goes first, so that drift on a shared machine does not favour either.
        if repeat % 2 == 0:
            bare.append(bare_steps_per_second(x, y, args.steps))
            looped.append(loop_steps_per_second(x, y, args.steps))
        else:
            looped.append(loop_steps_per_second(x, y, args.steps))
            bare.append(bare_steps_per_second(x, y, args.steps))
        print(f"repeat {repeat}: bare {bare[-1]:.1f} steps/s, loop {looped[-1]:.1f} steps/s", file=sys.stderr)
    bare_median, loop_median = statistics.median(bare), statistics.median(looped)
    overhead = 1.0 - loop_median / bare_median
    print(f"bare tf.function step: {bare_median:.1f} steps/s (median of {args.repeats})")
    print(f"TrainLoop + GradientStep: {loop_median:.1f} steps/s (median of {args.repeats})")
    print(f"loop overhead: {100 * overhead:.1f}% (target: at most 5%) -> {'PASS' if overhead <= 0.05 else 'FAIL'}")


if __name__ == "__main__":
    main()
