"""`rlhf-tf reinforce`: REINFORCE with a moving-average baseline against a reward (no critic).

    rlhf-tf reinforce --policy=runs/sft --reward=runs/rm --output_dir=runs/reinforce
    rlhf-tf reinforce --policy=runs/sft --reward=runs/rm --samples_per_prompt=8 --loss_normalization=constant \\
        --output_dir=runs/reinforce-k8

Same run directory as `rlhf-tf ppo` (metrics.json with rl/win_rate_vs_sft_gold, rl/kl_to_reference, ...;
samples.jsonl, policy/, export/policy). The loss choices and their formulas: `rlhf_tf.agents.language.policy_gradient`.
"""

from rlhf_tf.bin import policy_gradient_main, runner


def run(argv=None):
    runner.run_binary(policy_gradient_main.main_for("reinforce"), argv)


if __name__ == "__main__":
    run()
