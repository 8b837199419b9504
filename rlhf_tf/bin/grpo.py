"""`rlhf-tf grpo`: GRPO against a reward (group-normalised advantages over k samples per prompt, no critic).

    rlhf-tf grpo --policy=runs/sft --reward=runs/rm --output_dir=runs/grpo
    rlhf-tf grpo --policy=runs/sft --reward=runs/rm --samples_per_prompt=8 --loss_normalization=constant \\
        --output_dir=runs/grpo-k8

Same run directory as `rlhf-tf ppo` (metrics.json with rl/win_rate_vs_sft_gold, rl/kl_to_reference, ...;
samples.jsonl, policy/, export/policy). The loss choices and their formulas: `rlhf_tf.agents.language.policy_gradient`.
"""

from rlhf_tf.bin import policy_gradient_main, runner


def run(argv=None):
    runner.run_binary(policy_gradient_main.main_for("grpo"), argv)


if __name__ == "__main__":
    run()
