"""`rlhf-tf train-reward`: learn a reward model from comparisons or rankings.

    rlhf-tf train-reward --train=pairs.jsonl --output_dir=runs/rm                  # any accepted shape, HH layout too
    rlhf-tf train-reward --train=labels/train.jsonl --eval=labels/eval.jsonl \\
        --task=reviews --backbone=runs/sft --output_dir=runs/rm                    # start from the SFT policy

Writes metrics.json (reward/eval_accuracy, eval_loss, eval_ece, ...), reliability.png, config.json, tb/, ckpt/ and
export/reward. Every field: `rlhf_tf.reward.trainer.RewardConfig`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, runner

_TRAIN = flags.DEFINE_string("train", None, "RewardConfig.train: comparisons/rankings (JSONL, TFRecord, tfds:).")
_EVAL = flags.DEFINE_string("eval", "", "RewardConfig.eval: held-out data (default: a share of --train).")
_TASK = flags.DEFINE_string("task", "", "RewardConfig.task: bundled task for gold-ordering accuracy and tokenizer.")
_TOKENIZER = flags.DEFINE_string("tokenizer", "", "RewardConfig.tokenizer (default byte).")
_BACKBONE = flags.DEFINE_string("backbone", "", "RewardConfig.init_from: SFT run directory, policy or preset.")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", None, "PolicyConfig.num_layers of a fresh backbone.")
_HIDDEN_DIM = flags.DEFINE_integer("hidden_dim", None, "PolicyConfig.hidden_dim of a fresh backbone.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "RewardConfig.learning_rate.")
_LABEL_NOISE = flags.DEFINE_float("label_noise", None, "RewardConfig.label_noise.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", None, ["auto", "bfloat16", "float16", "float32"], "RewardConfig.mixed_precision."
)
_EXPORT = flags.DEFINE_bool("export", True, "RewardConfig.export.")
flags.mark_flag_as_required("train")


def config_from_flags():
    from rlhf_tf.reward import trainer

    base = trainer.RewardConfig(output_dir=common.OUTPUT_DIR.value, train=_TRAIN.value)
    model = base.model
    if _NUM_LAYERS.value is not None:
        model = dataclasses.replace(model, num_layers=_NUM_LAYERS.value)
    if _HIDDEN_DIM.value is not None:
        model = dataclasses.replace(model, hidden_dim=_HIDDEN_DIM.value, intermediate_dim=4 * _HIDDEN_DIM.value)
    changes = dict(
        eval=_EVAL.value,
        task=_TASK.value,
        tokenizer=_TOKENIZER.value,
        init_from=_BACKBONE.value,
        model=model,
        export=_EXPORT.value,
        **common.data_run_changes(base),
    )
    changes.update(
        common.given(
            (("learning_rate", _LEARNING_RATE), ("label_noise", _LABEL_NOISE), ("mixed_precision", _MIXED_PRECISION))
        )
    )
    return dataclasses.replace(base, **changes)


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.reward import trainer

    common.print_metrics(trainer.train_reward(config_from_flags()), ("reward/eval_", "reward/labeler", "data/"))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
