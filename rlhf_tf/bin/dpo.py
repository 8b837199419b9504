"""`rlhf-tf dpo`: learn a policy from comparisons without a reward model (DPO, IPO or hinge), offline.

    rlhf-tf dpo --policy=runs/sft --data=labels/train.jsonl --eval_data=labels/eval.jsonl --output_dir=runs/dpo
    rlhf-tf dpo --policy=runs/sft --data=pairs.jsonl --loss=ipo --beta=0.5 --output_dir=runs/ipo

Writes the run directory (metrics.json with dpo/eval_reward_accuracy, dpo/eval_loss and, with --task, the held-out
evaluation against the starting policy: rl/win_rate_vs_sft_gold, rl/kl_to_reference, ...), policy/ and
export/policy. Every field: `rlhf_tf.agents.language.dpo.DPOConfig`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, runner

_POLICY = flags.DEFINE_string("policy", None, "DPOConfig.policy: the SFT run to start from (also the reference).")
_DATA = flags.DEFINE_string("data", None, "DPOConfig.data: comparisons (JSONL, TFRecord or tfds:).")
_EVAL_DATA = flags.DEFINE_string("eval_data", "", "DPOConfig.eval_data: held-out comparisons.")
_LOSS = flags.DEFINE_enum("loss", "sigmoid", ["sigmoid", "ipo", "hinge"], "DPOConfig.loss.")
_BETA = flags.DEFINE_float("beta", None, "DPOConfig.beta.")
_LABEL_SMOOTHING = flags.DEFINE_float("label_smoothing", None, "DPOConfig.label_smoothing (cDPO).")
_EPOCHS = flags.DEFINE_float("epochs", None, "DPOConfig.epochs (0: use --steps).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "DPOConfig.learning_rate.")
_TASK = flags.DEFINE_string("task", "reviews", "DPOConfig.task: evaluation against the starting policy ('' skips).")
_REWARD = flags.DEFINE_string("reward", "", "DPOConfig.reward: also report the win rate by this reward model.")
_NUM_EVAL_PROMPTS = flags.DEFINE_integer("num_eval_prompts", None, "DPOConfig.num_eval_prompts.")
_EXPORT = flags.DEFINE_bool("export", True, "DPOConfig.export.")
flags.mark_flag_as_required("policy")
flags.mark_flag_as_required("data")


def config_from_flags():
    from rlhf_tf.agents.language import dpo

    base = dpo.DPOConfig(output_dir=common.OUTPUT_DIR.value, policy=_POLICY.value, data=_DATA.value)
    changes = dict(
        eval_data=_EVAL_DATA.value,
        loss=_LOSS.value,
        task=_TASK.value,
        reward=_REWARD.value,
        export=_EXPORT.value,
        **common.data_run_changes(base, _TASK.value, base.max_new_tokens),
    )
    changes.update(
        common.given(
            (
                ("beta", _BETA),
                ("label_smoothing", _LABEL_SMOOTHING),
                ("epochs", _EPOCHS),
                ("learning_rate", _LEARNING_RATE),
                ("num_eval_prompts", _NUM_EVAL_PROMPTS),
            )
        )
    )
    return dataclasses.replace(base, **changes)


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.agents.language import dpo

    metrics = dpo.train_dpo(config_from_flags())
    common.print_metrics(metrics, ("dpo/eval", "rl/win", "rl/gold", "rl/sft_gold", "rl/kl_to", "rl/response_length"))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
