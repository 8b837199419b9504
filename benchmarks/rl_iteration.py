"""Benchmark: rollouts per second through one PPO iteration, split into generation, scoring and update.

Work per iteration (issue: RL fine-tuning): 64 prompts of 16 tokens; 64 sampled responses of 48 tokens collected
through the TF-Agents bridge (DynamicStepDriver, LanguagePolicy, TextBanditEnvironment); scoring = the reward
model's pass (a 4-layer width-256 reward model, in the environment), the frozen reference's and the critic's passes;
update = 4 PPO epochs of policy + value training (minibatches of 16 unless --minibatch_size). Model: GPT-2 style, 4
layers, width 256, 4 heads, byte vocabulary (257 ids); no end token, so every response has 48 tokens.

The update phase's model FLOPs utilisation counts 6 x parameters x tokens per trained sequence (forward and
backward, policy and, when separate, critic) against the fp32 matmul peak measured in this run. Generation is
compared with the sampler alone at batch 64 (the sampling benchmark's figure) in the same run.

Variants: value head on the policy trunk (shared, half the training FLOPs) vs a separate value model, fp32, and
mixed bf16 where the CPU computes bf16 natively. For orientation (issue text): TRL's PPOTrainer doing this work took
14.2 s per update (4.5 rollouts/s) on an AVX2 machine of this kind.

usage: python benchmarks/rl_iteration.py [--iterations=5]
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
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.agents.language import (
    bridge,
    ppo,  # noqa: E402
)
from rlhf_tf.models import families, sampling, transformer  # noqa: E402
from rlhf_tf.models import policy as policy_lib  # noqa: E402
from rlhf_tf.reward import language_model  # noqa: E402

BATCH, PROMPT, RESPONSE, VOCABULARY = 64, 16, 48, 257
NO_END = VOCABULARY + 7  # an id never sampled: every response runs its full 48 tokens
MODEL = policy_lib.PolicyConfig(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024, dropout=0.0)


def parameters(variables):
    return int(sum(np.prod(variable.shape) for variable in variables))


def reward_function(reward_model, dtype):
    """A TF reward over token ids: the reward model's score read at each response's last token."""

    @tf.function(jit_compile=True)
    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        ids = tf.concat([prompt_ids, response_ids], axis=1)
        mask = tf.concat([prompt_mask, response_mask], axis=1)
        weights = families.read_weights(reward_model.backbone, dtype)
        hidden = transformer.forward(weights, ids, transformer.positions_from_mask(mask), transformer.causal_mask(mask))
        last = tf.shape(prompt_ids)[1] + tf.reduce_sum(tf.cast(response_mask, tf.int32), axis=1) - 1
        return tf.squeeze(reward_model.head(tf.gather(hidden, last, batch_dims=1)), -1)

    return reward_fn


def prompt_batches():
    rng = np.random.default_rng(0)
    while True:
        yield {
            "token_ids": tf.constant(rng.integers(1, 256, size=(BATCH, PROMPT)), tf.int32),
            "padding_mask": tf.ones((BATCH, PROMPT), tf.bool),
        }


def run_variant(value_model, compute_dtype, iterations, minibatch_size):
    keras.utils.set_random_seed(0)
    dtype = None if compute_dtype == "float32" else tf.bfloat16
    policy_lm = policy_lib.build_policy(MODEL, VOCABULARY)
    reference_lm = policy_lib.build_policy(MODEL, VOCABULARY)
    reference_lm.set_weights(policy_lm.get_weights())
    reward_model = language_model.LanguageRewardModel(policy_lib.build_policy(MODEL, VOCABULARY).backbone)
    reward_model.build()
    reward_fn = reward_function(reward_model, dtype)
    environment = bridge.TextBanditEnvironment(prompt_batches(), reward_fn, BATCH, PROMPT, RESPONSE, VOCABULARY)
    sampling_config = sampling.SamplingConfig(max_new_tokens=RESPONSE)
    policy = bridge.LanguagePolicy(policy_lm, NO_END, 0, sampling_config, VOCABULARY, PROMPT, seed=0)
    collector = bridge.RolloutCollector(environment, policy)
    hyperparameters = ppo.PPOHyperparameters(
        minibatch_size=minibatch_size, value_model=value_model, compute_dtype=compute_dtype, missing_end_penalty=0.0
    )
    learner = ppo.PPOLearner(policy_lm, reference_lm, NO_END, hyperparameters)
    sampler = sampling.Sampler(policy_lm, NO_END, 0, sampling_config)
    prompts = next(prompt_batches())

    timings = {"collect": [], "reward": [], "sampler": [], "score": [], "update": []}
    for iteration in range(iterations + 2):  # the first two compile and warm up
        started = time.perf_counter()
        rollout = collector.collect()
        collected = time.perf_counter()
        reward_fn(
            rollout["prompt_ids"], rollout["prompt_mask"], rollout["response_ids"], rollout["response_mask"]
        ).numpy()
        rewarded = time.perf_counter()
        sampler.generate(prompts["token_ids"], prompts["padding_mask"], [1, iteration])["token_ids"].numpy()
        sampled = time.perf_counter()
        batch, _ = learner.prepare(rollout)
        prepared = time.perf_counter()
        metrics = learner.optimize(batch, iteration)
        optimized = time.perf_counter()
        if iteration >= 2:
            timings["collect"].append(collected - started)
            timings["reward"].append(rewarded - collected)
            timings["sampler"].append(sampled - rewarded)
            timings["score"].append(prepared - sampled)
            timings["update"].append(optimized - prepared)
    assert np.isfinite(metrics["loss"]), metrics
    median = {name: statistics.median(values) for name, values in timings.items()}
    trained = list(policy_lm.trainable_variables)
    if learner.critic_backbone is not None:
        trained += list(learner.critic_backbone.trainable_variables)
    count = parameters(trained) + parameters(learner.value_head.trainable_variables)
    update_flops = 6 * count * (PROMPT + RESPONSE) * BATCH * hyperparameters.ppo_epochs
    return median, update_flops, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--minibatch_size", type=int, default=16)
    args = parser.parse_args()
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    variants = [("shared", "float32"), ("policy", "float32")]
    if hardware.has_native_bf16():
        variants.append(("shared", "bfloat16"))
    for value_model, compute_dtype in variants:
        median, update_flops, count = run_variant(value_model, compute_dtype, args.iterations, args.minibatch_size)
        generation = median["collect"] - median["reward"]
        scoring = median["reward"] + median["score"]
        total = median["collect"] + median["score"] + median["update"]
        mfu = update_flops / median["update"] / (peak * 1e9)
        label = f"value={'head on policy trunk' if value_model == 'shared' else 'separate model'}, {compute_dtype}"
        print(
            f"{label}: {BATCH / total:.2f} rollouts/s ({total:.2f} s per iteration; {count:,} trained parameters)\n"
            f"  generation {generation:.2f} s ({BATCH * RESPONSE / generation:,.0f} tokens/s; the sampler alone "
            f"{BATCH * RESPONSE / median['sampler']:,.0f} tokens/s -> {median['sampler'] / generation:.2f} of its "
            f"rate)\n"
            f"  scoring {scoring:.2f} s (reward model {median['reward']:.2f} s, "
            f"reference + critic {median['score']:.2f} s)\n"
            f"  update {median['update']:.2f} s ({update_flops / 1e9:.0f} GFLOP, "
            f"{update_flops / median['update'] / 1e9:.0f} GFLOP/s, MFU {mfu:.2f} of the fp32 peak)",
            flush=True,
        )
        if (value_model, compute_dtype) == ("shared", "float32"):
            verdict = "PASS" if mfu >= 0.6 else "FAIL"
            print(f"  target: update MFU >= 0.6 -> {verdict}; vs TRL's 4.5 rollouts/s: {BATCH / total / 4.5:.1f}x")


if __name__ == "__main__":
    main()
