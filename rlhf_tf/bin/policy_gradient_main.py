"""What `rlhf-tf reinforce`, `rloo` and `grpo` share: their flags and their main (one binary per algorithm)."""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, rl_flags

_SAMPLES_PER_PROMPT = flags.DEFINE_integer(
    "samples_per_prompt", None, "PolicyGradientHyperparameters.samples_per_prompt: k responses per prompt."
)
_EPOCHS = flags.DEFINE_integer("epochs", None, "PolicyGradientHyperparameters.epochs: passes over each batch.")
_MINIBATCH_SIZE = flags.DEFINE_integer("minibatch_size", None, "PolicyGradientHyperparameters.minibatch_size.")
_KL_IN_REWARD = flags.DEFINE_bool(
    "kl_in_reward", None, "PolicyGradientHyperparameters.kl_in_reward: KL folded into the score (else a loss term)."
)
_LOSS_NORMALIZATION = flags.DEFINE_enum(
    "loss_normalization",
    None,
    ["sequence", "token", "constant"],
    "PolicyGradientHyperparameters.loss_normalization (GRPO / DAPO / Dr. GRPO).",
)
_SCALE_REWARDS = flags.DEFINE_bool(
    "scale_rewards", None, "PolicyGradientHyperparameters.scale_rewards: GRPO's std division (off: Dr. GRPO)."
)
_CLIP_RANGE = flags.DEFINE_float("clip_range", None, "PolicyGradientHyperparameters.clip_range.")


def config_from_flags(algorithm):
    from rlhf_tf.agents.language import policy_gradient

    changes = rl_flags.hyperparameter_changes()
    changes.pop("lr_schedule", None)
    changes.update(common.compute_dtype_changes(policy_gradient.PolicyGradientHyperparameters(algorithm=algorithm)))
    # Built once from every given setting: defaults that depend on others (kl_coef and target_kl on the algorithm,
    # target_kl on kl_coef) are resolved from what was given, not kept from a default instance.
    hyperparameters = policy_gradient.PolicyGradientHyperparameters(
        algorithm=algorithm,
        **changes,
        **common.given(
            (
                ("samples_per_prompt", _SAMPLES_PER_PROMPT),
                ("epochs", _EPOCHS),
                ("minibatch_size", _MINIBATCH_SIZE),
                ("kl_in_reward", _KL_IN_REWARD),
                ("loss_normalization", _LOSS_NORMALIZATION),
                ("scale_rewards", _SCALE_REWARDS),
                ("clip_range", _CLIP_RANGE),
            )
        ),
    )
    base = policy_gradient.PolicyGradientConfig(
        output_dir=common.OUTPUT_DIR.value, rollouts=rl_flags.rollout_config(), hyperparameters=hyperparameters
    )
    return dataclasses.replace(
        base,
        **rl_flags.run_changes(base),
    )


def main_for(algorithm):
    def main(argv):
        del argv
        common.prepare()
        from rlhf_tf.agents.language import policy_gradient

        rl_flags.print_summary(policy_gradient.train_policy_gradient(config_from_flags(algorithm)))

    return main
