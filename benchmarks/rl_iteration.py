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

At GPT-2 small's shape and a Llama ~100M (issue: scale-up, `--shape=gpt2_small` / `llama_100m`, see shapes.py):
16 prompts of 128 tokens, 256 new tokens, 4 epochs in minibatches of 4, value head on the trunk, fp32, one
warm-up iteration and 2 timed; target: update at least 0.55 of the fp32 peak. MFU there counts the FLOPs of
shapes.py (trunk at every token, output projection at the response positions), and TRL's PPO on the same work is
benchmarks/peers/ppo.py.

usage: python benchmarks/rl_iteration.py [--shape=tiny] [--iterations=5]
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
import shapes  # noqa: E402  (after rlhf_tf)
import tensorflow as tf  # noqa: E402

from rlhf_tf import hardware  # noqa: E402
from rlhf_tf.agents.language import (
    bridge,
    ppo,  # noqa: E402
)
from rlhf_tf.models import families, sampling, transformer  # noqa: E402
from rlhf_tf.reward import language_model  # noqa: E402

BATCH = 64  # prompts per iteration at the tiny shape
LARGE = {"batch": 16, "minibatch_size": 4, "iterations": 2, "warmup": 1}  # per-shape defaults above tiny


def parameters(variables):
    return int(sum(np.prod(variable.shape) for variable in variables))


def reward_function(reward_model, dtype):
    """A TF reward over token ids: the reward model's score read at each response's last token; `dtype` None
    (float32) or tf.bfloat16, as the learners' passes (XLA unless bf16 on a CPU: `hardware.use_xla`)."""

    @tf.function(jit_compile=hardware.use_xla(True, dtype or tf.float32))
    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        ids = tf.concat([prompt_ids, response_ids], axis=1)
        mask = tf.concat([prompt_mask, response_mask], axis=1)
        weights = families.read_weights(reward_model.backbone, dtype)
        hidden = transformer.forward(weights, ids, transformer.positions_from_mask(mask), transformer.causal_mask(mask))
        last = tf.shape(prompt_ids)[1] + tf.reduce_sum(tf.cast(response_mask, tf.int32), axis=1) - 1
        return tf.squeeze(reward_model.head(tf.gather(hidden, last, batch_dims=1)), -1)

    return reward_fn


def prompt_batches(batch, prompt, vocabulary):
    rng = np.random.default_rng(0)
    while True:
        yield {
            "token_ids": tf.constant(rng.integers(1, vocabulary - 1, size=(batch, prompt)), tf.int32),
            "padding_mask": tf.ones((batch, prompt), tf.bool),
        }


def build_models(shape):
    """(policy, reference copy, reward model) of `shape`, seeded."""
    keras.utils.set_random_seed(0)
    policy_lm = shape.build()
    reference_lm = shape.build()
    reference_lm.set_weights(policy_lm.get_weights())
    reward_model = language_model.LanguageRewardModel(shape.build().backbone)
    reward_model.build()
    return policy_lm, reference_lm, reward_model


