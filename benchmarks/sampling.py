"""Benchmark: generated tokens per second of rlhf-tf's sampler vs keras-hub's `CausalLM.generate`, in one run.

Targets: GPT-2 (issue: language policies) at least 2x keras-hub's at batch 64 and 1.7x at batch 16; a Llama-family
model (issue: bring your own model, `--architecture=llama3`, also mistral, qwen3) at least 2x at batch 64.
(keras-hub 0.32's `Gemma3CausalLM.generate` fails without a preprocessor, so gemma3 has no peer figure here.)
Model: 4 layers, width 256, 4 heads (2 key/value heads for the Llama-style families), intermediate 1024, byte-size
vocabulary (257 ids), prompt 16 tokens, 48 new tokens, random sampling at temperature 1, no end token (every row
makes 48 tokens), XLA for both; median of 9 timed runs after warm-up, ours and keras-hub's interleaved. Our
sampler also returns the per-token log-probs; keras-hub's returns token ids only.

usage: python benchmarks/sampling.py [--architecture=gpt2] [--repeats=9]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rlhf_tf  # noqa: E402,F401  (first: routes tf.keras before TensorFlow loads)

# isort: split
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.models import policy as policy_lib  # noqa: E402
from rlhf_tf.models import sampling  # noqa: E402

PROMPT, NEW = 16, 48


def build(architecture):
    keras.utils.set_random_seed(0)
    config = policy_lib.PolicyConfig(
        architecture=architecture,
        num_layers=4,
        num_heads=4,
        num_key_value_heads=0 if architecture == "gpt2" else 2,
        hidden_dim=256,
        intermediate_dim=1024,
        max_sequence_length=128,
    )
    return policy_lib.build_policy(config, 257)


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
    parser.add_argument("--architecture", default="gpt2", choices=sorted(policy_lib.ARCHITECTURES))
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; model: {args.architecture}", flush=True)
    causal_lm = build(args.architecture)
    ours = sampling.Sampler(
        causal_lm, end_id=256, pad_id=0, config=sampling.SamplingConfig(max_new_tokens=NEW, stop_at_end=False)
    )
    causal_lm.compile(sampler=keras_hub.samplers.RandomSampler(temperature=1.0, seed=1))
    causal_lm.jit_compile = True  # Keras' "auto" turns XLA off on CPU
    generator = np.random.default_rng(0)
    ratios = {}
    for batch in (16, 64):
        prompts = generator.integers(1, 256, size=(batch, PROMPT)).astype(np.int32)
        prompt_mask = np.ones((batch, PROMPT), bool)
        token_ids = np.concatenate([prompts, np.zeros((batch, NEW), np.int32)], axis=1)
        padding_mask = np.concatenate([prompt_mask, np.zeros((batch, NEW), bool)], axis=1)
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
        ours_seconds, hub_seconds = time_medians(
            [
                lambda p=prompts, m=prompt_mask: ours.generate(p, m, [0, 1])["token_ids"].numpy(),
                lambda x=inputs: causal_lm.generate(x, stop_token_ids=None),
            ],
            args.repeats,
        )
        ratios[batch] = hub_seconds / ours_seconds
        print(
            f"batch {batch}: rlhf-tf sampler {ours_seconds * 1e3:.0f} ms "
            f"({batch * NEW / ours_seconds:,.0f} new tokens/s, log-probs included); "
            f"keras-hub generate {hub_seconds * 1e3:.0f} ms "
            f"({batch * NEW / hub_seconds:,.0f} new tokens/s); speed-up {ratios[batch]:.2f}x"
        )
    if args.architecture == "gpt2":
        verdict = "PASS" if ratios[64] >= 2.0 and ratios[16] >= 1.7 else "FAIL"
        print(f"target: >= 2x at batch 64 and >= 1.7x at batch 16 -> {verdict}")
    else:
        print(f"target: >= 2x at batch 64 -> {'PASS' if ratios[64] >= 2.0 else 'FAIL'}")


if __name__ == "__main__":
    main()
