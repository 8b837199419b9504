"""Benchmark: reward-model training throughput and model FLOPs utilisation through the real trainer.

Target (issue: reward models): the trainer at least 0.65 of the fp32 matmul peak measured in the same run, and at
least 95% of a bare tf.function + XLA step's pairs/s on the same model and a fixed batch. Model: GPT-2 style reward
model, 4 layers, width 256, 4 heads, byte vocabulary, sequences of 128 (prompt + response truncated by the
pipeline's rule), batch 16 pairs, fp32 (and, where the CPU computes bf16 natively, mixed bf16 as a second row). The
trainer reads JSONL through the preference pipeline (tokenization, bucketing, masks), logs summaries and writes
checkpoints at its default interval. MFU = 6 x parameters x tokens per second / peak (the issue's formula); the
script also prints the share of those FLOPs the step executes (the reward model computes its last block at the
scored position only) and the hardware FLOPs utilisation that follows.

usage: python benchmarks/reward_training.py [--steps=200]
"""

import argparse
import dataclasses
import os
import random
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (first: routes tf.keras before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.data import reader, records  # noqa: E402
from rlhf_tf.models.policy import PolicyConfig, build_policy  # noqa: E402
from rlhf_tf.reward import language_model, losses, trainer  # noqa: E402

SEQ_LEN, PAIRS, LAYERS, WIDTH = 128, 16, 4, 256
MODEL = PolicyConfig(
    num_layers=LAYERS, num_heads=4, hidden_dim=WIDTH, intermediate_dim=4 * WIDTH, max_sequence_length=SEQ_LEN
)
WORDS = "the sound battery screen plot acting great poor solid cheap loud quiet fast slow works broke love".split()


def make_pairs(count, seed=0):
    rng = random.Random(seed)

    def text(words):
        return " ".join(rng.choice(WORDS) for _ in range(words))

    # Long enough that every sequence fills the 128-token bucket after truncation.
    return [records.Comparison(f"Review of the {text(8)}:", text(40), text(40)) for _ in range(count)]


def parameters(model):
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def executed_share(count):
    """The share of 6 x parameters x tokens the step's matmuls execute. The reward model reads one position per
    sequence, so its last block computes keys and values everywhere but query, attention output and feed-forward at
    that position only (`transformer.hidden_at`); attention's own score and mix products are left out of both."""
    block = 4 * WIDTH * WIDTH + 2 * WIDTH * MODEL.intermediate_dim  # QKV, attention output, feed-forward
    last_block = 2 * WIDTH * WIDTH + (block - 2 * WIDTH * WIDTH) / SEQ_LEN
    return ((LAYERS - 1) * block + last_block) / count


def bare_pairs_per_second(precision, steps):
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = language_model.LanguageRewardModel(build_policy(MODEL, 257).backbone)
    model.build()
    optimizer = keras.optimizers.AdamW(1e-4)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    batch = {
        "token_ids": tf.constant(rng.integers(1, 256, size=(PAIRS, 2, SEQ_LEN)), tf.int32),
        "padding_mask": tf.ones((PAIRS, 2, SEQ_LEN), tf.bool),
    }

    @tf.function(jit_compile=True)
    def step(batch):
        with tf.GradientTape() as tape:
            scores = model(batch, training=True)
            loss = tf.reduce_mean(losses.bradley_terry_loss(scores[:, 0], scores[:, 1]))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    step(batch).numpy()
    step(batch).numpy()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step(batch)
    loss.numpy()
    return steps * PAIRS / (time.perf_counter() - started), parameters(model)


def trainer_pairs_per_second(precision_setting, steps, directory):
    reader.write_jsonl(os.path.join(directory, "train.jsonl"), make_pairs(4000))
    reader.write_jsonl(os.path.join(directory, "eval.jsonl"), make_pairs(32, seed=1))
    base = trainer.RewardConfig(output_dir=os.path.join(directory, f"run-{precision_setting}"), train="x")
    config = dataclasses.replace(
        base,
        train=os.path.join(directory, "train.jsonl"),
        eval=os.path.join(directory, "eval.jsonl"),
        model=MODEL,
        pipeline=dataclasses.replace(base.pipeline, seq_len=SEQ_LEN, batch_size=PAIRS),
        epochs=0,
        loop=dataclasses.replace(base.loop, steps=steps, eval_every=0, progress=False),
        mixed_precision=precision_setting,
        export=False,
        strategy="default",
    )
    metrics = trainer.train_reward(config)
    return metrics["reward/steps_per_second"] * PAIRS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=200, help="steps per timed run (the trainer checkpoints every 200)"
    )
    args = parser.parse_args()
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    tokens_per_pair = 2 * SEQ_LEN
    rows = [("fp32", "float32", "float32")]
    if hardware.has_native_bf16():
        rows.append(("mixed bf16", "mixed_bfloat16", "bfloat16"))
    with tempfile.TemporaryDirectory() as directory:
        for label, policy, setting in rows:
            bare, count = bare_pairs_per_second(policy, args.steps)
            keras.mixed_precision.set_global_policy("float32")
            ours = trainer_pairs_per_second(setting, args.steps, directory)
            keras.mixed_precision.set_global_policy("float32")
            flops_per_pair = 6 * count * tokens_per_pair
            mfu_bare = bare * flops_per_pair / (peak * 1e9)
            mfu_ours = ours * flops_per_pair / (peak * 1e9)
            share = executed_share(count)
            print(
                f"{label}: {count:,} parameters; bare tf.function+XLA step {bare:.1f} pairs/s (MFU {mfu_bare:.2f}); "
                f"trainer {ours:.1f} pairs/s (MFU {mfu_ours:.2f}); trainer/bare {ours / bare:.2f}\n"
                f"  the step's matmuls execute {share:.2f} of 6 x parameters x tokens (last block at the scored "
                f"position only): hardware FLOPs utilisation of the trainer {mfu_ours * share:.2f}"
            )
            if label == "fp32":
                verdict = "PASS" if mfu_ours >= 0.65 and ours >= 0.95 * bare else "FAIL"
                print(f"target (fp32): trainer MFU >= 0.65 and >= 95% of bare -> {verdict}")


if __name__ == "__main__":
    main()