def run_variant(shape, batch, value_model, compute_dtype, iterations, warmup, minibatch_size):
    dtype = None if compute_dtype == "float32" else tf.bfloat16
    prompt, response, vocabulary = shape.prompt, shape.response, shape.vocabulary
    no_end = vocabulary + 7  # an id never sampled: every response runs its full length
    policy_lm, reference_lm, reward_model = build_models(shape)
    reward_fn = reward_function(reward_model, dtype)
    environment = bridge.TextBanditEnvironment(
        prompt_batches(batch, prompt, vocabulary), reward_fn, batch, prompt, response, vocabulary
    )
    sampling_config = sampling.SamplingConfig(max_new_tokens=response)
    policy = bridge.LanguagePolicy(policy_lm, no_end, 0, sampling_config, vocabulary, prompt, seed=0)
    collector = bridge.RolloutCollector(environment, policy)
    hyperparameters = ppo.PPOHyperparameters(
        minibatch_size=minibatch_size, value_model=value_model, compute_dtype=compute_dtype, missing_end_penalty=0.0
    )
    learner = ppo.PPOLearner(policy_lm, reference_lm, no_end, hyperparameters)
    sampler = sampling.Sampler(policy_lm, no_end, 0, sampling_config)
    prompts = next(prompt_batches(batch, prompt, vocabulary))

    timings = {"collect": [], "reward": [], "sampler": [], "score": [], "update": []}
    for iteration in range(iterations + warmup):  # the first `warmup` compile
        started = time.perf_counter()
        rollout = collector.collect()
        collected = time.perf_counter()
        reward_fn(
            rollout["prompt_ids"], rollout["prompt_mask"], rollout["response_ids"], rollout["response_mask"]
        ).numpy()
        rewarded = time.perf_counter()
        sampler.generate(prompts["token_ids"], prompts["padding_mask"], [1, iteration])["token_ids"].numpy()
        sampled = time.perf_counter()
        training_batch, _ = learner.prepare(rollout)
        prepared = time.perf_counter()
        metrics = learner.optimize(training_batch, iteration)
        optimized = time.perf_counter()
        if iteration >= warmup:
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
    if shape is shapes.SHAPES["tiny"]:  # the tiny rows' accounting: 6 x all parameters x tokens
        update_flops = 6 * count * (prompt + response) * batch * hyperparameters.ppo_epochs
    else:
        sequence = shape.training_flops(shape.sequence, response)
        if value_model != "shared":  # a separate critic's trunk trains too
            sequence += 3 * 2 * shape.trunk_parameters * shape.sequence
        update_flops = sequence * batch * hyperparameters.ppo_epochs
    return median, update_flops, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes.add_flag(parser)
    parser.add_argument("--batch", type=int, default=0, help="prompts per iteration (default 64 tiny, 16 larger)")
    parser.add_argument("--iterations", type=int, default=0, help="timed iterations (default 5 tiny, 2 larger)")
    parser.add_argument("--minibatch_size", type=int, default=0, help="default 16 tiny, 4 larger")
    parser.add_argument("--variants", default="", help="comma-separated value_model:dtype (default: all)")
    args = parser.parse_args()
    tiny = args.shape == "tiny"
    shape = shapes.SHAPES[args.shape]
    batch = args.batch or (BATCH if tiny else LARGE["batch"])
    iterations = args.iterations or (5 if tiny else LARGE["iterations"])
    minibatch_size = args.minibatch_size or (16 if tiny else LARGE["minibatch_size"])
    warmup = 2 if tiny else LARGE["warmup"]
    peak = hardware.matmul_peak_gflops()
    print(f"cpu: {hardware.describe_cpu()}; {os.cpu_count()} cores; fp32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    print(f"shape {shapes.describe(args.shape)}; {batch} prompts, minibatch {minibatch_size}", flush=True)
    variants = [("shared", "float32"), ("policy", "float32")]
    if hardware.has_native_bf16():
        variants.append(("shared", "bfloat16"))
    if args.variants:
        variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    elif not tiny:
        variants = [("shared", "float32")]
    for value_model, compute_dtype in variants:
        median, update_flops, count = run_variant(
            shape, batch, value_model, compute_dtype, iterations, warmup, minibatch_size
        )
        keras.backend.clear_session()
        generation = median["collect"] - median["reward"]
        scoring = median["reward"] + median["score"]
        total = median["collect"] + median["score"] + median["update"]
        mfu = update_flops / median["update"] / (peak * 1e9)
        label = f"value={'head on policy trunk' if value_model == 'shared' else 'separate model'}, {compute_dtype}"
        response = shape.response
        print(
            f"{label}: {batch / total:.2f} rollouts/s ({total:.2f} s per iteration; {count:,} trained parameters)\n"
            f"  generation {generation:.2f} s ({batch * response / generation:,.0f} tokens/s; the sampler alone "
            f"{batch * response / median['sampler']:,.0f} tokens/s -> {median['sampler'] / generation:.2f} of its "
            f"rate)\n"
            f"  scoring {scoring:.2f} s (reward model {median['reward']:.2f} s, "
            f"reference + critic {median['score']:.2f} s)\n"
            f"  update {median['update']:.2f} s ({update_flops / 1e9:.0f} GFLOP, "
            f"{update_flops / median['update'] / 1e9:.0f} GFLOP/s, MFU {mfu:.2f} of the fp32 peak)",
            flush=True,
        )
        if (value_model, compute_dtype) == ("shared", "float32") and tiny:
            verdict = "PASS" if mfu >= 0.6 else "FAIL"
            print(f"  target: update MFU >= 0.6 -> {verdict}; vs TRL's 4.5 rollouts/s: {batch / total / 4.5:.1f}x")
        elif (value_model, compute_dtype) == ("shared", "float32"):
            print(f"  target: update MFU >= 0.55 -> {'PASS' if mfu >= 0.55 else 'FAIL'}", flush=True)


if __name__ == "__main__":
    main()
