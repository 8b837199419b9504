"""Benchmark: seconds per GRPO step, with generation's share and the update phase's model FLOPs utilisation.

Work per step (issue: critic-free policy gradient): 16 prompts of 16 tokens x 4 completions of 48 tokens sampled
through the TF-Agents bridge; the reward model's pass (4 layers, width 256) and the frozen reference's pass; one
pass of GRPO updates over the 64 completions (minibatches of 16; --epochs for more passes). Model: GPT-2 style, 4
layers, width 256, 4 heads, byte vocabulary (257 ids); no end token, so every completion has 48 tokens. MFU counts
6 x parameters x tokens trained against the fp32 matmul peak measured in this run; generation is compared with the
bare sampler at batch 64 in the same run. For orientation (issue text): TRL's GRPOTrainer (PyTorch fp32, no
reference model) took 2.8-3.1 s per step on an AVX2 machine of this kind and 1.31 s on an AVX-512 one.

usage: python benchmarks/grpo_step.py [--steps=5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import rl_iteration  # noqa: E402  (the same model, reward function and prompts; imports rlhf_tf first)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.agents.language import (
    bridge,
    policy_gradient,  # noqa: E402
)
from rlhf_tf.models import policy as policy_lib  # noqa: E402
from rlhf_tf.models import sampling  # noqa: E402
from rlhf_tf.reward import language_model  # noqa: E402

PROMPTS, K = 16, 4
BATCH, PROMPT, RESPONSE, VOCABULARY = PROMPTS * K, rl_iteration.PROMPT, rl_iteration.RESPONSE, rl_iteration.VOCABULARY


def grouped_prompts():
    for batch in rl_iteration.prompt_batches():
        yield {name: tf.repeat(value[:PROMPTS], K, axis=0) for name, value in batch.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--minibatch_size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1, help="passes over the 64 completions (TRL's default: 1)")
    args = parser.parse_args()
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    keras.utils.set_random_seed(0)
    model = rl_iteration.MODEL
    policy_lm = policy_lib.build_policy(model, VOCABULARY)
    reference_lm = policy_lib.build_policy(model, VOCABULARY)
    reference_lm.set_weights(policy_lm.get_weights())
    reward_model = language_model.LanguageRewardModel(policy_lib.build_policy(model, VOCABULARY).backbone)
    reward_model.build()
    reward_fn = rl_iteration.reward_function(reward_model, None)
    environment = bridge.TextBanditEnvironment(grouped_prompts(), reward_fn, BATCH, PROMPT, RESPONSE, VOCABULARY)
    config = sampling.SamplingConfig(max_new_tokens=RESPONSE)
    no_end = rl_iteration.NO_END
    policy = bridge.LanguagePolicy(policy_lm, no_end, 0, config, VOCABULARY, PROMPT, seed=0)
    collector = bridge.RolloutCollector(environment, policy)
    hyperparameters = policy_gradient.PolicyGradientHyperparameters(
        samples_per_prompt=K, minibatch_size=args.minibatch_size, epochs=args.epochs, missing_end_penalty=0.0
    )
    learner = policy_gradient.PolicyGradientLearner(policy_lm, reference_lm, no_end, hyperparameters, RESPONSE)
    sampler = sampling.Sampler(policy_lm, no_end, 0, config)
    prompts = next(grouped_prompts())
    timings = {"collect": [], "reward": [], "sampler": [], "reference": [], "update": []}
    for step in range(args.steps + 2):  # two warm-up steps compile
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
        if step >= 2:
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
    flops = 6 * count * (PROMPT + RESPONSE) * BATCH * args.epochs
    mfu = flops / median["update"] / (peak * 1e9)
    print(
        f"GRPO step ({PROMPTS} prompts x {K} completions, minibatch {args.minibatch_size}): {total:.2f} s per step\n"
        f"  generation {generation:.2f} s ({generation / total:.0%} of the step; {BATCH * RESPONSE / generation:,.0f}"
        f" tokens/s, the sampler alone {BATCH * RESPONSE / median['sampler']:,.0f} tokens/s -> "
        f"{median['sampler'] / generation:.2f} of its rate)\n"
        f"  reward model {median['reward']:.2f} s, reference pass {median['reference']:.2f} s\n"
        f"  update {median['update']:.2f} s ({flops / 1e9:.0f} GFLOP; MFU {mfu:.2f} of the fp32 peak)\n"
        f"  target: update MFU >= 0.6 -> {'PASS' if mfu >= 0.6 else 'FAIL'}; "
        "TRL GRPOTrainer (issue): 1.31 s per step on AVX-512",
        flush=True,
    )


if __name__ == "__main__":
    main()
