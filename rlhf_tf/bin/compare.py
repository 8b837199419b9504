"""`rlhf-tf compare`: every method on the bundled task with the same label budget, in one table and one plot.

    rlhf-tf compare                                       # seed 0, all methods, into runs/compare
    rlhf-tf compare --seeds=0,1,2 --methods=ppo,grpo,rloo  # 3 seeds of the RL methods

Per seed the quickstart's SFT, comparisons and reward model are shared by every method (best-of-n, PPO, GRPO, RLOO,
online DPO against the reward model; offline DPO on the comparisons). Writes comparison.md, comparison.json and
comparison.png in --output_dir, and one run directory per seed and method (rerunning resumes). The shared stages
take the quickstart's flags (--sft_steps, --num_pairs, ...). Fields: `rlhf_tf.agents.recipes.compare.CompareConfig`.
"""

from absl import flags

from rlhf_tf.bin import common, runner
from rlhf_tf.bin import quickstart as quickstart_flags

_SEEDS = flags.DEFINE_list("seeds", ["0"], "CompareConfig.seeds.")
_METHODS = flags.DEFINE_list(
    "methods", ["best-of-n", "ppo", "grpo", "rloo", "online-dpo", "dpo"], "CompareConfig.methods."
)
_ITERATIONS = flags.DEFINE_integer("iterations", 160, "CompareConfig.iterations of every online method.")
_BEST_OF_N = flags.DEFINE_integer("best_of_n", 16, "CompareConfig.best_of_n.")


def main(argv):
    del argv
    from rlhf_tf.agents.recipes import compare

    settings = compare.CompareConfig(
        output_dir=common.OUTPUT_DIR.value or "runs/compare",
        seeds=tuple(int(seed) for seed in _SEEDS.value),
        methods=tuple(_METHODS.value),
        quickstart=quickstart_flags.config_from_flags(),
        iterations=_ITERATIONS.value,
        best_of_n=_BEST_OF_N.value,
    )
    compare.run_compare(settings)
    with open(f"{settings.output_dir}/comparison.md") as handle:
        print(handle.read())


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
