"""Benchmark: peak memory of one PPO iteration with LoRA against full fine-tuning, at a Llama ~100M shape.

Model: shapes.py's "llama_100m", a Llama 3-style decoder, 12 layers, width 768, 12 query / 4 key-value heads, gated
MLP 2048, vocabulary 32,768, untied output head (126M parameters). Work: one PPO iteration on 16 prompts of 128
tokens: 256 new tokens sampled (no end token, so every response is full length), the reference's and critic's
passes, and 4 epochs of minibatch 4 updates with the value head on the policy trunk. Full fine-tuning holds the
policy, a frozen reference copy, gradients and two Adam moments for every parameter; LoRA (rank 16 on the
attention's query and value) holds one copy of the weights, the reference being its frozen base with the adapters
off.

Each mode runs in a fresh process and reports two peaks: the tensors TensorFlow held at once (variables, optimizer
state, activations, XLA's buffers: what an accelerator would have to hold, and what `get_memory_info` reports on a
GPU), and the process's peak resident set (`ru_maxrss`: that plus the Python runtime, TensorFlow's libraries, XLA's
compilations and what the C allocator kept after use). The first is TensorFlow's CPU allocator's own count
(`rlhf_tf.hardware.tensor_peak_mb`). Target (issue: scale-up): LoRA's peak at most 0.6 x full
fine-tuning's, judged on the tensor peak (the accelerator's question); the resident ratio is printed beside it.

usage: python benchmarks/lora_memory.py [--response=256] [--batch=16]
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tensors_mb():
    """(current, peak) MB held by TensorFlow's CPU allocator."""
    import tensorflow as tf

    info = tf.config.experimental.get_memory_info("CPU:0")
    return info["current"] / 2**20, info["peak"] / 2**20


def run_mode(mode, batch, prompt, response):
    import rlhf_tf  # noqa: F401  (first: routes tf.keras before TensorFlow loads)

    # isort: split
    import keras
    import numpy as np
    import shapes
    import tensorflow as tf

    from rlhf_tf import hardware
    from rlhf_tf.agents.language import ppo
    from rlhf_tf.models import lora, sampling
    from rlhf_tf.models import policy as policy_lib

    shape = shapes.SHAPES["llama_100m"]
    vocabulary = shape.vocabulary
    config = dataclasses.replace(shape.config, max_sequence_length=max(prompt + response, 1024))
    keras.utils.set_random_seed(0)
    policy_lm = policy_lib.build_policy(config, vocabulary)
    if mode == "lora":
        lora.enable(policy_lm, lora.LoraConfig(rank=16), "llama3-125m")
        reference_lm = policy_lm
    else:
        reference_lm = policy_lib.build_policy(config, vocabulary)
        reference_lm.set_weights(policy_lm.get_weights())
        reference_lm.trainable = False
    parameters = int(sum(np.prod(w.shape) for w in policy_lm.backbone.weights))
    no_end = vocabulary + 7
    hyperparameters = ppo.PPOHyperparameters(minibatch_size=4, missing_end_penalty=0.0)
    learner = ppo.PPOLearner(policy_lm, reference_lm, no_end, hyperparameters)
    built, built_rss = _tensors_mb()[0], hardware.resident_peak_mb()

    rng = np.random.default_rng(0)
    prompt_ids = tf.constant(rng.integers(1, vocabulary, size=(batch, prompt)), tf.int32)
    prompt_mask = tf.ones((batch, prompt), tf.bool)
    started = time.perf_counter()
    sampler = sampling.Sampler(policy_lm, no_end, 0, sampling.SamplingConfig(max_new_tokens=response))
    out = sampler.generate(prompt_ids, prompt_mask, [0, 1])
    sampled = time.perf_counter()
    rollout = {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "response_ids": out["token_ids"],
        "response_mask": out["mask"],
        "logprobs": out["logprobs"],
        "reward": tf.constant(rng.normal(size=batch), tf.float32),
    }
    metrics = learner.update(rollout, 0)
    updated = time.perf_counter()
    assert np.isfinite(metrics["loss"]), metrics
    trained = int(sum(np.prod(v.shape) for v in learner.variables))
    return {
        "mode": mode,
        "parameters": parameters,
        "trained_parameters": trained,
        "built_mb": built,
        "peak_mb": _tensors_mb()[1],
        "built_rss_mb": built_rss,
        "peak_rss_mb": hardware.resident_peak_mb(),
        "sample_seconds": sampled - started,
        "update_seconds": updated - sampled,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["full", "lora"], help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--response", type=int, default=256)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.batch, args.prompt, args.response)), flush=True)
        return
    from rlhf_tf import hardware

    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores", flush=True)
    results = {}
    for mode in ("full", "lora"):
        command = [sys.executable, __file__, f"--mode={mode}", f"--batch={args.batch}", f"--prompt={args.prompt}"]
        command.append(f"--response={args.response}")
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        if finished.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{finished.stderr[-4000:]}")
        results[mode] = result = json.loads(finished.stdout.strip().splitlines()[-1])
        print(
            f"{mode}: {result['parameters'] / 1e6:.0f}M parameters, {result['trained_parameters'] / 1e6:.2f}M trained; "
            f"tensors after building {result['built_mb']:,.0f} MB, peak through the iteration "
            f"{result['peak_mb']:,.0f} MB; resident set after building {result['built_rss_mb']:,.0f} MB, peak "
            f"{result['peak_rss_mb']:,.0f} MB (sampling {result['sample_seconds']:.0f} s, update "
            f"{result['update_seconds']:.0f} s)",
            flush=True,
        )
    ratio = results["lora"]["peak_mb"] / results["full"]["peak_mb"]
    resident = results["lora"]["peak_rss_mb"] / results["full"]["peak_rss_mb"]
    verdict = "PASS" if ratio <= 0.6 else "FAIL"
    print(
        f"LoRA peak / full fine-tuning peak, tensors: {ratio:.2f} (target <= 0.6) -> {verdict}; "
        f"resident sets: {resident:.2f}"
    )


if __name__ == "__main__":
    main()
