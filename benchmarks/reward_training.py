"""Benchmark: reward-model training throughput and model FLOPs utilisation through the real trainer.

Target (issue: reward models): the trainer at least 0.65 of the fp32 matmul peak measured in the same run, and at
least 95% of a bare tf.function + XLA step's pairs/s on the same model and a fixed batch. Model: GPT-2 style reward
model, 4 layers, width 256, 4 heads, byte vocabulary, sequences of 128 (prompt + response truncated by the
pipeline's rule), batch 16 pairs, fp32 (and, where the CPU computes bf16 natively, mixed bf16 as a second row). The
trainer reads JSONL through the preference pipeline (tokenization, bucketing, masks), logs summaries and writes
checkpoints at its default interval. MFU = 6 x parameters x tokens per second / peak (the issue's formula); the
script also prints the share of those FLOPs the step executes (the reward model computes its last block at the
scored position only) and the hardware FLOPs utilisation that follows.

At GPT-2 small's shape and a Llama ~100M (issue: scale-up, `--shape=gpt2_small` / `llama_100m`, see shapes.py):
pairs of a 128-token prompt and 256-token responses (384 tokens), 4 pairs per step, fp32, 10 timed steps; target:
the trainer at least 0.55 of the fp32 peak, counting the FLOPs the reward model executes (shapes.py's
`scoring_forward_flops`: no output projection, the last block past keys and values at the scored position only).
The trainer tokenizes bytes (it reads text), so its model's embedding table has 257 rows; the bare step uses the
shape's vocabulary: a gather either way, the same FLOPs. TRL's RewardTrainer on the same work:
benchmarks/peers/reward.py.

With `--precision=bfloat16` (larger shapes): mixed bf16, the trainer's `--mixed_precision=bfloat16`, whose step runs
as a graph on a CPU (`hardware.use_xla`: XLA:CPU computes bf16 dots with float32 kernels); MFU still against the
fp32 peak. The tiny shape prints both rows where the CPU has bf16 and ignores the flag.

usage: python benchmarks/reward_training.py [--shape=tiny] [--steps=200] [--precision=float32]
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
import shapes  # noqa: E402  (after rlhf_tf)
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.data import reader, records  # noqa: E402
from rlhf_tf.models.policy import PolicyConfig, build_policy  # noqa: E402
from rlhf_tf.reward import language_model, losses, trainer  # noqa: E402

SEQ_LEN, PAIRS, LAYERS, WIDTH = 128, 16, 4, 256
MODEL = PolicyConfig(
    num_layers=LAYERS, num_heads=4, hidden_dim=WIDTH, intermediate_dim=4 * WIDTH, max_sequence_length=SEQ_LEN
)
LARGE = {"pairs": 4, "steps": 10}  # per-shape defaults above tiny
WORDS = "the sound battery screen plot acting great poor solid cheap loud quiet fast slow works broke love".split()


def make_pairs(count, seed=0, prompt_words=8, response_words=40):
    rng = random.Random(seed)

    def text(words):
        return " ".join(rng.choice(WORDS) for _ in range(words))

    # Long enough that every sequence fills its bucket after truncation.
    return [
        records.Comparison(f"Review of the {text(prompt_words)}:", text(response_words), text(response_words))
        for _ in range(count)
    ]


def parameters(model):
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def executed_share(count):
    """The share of 6 x parameters x tokens the step's matmuls execute. The reward model reads one position per
    sequence, so its last block computes keys and values everywhere but query, attention output and feed-forward at
    that position only (`transformer.hidden_at`); attention's own score and mix products are left out of both."""
    block = 4 * WIDTH * WIDTH + 2 * WIDTH * MODEL.intermediate_dim  # QKV, attention output, feed-forward
    last_block = 2 * WIDTH * WIDTH + (block - 2 * WIDTH * WIDTH) / SEQ_LEN
    return ((LAYERS - 1) * block + last_block) / count


def bare_pairs_per_second(precision, steps, model_config=MODEL, vocabulary=257, pairs=PAIRS, seq_len=SEQ_LEN):
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = language_model.LanguageRewardModel(build_policy(model_config, vocabulary).backbone)
    model.build()
    optimizer = keras.optimizers.AdamW(1e-4)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    batch = {
        "token_ids": tf.constant(rng.integers(1, min(vocabulary, 257) - 1, size=(pairs, 2, seq_len)), tf.int32),
        "padding_mask": tf.ones((pairs, 2, seq_len), tf.bool),
    }

    @tf.function(jit_compile=hardware.use_xla(True, keras.mixed_precision.global_policy().compute_dtype))
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
    return steps * pairs / (time.perf_counter() - started), parameters(model)


