"""`rlhf-tf best-of-n`: the inference-time baseline: n samples per prompt, the reward model's favourite kept.

    rlhf-tf best-of-n --policy=runs/sft --reward=runs/rm --n=16 --output_dir=runs/bon16

Evaluates best-of-n against one sample of the same policy on the held-out prompts (metrics.json:
rl/win_rate_vs_sft_gold, rl/win_rate_vs_sft_reward, rl/gold_score, rl/kl_to_reference = log n - (n - 1) / n, ...),
writes samples.jsonl and export/policy (best-of-n in one SavedModel). Fields: `rlhf_tf.agents.language.best_of_n`.
"""

from absl import flags

from rlhf_tf.bin import common, rl_flags, runner

_N = flags.DEFINE_integer("n", 16, "BestOfNConfig.n: responses sampled per prompt.")


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.agents.language import best_of_n

    config = best_of_n.BestOfNConfig(
        output_dir=common.OUTPUT_DIR.value,
        rollouts=rl_flags.rollout_config(),
        n=_N.value,
        seed=common.SEED.value,
        export=rl_flags.EXPORT.value,
    )
    rl_flags.print_summary(best_of_n.run_best_of_n(config))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
