"""`rlhf-tf online-dpo`: DPO on fresh pairs sampled from the current policy and ranked by a reward, each iteration.

    rlhf-tf online-dpo --policy=runs/sft --reward=runs/rm --output_dir=runs/online-dpo

Same run directory as `rlhf-tf ppo` (metrics.json with rl/win_rate_vs_sft_gold, rl/kl_to_reference, ...;
samples.jsonl, policy/, export/policy). Every field: `rlhf_tf.agents.language.dpo.OnlineDPOConfig`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, rl_flags, runner
from rlhf_tf.errors import UserInputError

_BETA = flags.DEFINE_float("beta", None, "OnlineDPOHyperparameters.beta.")
_LOSS = flags.DEFINE_enum("loss", None, ["sigmoid", "ipo", "hinge"], "OnlineDPOHyperparameters.loss.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "OnlineDPOHyperparameters.epochs over each iteration's pairs.")
_MINIBATCH_SIZE = flags.DEFINE_integer("minibatch_size", None, "OnlineDPOHyperparameters.minibatch_size (pairs).")
_MIN_SCORE_GAP = flags.DEFINE_float("min_score_gap", None, "OnlineDPOHyperparameters.min_score_gap.")


def config_from_flags():
    from rlhf_tf.agents.language import dpo

    changes = rl_flags.hyperparameter_changes()
    changes.update(common.compute_dtype_changes(dpo.OnlineDPOHyperparameters()))
    refused = sorted(name for name in ("lr_schedule", "kl_coef", "target_kl", "kl_horizon") if name in changes)
    if refused:
        # DPO's beta is its KL strength, and its learning rate is constant: a given flag is never silently dropped.
        raise UserInputError(
            "online-dpo has no KL coefficient or target (its --beta sets the strength of the KL constraint) and a "
            f"constant learning rate. Received: {', '.join(f'--{name}={changes[name]}' for name in refused)}"
        )
    hyperparameters = dataclasses.replace(
        dpo.OnlineDPOHyperparameters(),
        **changes,
        **common.given(
            (
                ("beta", _BETA),
                ("loss", _LOSS),
                ("epochs", _EPOCHS),
                ("minibatch_size", _MINIBATCH_SIZE),
                ("min_score_gap", _MIN_SCORE_GAP),
            )
        ),
    )
    base = dpo.OnlineDPOConfig(
        output_dir=common.OUTPUT_DIR.value, rollouts=rl_flags.rollout_config(), hyperparameters=hyperparameters
    )
    return dataclasses.replace(
        base,
        **rl_flags.run_changes(base),
    )


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.agents.language import dpo

    rl_flags.print_summary(dpo.train_online_dpo(config_from_flags()))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
