"""Benchmark: seconds per GRPO step, with generation's share and the update phase's model FLOPs utilisation.

Work per step (issue: critic-free policy gradient): 16 prompts of 16 tokens x 4 completions of 48 tokens sampled
through the TF-Agents bridge; the reward model's pass (4 layers, width 256) and the frozen reference's pass; one
pass of GRPO updates over the 64 completions (minibatches of 16; --epochs for more passes). Model: GPT-2 style, 4
layers, width 256, 4 heads, byte vocabulary (257 ids); no end token, so every completion has 48 tokens. MFU counts
6 x parameters x tokens trained against the fp32 matmul peak measured in this run; generation is compared with the
bare sampler at batch 64 in the same run. For orientation (issue text): TRL's GRPOTrainer (PyTorch fp32, no
reference model) took 2.8-3.1 s per step on an AVX2 machine of this kind and 1.31 s on an AVX-512 one.

At GPT-2 small's shape and a Llama ~100M (issue: scale-up, `--shape=gpt2_small` / `llama_100m`, see shapes.py):
4 prompts of 128 tokens x 4 completions of 256 tokens, one pass in minibatches of 4, one warm-up step and 2 timed;
target: update at least 0.55 of the fp32 peak, with the FLOPs of shapes.py (trunk at every token, output projection
at the completion positions). TRL's GRPOTrainer on the same work: benchmarks/peers/grpo.py.

usage: python benchmarks/grpo_step.py [--shape=tiny] [--steps=5] [--precision=float32]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rl_iteration  # noqa: E402  (the same model, reward function and prompts; imports rlhf_tf first)
import shapes  # noqa: E402

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.agents.language import (
    bridge,
    policy_gradient,  # noqa: E402
)
from rlhf_tf.models import sampling  # noqa: E402

K = 4
LARGE = {"prompts": 4, "minibatch_size": 4, "steps": 2, "warmup": 1}  # per-shape defaults above tiny


def grouped_prompts(prompts, prompt, vocabulary):
    for batch in rl_iteration.prompt_batches(prompts * K, prompt, vocabulary):
        yield {name: tf.repeat(value[:prompts], K, axis=0) for name, value in batch.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes.add_flag(parser)
    parser.add_argument("--prompts", type=int, default=0, help="prompts per step (default 16 tiny, 4 larger)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps (default 5 tiny, 2 larger)")
    parser.add_argument("--minibatch_size", type=int, default=0, help="default 16 tiny, 4 larger")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the completions (TRL's default: 1)")
    shapes.add_precision_flag(parser)  # the learner's compute_dtype and the reward model's passes
    args = parser.parse_args()
    tiny = args.shape == "tiny"
    shape = shapes.SHAPES[args.shape]
    prompts_per_step = args.prompts or (16 if tiny else LARGE["prompts"])
    steps = args.steps or (5 if tiny else LARGE["steps"])
    minibatch_size = args.minibatch_size or (16 if tiny else LARGE["minibatch_size"])
    warmup = 2 if tiny else LARGE["warmup"]
    batch_size, prompt, response, vocabulary = prompts_per_step * K, shape.prompt, shape.response, shape.vocabulary
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    print(f"shape {shapes.describe(args.shape)}; {args.precision} passes", flush=True)
    policy_lm, reference_lm, reward_model = rl_iteration.build_models(shape)
    reward_fn = rl_iteration.reward_function(reward_model, None if args.precision == "float32" else tf.bfloat16)
    environment = bridge.TextBanditEnvironment(
        grouped_prompts(prompts_per_step, prompt, vocabulary), reward_fn, batch_size, prompt, response, vocabulary
    )
    config = sampling.SamplingConfig(max_new_tokens=response)
    no_end = vocabulary + 7  # an id never sampled: every completion runs its full length
    policy = bridge.LanguagePolicy(policy_lm, no_end, 0, config, vocabulary, prompt, seed=0)
    collector = bridge.RolloutCollector(environment, policy)
    hyperparameters = policy_gradient.PolicyGradientHyperparameters(
        samples_per_prompt=K,
        minibatch_size=minibatch_size,
        epochs=args.epochs,
        missing_end_penalty=0.0,
        compute_dtype=args.precision,
    )
    learner = policy_gradient.PolicyGradientLearner(policy_lm, reference_lm, no_end, hyperparameters, response)
    sampler = sampling.Sampler(policy_lm, no_end, 0, config)
    prompts = next(grouped_prompts(prompts_per_step, prompt, vocabulary))
    timings = {"collect": [], "reward": [], "sampler": [], "reference": [], "update": []}
    for step in range(steps + warmup):  # the warm-up steps compile
        started = time.perf_counter()
        rollout = collector.collect()
        collected = time.perf_counter()
        reward_fn(rollout["prompt_ids"], rollout["prompt_mask"], rollout["response_ids"], rollout["response_mask"])
        rewarded = time.perf_counter()
        sampler.generate(prompts["token_ids"], prompts["padding_mask"], [1, step])["token_ids"].numpy()
        sampled = time.perf_counter()
        learner._reference_pass(rollout).numpy()  # timed alone, then subtracted from the update's time
        referenced = time.perf_counter()
        metrics = learner.update(rollout, step)  # the reference pass again, the advantages and the update
        updated = time.perf_counter()
        if step >= warmup:
            timings["collect"].append(collected - started)
            timings["reward"].append(rewarded - collected)
            timings["sampler"].append(sampled - rewarded)
            timings["reference"].append(referenced - sampled)
            timings["update"].append(updated - referenced - (referenced - sampled))
    assert np.isfinite(metrics["loss"]), metrics
    median = {name: statistics.median(values) for name, values in timings.items()}
    generation = median["collect"] - median["reward"]
    total = median["collect"] + median["reference"] + median["update"]
    count = int(sum(np.prod(v.shape) for v in policy_lm.trainable_variables))
    if tiny:  # the tiny row's accounting: 6 x all parameters x tokens
        flops = 6 * count * (prompt + response) * batch_size * args.epochs
    else:
        flops = shape.training_flops(shape.sequence, response) * batch_size * args.epochs
    mfu = flops / median["update"] / (peak * 1e9)
    target = 0.6 if tiny else 0.55
    print(
        f"GRPO step ({prompts_per_step} prompts x {K} completions, minibatch {minibatch_size}): "
        f"{total:.2f} s per step\n"
        f"  generation {generation:.2f} s ({generation / total:.0%} of the step; "
        f"{batch_size * response / generation:,.0f} tokens/s, the sampler alone "
        f"{batch_size * response / median['sampler']:,.0f} tokens/s -> {median['sampler'] / generation:.2f} of its "
        f"rate)\n"
        f"  reward model {median['reward']:.2f} s, reference pass {median['reference']:.2f} s\n"
        f"  update {median['update']:.2f} s ({flops / 1e9:.0f} GFLOP; MFU {mfu:.2f} of the fp32 peak)\n"
        f"  target: update MFU >= {target} -> {'PASS' if mfu >= target else 'FAIL'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
