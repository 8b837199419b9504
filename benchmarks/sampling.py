"""Benchmark: generated tokens per second of rlhf-tf's sampler vs keras-hub's `CausalLM.generate`, in one run.

Targets: GPT-2 (issue: language policies) at least 2x keras-hub's at batch 64 and 1.7x at batch 16; a Llama-family
model (issue: bring your own model, `--architecture=llama3`, also mistral, qwen3) at least 2x at batch 64; at GPT-2
small's shape and a Llama ~100M (issue: scale-up, `--shape=gpt2_small`, `--shape=llama_100m`: prompt 128, 256 new
tokens, see shapes.py) at least 2x at batch 16 and 64.
(keras-hub 0.32's `Gemma3CausalLM.generate` fails without a preprocessor, so gemma3 has no peer figure here.)
The tiny shape: 4 layers, width 256, 4 heads (2 key/value heads for the Llama-style families), intermediate 1024,
byte-size vocabulary (257 ids), prompt 16 tokens, 48 new tokens. Random sampling at temperature 1, no end token
(every row makes all its new tokens), XLA for both; median of 9 timed runs after warm-up (3 at the larger shapes),
ours and keras-hub's interleaved. Our
sampler also returns the per-token log-probs; keras-hub's returns token ids only.

usage: python benchmarks/sampling.py [--shape=tiny] [--architecture=gpt2] [--repeats=9]
"""

import argparse
import dataclasses
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (first: routes tf.keras before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import shapes  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.models import policy as policy_lib  # noqa: E402
from rlhf_tf.models import sampling  # noqa: E402


def build(shape_name, architecture):
    """The shape's model; at the tiny shape, of any `architecture` (2 key/value heads for the Llama-style ones)."""
    keras.utils.set_random_seed(0)
    shape = shapes.SHAPES[shape_name]
    if shape_name == "tiny":
        kv_heads = 0 if architecture == "gpt2" else 2
        shape = dataclasses.replace(
            shape,
            dimensions=dataclasses.replace(shape.dimensions, architecture=architecture, num_key_value_heads=kv_heads),
        )
    return shape, shape.build()


def time_medians(functions, repeats):
    """Median seconds of each function, the timed runs interleaved (a, b, a, b, ...) after warm-up, so a noisy
    neighbour on a shared machine slows both sides alike."""
    for function in functions:
        function()  # warm-up: compile
        function()
    timings = [[] for _ in functions]
    for _ in range(repeats):
        for function, runs in zip(functions, timings):
            started = time.perf_counter()
            function()
            runs.append(time.perf_counter() - started)
    return [statistics.median(runs) for runs in timings]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes.add_flag(parser)
    parser.add_argument(
        "--architecture", default="gpt2", choices=sorted(policy_lib.ARCHITECTURES), help="the tiny shape's family"
    )
    parser.add_argument("--repeats", type=int, default=0, help="timed runs per side (default 9 tiny, 3 larger)")
    args = parser.parse_args()
    repeats = args.repeats or (9 if args.shape == "tiny" else 3)
    shape, causal_lm = build(args.shape, args.architecture)
    prompt_length, new = shape.prompt, shape.response
    print(
        f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; shape {shapes.describe(args.shape)}; "
        f"model: {shape.dimensions.architecture}, {causal_lm.count_params():,} parameters",
        flush=True,
    )
    ours = sampling.Sampler(
        causal_lm,
        end_id=shape.vocabulary - 1,
        pad_id=0,
        config=sampling.SamplingConfig(max_new_tokens=new, stop_at_end=False),
    )
    causal_lm.compile(sampler=keras_hub.samplers.RandomSampler(temperature=1.0, seed=1))
    causal_lm.jit_compile = True  # Keras' "auto" turns XLA off on CPU
    generator = np.random.default_rng(0)
    ratios = {}
    for batch in (16, 64):
        prompts = generator.integers(1, shape.vocabulary - 1, size=(batch, prompt_length)).astype(np.int32)
        prompt_mask = np.ones((batch, prompt_length), bool)
        token_ids = np.concatenate([prompts, np.zeros((batch, new), np.int32)], axis=1)
        padding_mask = np.concatenate([prompt_mask, np.zeros((batch, new), bool)], axis=1)
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
        ours_seconds, hub_seconds = time_medians(
            [
                lambda p=prompts, m=prompt_mask: ours.generate(p, m, [0, 1])["token_ids"].numpy(),
                lambda x=inputs: causal_lm.generate(x, stop_token_ids=None),
            ],
            repeats,
        )
        ratios[batch] = hub_seconds / ours_seconds
        print(
            f"batch {batch}: rlhf-tf sampler {ours_seconds * 1e3:.0f} ms "
            f"({batch * new / ours_seconds:,.0f} new tokens/s, log-probs included); "
            f"keras-hub generate {hub_seconds * 1e3:.0f} ms "
            f"({batch * new / hub_seconds:,.0f} new tokens/s); speed-up {ratios[batch]:.2f}x"
        )
    if args.shape == "tiny" and args.architecture == "gpt2":
        verdict = "PASS" if ratios[64] >= 2.0 and ratios[16] >= 1.7 else "FAIL"
        print(f"target: >= 2x at batch 64 and >= 1.7x at batch 16 -> {verdict}")
    elif args.shape == "tiny":
        print(f"target: >= 2x at batch 64 -> {'PASS' if ratios[64] >= 2.0 else 'FAIL'}")
    else:
        verdict = "PASS" if min(ratios.values()) >= 2.0 else "FAIL"
        print(f"target: >= 2x at batch 16 and 64 -> {verdict}")


if __name__ == "__main__":
    main()