def trainer_pairs_per_second(
    precision_setting, steps, directory, model_config=MODEL, pairs=PAIRS, seq_len=SEQ_LEN, words=(8, 40)
):
    reader.write_jsonl(os.path.join(directory, "train.jsonl"), make_pairs(max(4000, steps * pairs), 0, *words))
    reader.write_jsonl(os.path.join(directory, "eval.jsonl"), make_pairs(32, 1, *words))
    base = trainer.RewardConfig(output_dir=os.path.join(directory, f"run-{precision_setting}"), train="x")
    config = dataclasses.replace(
        base,
        train=os.path.join(directory, "train.jsonl"),
        eval=os.path.join(directory, "eval.jsonl"),
        model=model_config,
        pipeline=dataclasses.replace(base.pipeline, seq_len=seq_len, batch_size=pairs),
        epochs=0,
        loop=dataclasses.replace(base.loop, steps=steps, eval_every=0, progress=False),
        mixed_precision=precision_setting,
        export=False,
        strategy="default",
    )
    metrics = trainer.train_reward(config)
    return metrics["reward/steps_per_second"] * pairs


def large_shape(name, steps, peak, precision):
    """The scale-up rows: the trainer and a bare step at `name`'s shape, in `precision` (float32 or bfloat16)."""
    shape = shapes.SHAPES[name]
    pairs, steps = LARGE["pairs"], steps or LARGE["steps"]
    policy = "float32" if precision == "float32" else "mixed_bfloat16"
    print(
        f"shape {shapes.describe(name)}; {pairs} pairs of {shape.sequence} tokens per step; {policy}, "
        f"{'XLA' if hardware.use_xla(True, precision) else 'graph (no XLA)'}",
        flush=True,
    )
    bare, count = bare_pairs_per_second(policy, steps, shape.config, shape.vocabulary, pairs, shape.sequence)
    keras.mixed_precision.set_global_policy("float32")
    with tempfile.TemporaryDirectory() as directory:
        # ~5 bytes a word: prompts and responses past 128 and 256 bytes, truncated by the pipeline's rule.
        ours = trainer_pairs_per_second(precision, steps, directory, shape.config, pairs, shape.sequence, (30, 60))
    keras.mixed_precision.set_global_policy("float32")
    flops_per_pair = 2 * 3 * shape.scoring_forward_flops(shape.sequence)  # two sequences, forward + backward
    mfu_bare, mfu_ours = (rate * flops_per_pair / (peak * 1e9) for rate in (bare, ours))
    print(
        f"{policy}: {count:,} parameters; bare step {bare:.2f} pairs/s ({1 / bare * pairs:.2f} s per "
        f"step, MFU {mfu_bare:.2f}); trainer {ours:.2f} pairs/s ({1 / ours * pairs:.2f} s per step, MFU "
        f"{mfu_ours:.2f}); trainer/bare {ours / bare:.2f}\n"
        f"target: trainer MFU >= 0.55 -> {'PASS' if mfu_ours >= 0.55 else 'FAIL'}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes.add_flag(parser)
    parser.add_argument(
        "--steps", type=int, default=0, help="steps per timed run (default 200 tiny: the trainer's checkpoint interval)"
    )
    shapes.add_precision_flag(parser)
    args = parser.parse_args()
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    if args.shape != "tiny":
        return large_shape(args.shape, args.steps, peak, args.precision)
    args.steps = args.steps or 200
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
                f"{label}: {count:,} parameters; bare step {bare:.1f} pairs/s (MFU {mfu_bare:.2f}); "
                f"trainer {ours:.1f} pairs/s (MFU {mfu_ours:.2f}); trainer/bare {ours / bare:.2f}\n"
                f"  the step's matmuls execute {share:.2f} of 6 x parameters x tokens (last block at the scored "
                f"position only): hardware FLOPs utilisation of the trainer {mfu_ours * share:.2f}"
            )
            if label == "fp32":
                verdict = "PASS" if mfu_ours >= 0.65 and ours >= 0.95 * bare else "FAIL"
                print(f"target (fp32): trainer MFU >= 0.65 and >= 95% of bare -> {verdict}")


if __name__ == "__main__":
    main()
