"""`rlhf-tf kto`: learn a policy from unpaired thumbs-up / thumbs-down feedback (KTO).

    rlhf-tf kto --policy=runs/sft --data=thumbs.jsonl --output_dir=runs/kto

--data holds rating records `{"prompt", "response", "score"}` with scores 0 or 1 (what the feedback store exports
for thumbs). Writes the run directory (metrics.json with kto/eval_reward_auc, kto/eval_loss and, with --task, the
evaluation against the starting policy), policy/ and export/policy.
Every field: `rlhf_tf.agents.language.kto.KTOConfig`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, runner

_POLICY = flags.DEFINE_string("policy", None, "KTOConfig.policy: the SFT run to start from (also the reference).")
_DATA = flags.DEFINE_string("data", None, "KTOConfig.data: binary rating records.")
_EVAL_DATA = flags.DEFINE_string("eval_data", "", "KTOConfig.eval_data.")
_BETA = flags.DEFINE_float("beta", None, "KTOConfig.beta.")
_EPOCHS = flags.DEFINE_float("epochs", None, "KTOConfig.epochs (0: use --steps).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "KTOConfig.learning_rate.")
_TASK = flags.DEFINE_string("task", "reviews", "KTOConfig.task: evaluation against the starting policy ('' skips).")
_REWARD = flags.DEFINE_string("reward", "", "KTOConfig.reward: also report the win rate by this reward model.")
_EXPORT = flags.DEFINE_bool("export", True, "KTOConfig.export.")
flags.mark_flag_as_required("policy")
flags.mark_flag_as_required("data")


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.agents.language import kto

    base = kto.KTOConfig(output_dir=common.OUTPUT_DIR.value, policy=_POLICY.value, data=_DATA.value)
    changes = dict(
        eval_data=_EVAL_DATA.value,
        task=_TASK.value,
        reward=_REWARD.value,
        export=_EXPORT.value,
        **common.data_run_changes(base, _TASK.value, base.max_new_tokens),
    )
    changes.update(common.given((("beta", _BETA), ("epochs", _EPOCHS), ("learning_rate", _LEARNING_RATE))))
    metrics = kto.train_kto(dataclasses.replace(base, **changes))
    common.print_metrics(metrics, ("kto/eval", "rl/win", "rl/gold", "rl/sft_gold", "rl/kl_to"))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
