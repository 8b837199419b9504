"""Benchmark: seconds per DPO step and its model FLOPs utilisation, at GPT-2 small's shape or a Llama ~100M.

Work per step (issue: scale-up): `--pairs` comparisons (default 4), each a 128-token prompt with a chosen and a
rejected 256-token response, right-padded to 384 tokens; the policy's teacher-forced pass over both sequences,
the DPO loss against reference log-probs computed once before training (as `rlhf-tf dpo` does, and as TRL's
DPOTrainer does with `precompute_ref_log_probs=True`), the backward pass, gradient clipping and AdamW: the step
`train_dpo` runs (`dpo.pair_losses_fn`, `dpo.step_loss_fn`, `training.GradientStep`, XLA; with
`--precision=bfloat16`, `--compute_dtype=bfloat16`'s step: bf16 matmuls, a graph on CPUs). Random token ids: the
FLOPs do not depend on the text.

MFU counts the FLOPs of shapes.py (trunk at every token, output projection at the response positions, forward and
backward) against the fp32 matmul peak measured in this run. Target: at least 0.55. TRL's DPOTrainer on the same
work: benchmarks/peers/dpo.py.

usage: python benchmarks/dpo_step.py [--shape=gpt2_small] [--pairs=4] [--steps=5] [--precision=float32]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (first: routes tf.keras before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import shapes  # noqa: E402
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware, training  # noqa: E402
from rlhf_tf.agents.language import dpo  # noqa: E402


def random_pairs(shape, pairs, seed=0):
    """Tokenized pairs as `train_dpo` feeds them: [pairs, 2, prompt + response], responses full length."""
    rng = np.random.default_rng(seed)
    length = shape.sequence
    token_ids = rng.integers(1, shape.vocabulary - 1, size=(pairs, 2, length)).astype(np.int32)
    token_ids[:, 1, : shape.prompt] = token_ids[:, 0, : shape.prompt]  # one prompt per pair
    response_mask = np.zeros((pairs, 2, length), bool)
    response_mask[:, :, shape.prompt :] = True
    return {
        "token_ids": tf.constant(token_ids),
        "padding_mask": tf.ones((pairs, 2, length), tf.bool),
        "response_mask": tf.constant(response_mask),
        "reference_logprobs": tf.constant(rng.normal(-2.0 * shape.response, 1.0, size=(pairs, 2)), tf.float32),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes.add_flag(parser, default="gpt2_small")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    shapes.add_precision_flag(parser)
    args = parser.parse_args()
    shape = shapes.SHAPES[args.shape]
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    jit_compile = hardware.use_xla(True, args.precision)
    print(
        f"shape {shapes.describe(args.shape)}; {args.pairs} pairs per step; {args.precision}, "
        f"{'XLA' if jit_compile else 'graph (no XLA)'}",
        flush=True,
    )
    keras.utils.set_random_seed(0)
    causal_lm = shape.build()
    optimizer = keras.optimizers.AdamW(learning_rate=1e-6)
    optimizer.build(causal_lm.trainable_variables)
    dtype = None if args.precision == "float32" else tf.bfloat16
    pair_losses = dpo.pair_losses_fn(causal_lm.backbone, beta=0.1, loss="sigmoid", label_smoothing=0.0, dtype=dtype)
    step = training.GradientStep(
        dpo.step_loss_fn(pair_losses), causal_lm.trainable_variables, optimizer, clip_norm=1.0, jit_compile=jit_compile
    )
    batches = [random_pairs(shape, args.pairs, seed) for seed in range(2)]
    for batch in batches:  # compile and warm up
        step(batch)["loss"].numpy()
    seconds = []
    for index in range(args.steps):
        started = time.perf_counter()
        loss = step(batches[index % 2])["loss"].numpy()
        seconds.append(time.perf_counter() - started)
    assert np.isfinite(loss), loss
    median = statistics.median(seconds)
    flops = shape.training_flops(shape.sequence, shape.response) * 2 * args.pairs
    mfu = flops / median / (peak * 1e9)
    print(
        f"DPO step ({args.pairs} pairs, {2 * args.pairs} sequences of {shape.sequence} tokens): {median:.2f} s per "
        f"step (median of {args.steps}); {flops / 1e9:.0f} GFLOP, {flops / median / 1e9:.0f} GFLOP/s, MFU {mfu:.2f} "
        f"of the fp32 peak; peak memory {hardware.peak_memory_mb():,.0f} MB\n"
        f"  target: MFU >= 0.55 -> {'PASS' if mfu >= 0.55 else 'FAIL'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
