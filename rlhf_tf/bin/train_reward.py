"""`rlhf-tf train-reward`: learn a reward model from comparisons or rankings.

    rlhf-tf train-reward --train=pairs.jsonl --output_dir=runs/rm                  # any accepted shape, HH layout too
    rlhf-tf train-reward --train=labels/train.jsonl --eval=labels/eval.jsonl \\
        --task=reviews --backbone=runs/sft --output_dir=runs/rm                    # start from the SFT policy
    rlhf-tf train-reward --policy=runs/sft --task=reviews --num_labels=600 --label_rounds=3 \\
        --labeler=web --store=labels.sqlite --output_dir=runs/rm-active            # active learning

Trains until the calibrated held-out loss stops improving (`--patience` evaluations, two a pass, at most `--epochs`
passes) and keeps the best evaluation's weights. Writes metrics.json (reward/eval_accuracy, eval_loss, eval_ece,
eval_calibrated_loss, best_step, stopped_early, ...), reliability.png, plots/heldout.png, config.json, tb/, ckpt/
and export/reward. Every field: `rlhf_tf.reward.trainer.RewardConfig`.

Active learning (`--policy` instead of `--train`): samples candidate pairs from the policy, asks about a random
share first, then in each round about the pairs the reward ensemble disagrees on most, and trains again on every
answer so far; the answers come from the simulated labeler or from people in `rlhf-tf label-server` (`--labeler=web`,
the run waits for them). Adds rounds/ and pool.json to the run directory. Fields:
`rlhf_tf.reward.active.ActiveConfig`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, runner

_TRAIN = flags.DEFINE_string("train", None, "RewardConfig.train: comparisons/rankings (JSONL, TFRecord, tfds:).")
_EVAL = flags.DEFINE_string("eval", "", "RewardConfig.eval: held-out data (default: a share of --train).")
_TASK = flags.DEFINE_string("task", "", "RewardConfig.task: bundled task for gold-ordering accuracy and tokenizer.")
_TOKENIZER = flags.DEFINE_string("tokenizer", "", "RewardConfig.tokenizer (default byte).")
_BACKBONE = flags.DEFINE_string("backbone", "", "RewardConfig.init_from: SFT run directory, policy or preset.")
_ARCHITECTURE = flags.DEFINE_string("architecture", None, "PolicyConfig.architecture of a fresh backbone.")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", None, "PolicyConfig.num_layers of a fresh backbone.")
_HIDDEN_DIM = flags.DEFINE_integer("hidden_dim", None, "PolicyConfig.hidden_dim of a fresh backbone.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "RewardConfig.learning_rate.")
_EPOCHS = flags.DEFINE_float(
    "epochs", None, "RewardConfig.epochs: passes over --train, the most with --patience (0: use --steps)."
)
_PATIENCE = flags.DEFINE_integer(
    "patience",
    None,
    "RewardConfig.patience: held-out evaluations without a lower calibrated held-out loss before stopping, keeping "
    "the best weights (0: train every step, keep the last).",
)
_LABEL_NOISE = flags.DEFINE_float("label_noise", None, "RewardConfig.label_noise.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", None, ["auto", "bfloat16", "float16", "float32"], "RewardConfig.mixed_precision."
)
_EXPORT = flags.DEFINE_bool("export", True, "RewardConfig.export.")
_POLICY = flags.DEFINE_string("policy", "", "ActiveConfig.policy: ask about this policy's responses (active learning).")
_NUM_LABELS = flags.DEFINE_integer("num_labels", None, "ActiveConfig.num_labels: the label budget (with --policy).")
_ROUNDS = flags.DEFINE_integer("label_rounds", None, "ActiveConfig.rounds of asking and training (with --policy).")
_POOL_SIZE = flags.DEFINE_integer("pool_size", None, "ActiveConfig.pool_size: candidate pairs (with --policy).")
_SELECTION = flags.DEFINE_enum("selection", None, ["disagreement", "random"], "ActiveConfig.selection.")
_LABELER = flags.DEFINE_enum(
    "labeler", None, ["simulated", "web"], "ActiveConfig.labeler: web = people in `rlhf-tf label-server`."
)
_STORE = flags.DEFINE_string("store", "", "ActiveConfig.store: the label server's feedback store.")
_LABEL_TIMEOUT = flags.DEFINE_float("label_timeout", None, "ActiveConfig.label_timeout (seconds per round, web).")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "ActiveConfig.temperature of the simulated labeler.")
_ENSEMBLE_SIZE = flags.DEFINE_integer("ensemble_size", None, "RewardConfig.ensemble_size (3 with --policy).")


def config_from_flags():
    from rlhf_tf.reward import trainer

    base = trainer.RewardConfig(output_dir=common.OUTPUT_DIR.value, train=_TRAIN.value or "-")
    model = dataclasses.replace(base.model, **common.given((("architecture", _ARCHITECTURE),)))
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
        **common.data_run_changes(base, _TASK.value),
    )
    changes.update(
        common.given(
            (
                ("learning_rate", _LEARNING_RATE),
                ("epochs", _EPOCHS),
                ("patience", _PATIENCE),
                ("label_noise", _LABEL_NOISE),
                ("mixed_precision", _MIXED_PRECISION),
                ("ensemble_size", _ENSEMBLE_SIZE),
            )
        )
    )
    return dataclasses.replace(base, **changes)


def active_config_from_flags():
    from rlhf_tf.reward import active

    reward = config_from_flags()
    defaults = active.ActiveConfig.reward
    if _ENSEMBLE_SIZE.value is None:
        reward = dataclasses.replace(reward, ensemble_size=defaults.ensemble_size)
    if common.STEPS.value is None and _EPOCHS.value is None:
        reward = dataclasses.replace(reward, epochs=defaults.epochs)
    if _PATIENCE.value is None:
        reward = dataclasses.replace(reward, patience=defaults.patience)
    return active.ActiveConfig(
        output_dir=common.OUTPUT_DIR.value,
        policy=_POLICY.value,
        task=_TASK.value or active.ActiveConfig.task,
        store=_STORE.value,
        reward=reward,
        seed=common.SEED.value,
        **common.given(
            (
                ("num_labels", _NUM_LABELS),
                ("rounds", _ROUNDS),
                ("pool_size", _POOL_SIZE),
                ("selection", _SELECTION),
                ("labeler", _LABELER),
                ("label_timeout", _LABEL_TIMEOUT),
                ("temperature", _TEMPERATURE),
            )
        ),
    )


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.errors import UserInputError
    from rlhf_tf.reward import active, trainer

    if bool(_TRAIN.value) == bool(_POLICY.value):
        raise UserInputError(
            "Give either --train (labelled data) or --policy (active learning: ask about its responses). "
            f"Received: train={_TRAIN.value!r}, policy={_POLICY.value!r}"
        )
    if _POLICY.value:
        metrics = active.train_active(active_config_from_flags())
        common.print_metrics(metrics, ("reward/eval_", "active/"))
        return
    common.print_metrics(trainer.train_reward(config_from_flags()), ("reward/eval_", "reward/labeler", "data/"))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
