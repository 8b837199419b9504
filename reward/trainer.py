"""Training language reward models from comparisons and rankings on the shared training loop.

The step is a `GradientStep` over the preference pipeline's [batch, K, length] batches: Bradley-Terry (ties as
0.5, optional margins and label noise) for pairs, Plackett-Luce for rankings, plus a small centering penalty. Each
evaluation scores held-out pairs: accuracy, loss, expected calibration error, and, for a bundled task, accuracy
against the task's noiseless gold ordering; when the labels came from a simulated labeler whose report sits next to
the data (labeler.json), its ceiling too. At the end the scores of held-out responses set the normalisation
(mean, std) stored in the model, and export/reward is written.
"""

import dataclasses
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, export, files, hardware, plots, tasks, training
from rlhf_tf.data import pipelines, sources
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.models import families
from rlhf_tf.models import lora as lora_lib
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.reward import ensemble, language_model, losses, metrics


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """Reward-model training.

    Attributes:
      output_dir: the run directory.
      train: comparison or ranking data (JSONL in any accepted shape, TFRecord shards, or a tfds: spec).
      eval: held-out data; empty holds out `eval_fraction` of `train`.
      eval_fraction: the share of `train` held out when `eval` is empty.
      format: force the JSONL shape.
      skip_bad_records: skip malformed records (copied to rejected_records.jsonl) instead of stopping.
      task: a bundled task whose gold scorer adds "reward/eval_accuracy_vs_gold" (and whose tokenizer is used).
      tokenizer: "byte" (default for user data), a WordPiece vocabulary file or a keras-hub preset.
      init_from: start the backbone from a policy (an SFT run directory, saved policy or keras-hub preset); its
        tokenizer is used.
      model: the backbone shape when not initialised from a policy (`PolicyConfig`; `dropout` applies in training
        only, scoring always runs without it).
      pipeline: sequence length, batch size (pairs), shuffling.
      loop: steps, logging, checkpoints, evaluation interval, seed.
      epochs: passes over the training data, the most the run takes when `patience` is set; sets the number of
        steps from the data size (and, without `patience`, evaluation at thirds of the run). 0 uses `loop.steps`
        as given.
      patience: held-out evaluations (`evals_per_epoch` a pass) without a lower calibrated held-out loss before
        training stops; the weights of the best evaluation are kept (`ckpt/best/`) and are what the run scores,
        saves and exports. The calibrated loss (`metrics.calibrated_loss`, "reward/eval_calibrated_loss") is the
        Bradley-Terry loss after the one rescaling of the scores that fits the held-out pairs best: the raw loss
        rises as scores grow confident while the ranking still improves, and stopping on it stopped an
        instruction-following set two passes early (benchmarks/reward_schedule.py). The held-out curves are
        plotted in `plots/heldout.png`. 0, or `epochs` 0 with no `loop.eval_every`: train every step and keep the
        last weights.
      evals_per_epoch: held-out evaluations per pass when `patience` is set.
      learning_rate: AdamW peak learning rate (warm-up then cosine decay).
      weight_decay: AdamW weight decay.
      clip_norm: global gradient-norm clipping.
      label_noise: assumed random-answer rate of the labelers (Bradley-Terry with noise).
      use_margins: use the data's margins in the Bradley-Terry loss.
      centering: coefficient of the reward-centering penalty.
      jit_compile: XLA for the training step (a bf16 step on a CPU runs as a graph: `hardware.use_xla`).
      mixed_precision: "auto" (mixed bf16 on GPUs and TPUs; float32 on CPUs), "bfloat16", "float16" or "float32".
        On a CPU with AVX512_BF16 or AMX, "bfloat16" pays at GPT-2-small sizes (the trainer's step 6.63 s against
        11.53 s in float32, benchmarks/reward_training.py --shape=gpt2_small); "auto" stays float32 on CPUs, whose
        small default model gained nothing from bf16 when it was measured (under XLA: 0.44 vs 0.55 of the peak).
      ensemble_size: train K members on bootstrap resamples (Poisson(1) weights); the exported score is their
        mean, and "reward/eval_disagreement" reports their spread on held-out pairs.
      export: write export/reward.
      strategy: tf.distribute strategy name.
      lora: LoRA adapters on the backbone started from `init_from` (`lora.LoraConfig`; rank 0: the whole backbone
        trains). The adapters and the head train and are checkpointed; the final checkpoint and export hold the
        merged model.
    """

    output_dir: str
    train: str = ""
    eval: str = ""
    eval_fraction: float = 0.1
    format: str = ""
    skip_bad_records: bool = False
    task: str = ""
    tokenizer: str = ""
    init_from: str = ""
    model: policy_lib.PolicyConfig = policy_lib.PolicyConfig(max_sequence_length=128)
    pipeline: pipelines.PipelineConfig = pipelines.PipelineConfig(seq_len=128, max_prompt_tokens=64, batch_size=32)
    loop: training.LoopConfig = training.LoopConfig(steps=600, log_every=50, checkpoint_every=200, eval_every=200)
    epochs: float = 10.0
    patience: int = 2
    evals_per_epoch: int = 2
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    label_noise: float = 0.0
    use_margins: bool = True
    centering: float = 0.01
    jit_compile: bool = True
    mixed_precision: str = "auto"
    ensemble_size: int = 1
    export: bool = True
    strategy: str = "auto"
    lora: lora_lib.LoraConfig = lora_lib.LoraConfig()

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require(bool(self.train), "`train` data is required.", train=self.train)
        configs.require(
            0 < self.eval_fraction < 1, "`eval_fraction` must be in (0, 1).", eval_fraction=self.eval_fraction
        )
        configs.require(0 <= self.label_noise < 1, "`label_noise` must be in [0, 1).", label_noise=self.label_noise)
        configs.require_positive(learning_rate=self.learning_rate, clip_norm=self.clip_norm)
        configs.require_non_negative(epochs=self.epochs, patience=self.patience)
        configs.require_positive(evals_per_epoch=self.evals_per_epoch)

        configs.require_positive(ensemble_size=self.ensemble_size)
        configs.require(
            not self.lora.enabled or bool(self.init_from),
            "LoRA adapts a pretrained backbone: give `init_from` (--backbone) to put adapters on.",
            lora_rank=self.lora.rank,
        )
        configs.require_choice("mixed_precision", self.mixed_precision, ("auto", "bfloat16", "float16", "float32"))


def resolve_precision(setting):
    """The Keras dtype policy for a `mixed_precision` setting."""
    if setting == "auto":
        accelerated = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
        return "mixed_bfloat16" if accelerated else "float32"
    return {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16", "float32": "float32"}[setting]


def _split(records, fraction, seed):
    order = np.random.default_rng(seed).permutation(len(records))
    cut = max(1, int(round(len(records) * fraction)))
    return [records[i] for i in order[cut:]], [records[i] for i in order[:cut]]


def load_data(config):
    """(train records, eval records, stats)."""
    kind = None
    train, stats = sources.load_records(config.train, config.format or None, config.skip_bad_records, config.output_dir)
    kinds = {record.kind for record in train}
    configs.require(
        len(kinds) == 1 and kinds <= {"comparison", "ranking"},
        "Reward training needs comparison or ranking records (one kind per run).",
        kinds=sorted(kinds),
    )
    kind = kinds.pop()
    if config.eval:
        evaluation, _ = sources.load_records(config.eval, config.format or None, kind=kind)
    else:
        train, evaluation = _split(train, config.eval_fraction, config.loop.seed)
    return train, evaluation, kind, stats


def _member(config, tokenizer_spec):
    if config.init_from:
        causal_lm, tokenizer = policy_lib.load_policy(config.init_from, dropout=config.model.dropout)
        families.check_positions(
            causal_lm.backbone, config.pipeline.seq_len, "the pipeline's seq_len", config.init_from
        )
        if config.lora.enabled:
            lora_lib.enable(causal_lm, config.lora, config.init_from)
        return language_model.LanguageRewardModel(causal_lm.backbone), tokenizer
    tokenizer = resolve_tokenizer(tokenizer_spec)
    causal_lm = policy_lib.build_policy(config.model, tokenizer.vocabulary_size)
    return language_model.LanguageRewardModel(causal_lm.backbone), tokenizer


def build_model(config, tokenizer_spec):
    """(reward model, tokenizer): one `LanguageRewardModel`, or a `RewardEnsemble` of `ensemble_size` of them
    (members differ in their head's initialisation, and in their backbone's too when built fresh)."""

    members = [_member(config, tokenizer_spec) for _ in range(config.ensemble_size)]
    tokenizer = members[0][1]
    if config.ensemble_size == 1:
        return members[0][0], tokenizer
    return ensemble.RewardEnsemble([member for member, _ in members]), tokenizer


def preference_loss(model, batch, config, kind, training_mode, example_weights=None):
    """(per-example loss [batch], mean scores [batch, K]); an ensemble's members' losses are added, each weighted
    by its bootstrap `example_weights` [members, batch]."""
    inputs = {"token_ids": batch["token_ids"], "padding_mask": batch["padding_mask"]}
    member_scores = model.member_scores(inputs, training=training_mode) if hasattr(model, "member_scores") else None
    all_scores = member_scores if member_scores is not None else model(inputs, training=training_mode)[None]
    per_member = []
    for index in range(all_scores.shape[0]):
        scores = all_scores[index]
        if kind == "comparison":
            margin = batch["margin"] if config.use_margins else 0.0
            loss = losses.bradley_terry_loss(
                scores[:, 0], scores[:, 1], margin=margin, label_noise=config.label_noise, tie=batch["tie"]
            )
        else:
            loss = losses.plackett_luce_loss(scores, batch["response_present"])
        if example_weights is not None:
            loss = loss * example_weights[index]
        per_member.append(loss)
    return tf.add_n(per_member), tf.reduce_mean(all_scores, axis=0)


def _labeler_report(spec):
    for item in sources.split_specs(spec):
        candidate = training.RunPaths(os.path.dirname(os.path.abspath(item))).labeler_report_path
        if os.path.exists(candidate):
            return files.read_json(candidate)
    return None


def evaluation_functions(model, config, kind):
    """(score, spread): the compiled held-out scoring functions of `evaluate`, made once per run."""

    @tf.function
    def score(batch):
        per_example, scores = preference_loss(model, batch, config, kind, False)
        return per_example, scores

    @tf.function
    def spread(batch):

        members = model.member_scores({"token_ids": batch["token_ids"], "padding_mask": batch["padding_mask"]})
        return ensemble.disagreement(members[:, :, 0], members[:, :, 1])

    return score, spread


def evaluate(model, eval_fn, config, kind, gold_score=None, prompts_and_pairs=None, functions=None):
    """Held-out metrics ("reward/eval_*"). `functions`: `evaluation_functions(...)` (made here when None)."""
    score, spread = functions or evaluation_functions(model, config, kind)
    losses_seen, chosen, rejected, ties, disagreements = [], [], [], [], []
    for batch in eval_fn(None):
        per_example, scores = score(batch)
        losses_seen.append(per_example.numpy())
        chosen.append(scores[:, 0].numpy())
        rejected.append(scores[:, 1].numpy())
        ties.append(batch["tie"].numpy() > 0)
        if hasattr(model, "member_scores"):
            disagreements.append(spread(batch).numpy())
    chosen, rejected, ties = np.concatenate(chosen), np.concatenate(rejected), np.concatenate(ties)
    summary = metrics.pairwise_metrics(chosen, rejected, ties)
    result = {
        "reward/eval_accuracy": summary["accuracy"],
        "reward/eval_loss": float(np.mean(np.concatenate(losses_seen))),
        "reward/eval_ece": summary["ece"],
        "reward/eval_calibrated_loss": summary["calibrated_loss"],
    }
    if disagreements:
        result["reward/eval_disagreement"] = float(np.mean(np.concatenate(disagreements)))
    if gold_score is not None and prompts_and_pairs is not None:
        prompts, firsts, seconds = prompts_and_pairs
        gold_first = gold_score(prompts, firsts)
        gold_second = gold_score(prompts, seconds)
        decided = gold_first != gold_second
        count = min(len(chosen), len(prompts))
        agree = ((chosen[:count] > rejected[:count]) == (gold_first[:count] > gold_second[:count]))[decided[:count]]
        result["reward/eval_accuracy_vs_gold"] = float(np.mean(agree)) if agree.size else float("nan")
    return result, summary


def steps_for(config, num_train):
    """The run's LoopConfig: `loop` as given, or with steps (and evaluation interval) from `epochs`."""
    if not config.epochs:
        return config.loop
    steps_per_epoch = num_train / config.pipeline.batch_size
    steps = max(20, int(np.ceil(config.epochs * steps_per_epoch)))
    if config.patience:
        eval_every = max(1, int(np.ceil(steps_per_epoch / config.evals_per_epoch)))
    else:
        eval_every = max(1, steps // 3)
    return dataclasses.replace(
        config.loop,
        steps=steps,
        eval_every=eval_every,
        checkpoint_every=min(config.loop.checkpoint_every, steps),
        log_every=min(config.loop.log_every, steps),
    )


def resolve_defaults(config):
    """Fills `task` and `init_from` from the labeler report next to the data (written by collect-labels): labels
    sampled from a policy train best from that policy's backbone (as InstructGPT's reward model starts from SFT)."""
    report = _labeler_report(config.eval or config.train) or {}
    changes = {}
    if not config.task and report.get("task"):
        changes["task"] = report["task"]
    policy = report.get("policy", "")
    if not config.init_from and not config.tokenizer and policy and os.path.exists(policy):
        changes["init_from"] = policy
        logging.info("Starting the reward model from the policy that produced the pairs: %s", policy)
    return dataclasses.replace(config, **changes) if changes else config


def train_reward(config):
    """Trains, evaluates, normalises and exports a language reward model; returns the final metrics."""
    return fit_reward(config)[0]


def fit_reward(config):
    """`train_reward`, returning (final metrics, the trained model, its tokenizer)."""
    config = resolve_defaults(config)
    keras.mixed_precision.set_global_policy(resolve_precision(config.mixed_precision))
    strategy = training.create_strategy(config.strategy)
    train, evaluation, kind, stats = load_data(config)
    loop_config = steps_for(config, len(train))
    loop = training.TrainLoop(
        loop_config, config.output_dir, strategy=strategy, run_config=config, metrics_prefix="reward"
    )
    tokenizer_spec = config.tokenizer or "byte"
    gold_score = None
    if config.task:
        task = tasks.get_task(config.task)
        gold_score = task.gold_score
        if not config.tokenizer and not config.init_from:
            tokenizer_spec = task.tokenizer()
    model, tokenizer, optimizer = _model_and_optimizer(config, strategy, loop_config.steps, tokenizer_spec)
    logging.info(
        "Reward model on %d %s records (%d held out), tokenizer %s.", len(train), kind, len(evaluation), tokenizer.name
    )

    def loss_fn(batch):
        weights = None
        if config.ensemble_size > 1:
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            weights = ensemble.bootstrap_weights(
                config.loop.seed * 1000 + replica, loop.step, config.ensemble_size, tf.shape(batch["tie"])[0]
            )
        per_example, scores = preference_loss(model, batch, config, kind, True, weights)
        loss = training.global_mean(per_example)
        present = tf.cast(batch["response_present"], tf.float32)
        mean_score = training.global_mean(scores, present)
        if config.centering:
            loss += config.centering * training.square_of_global(mean_score)
        accuracy = training.global_mean(tf.cast(scores[:, 0] > scores[:, 1], tf.float32))
        return loss, {"accuracy": accuracy, "mean_score": mean_score}

    jit_compile = hardware.use_xla(config.jit_compile, keras.mixed_precision.global_policy().compute_dtype)
    step = training.GradientStep(
        loss_fn, model.trainable_variables, optimizer, clip_norm=config.clip_norm, jit_compile=jit_compile
    )
    train_fn = pipelines.preference_dataset_fn(pipelines.TextSource(train, kind), config.pipeline, tokenizer)
    eval_pipeline = dataclasses.replace(config.pipeline, repeat=False, shuffle_buffer=0, drop_remainder=False)
    eval_fn = pipelines.preference_dataset_fn(pipelines.TextSource(evaluation, kind), eval_pipeline, tokenizer)
    pairs = None
    if kind == "comparison":
        pairs = ([r.prompt for r in evaluation], [r.chosen for r in evaluation], [r.rejected for r in evaluation])

    functions = evaluation_functions(model, config, kind)

    def evaluate_hook(step_number):
        result, _ = evaluate(model, eval_fn, config, kind, gold_score, pairs, functions)
        return result

    early_stopping = None
    if config.patience and loop_config.eval_every:
        early_stopping = training.EarlyStopping(
            "reward/eval_calibrated_loss", {"model": lora_lib.trainable_state(model)}, patience=config.patience
        )
    final = loop.run(
        step,
        train_fn,
        checkpoint={"model": lora_lib.trainable_state(model), "optimizer": optimizer},
        evaluate=evaluate_hook,
        description="reward",
        early_stopping=early_stopping,
    )
    final.update(stats)
    result, summary = evaluate(model, eval_fn, config, kind, gold_score, pairs, functions)
    final.update(result)
    report = _labeler_report(config.eval or config.train)
    if report and "ceiling" in report:
        final["reward/labeler_ceiling"] = report["ceiling"]
        final["reward/labeler_agreement_with_gold"] = report.get("agreement_with_gold", float("nan"))
    run_directory = loop.run_directory
    lora_lib.merge(model)  # the final checkpoint and export/reward hold plain backbones
    _set_normalisation(model, eval_fn)
    final["reward/normalization_mean"] = float(model.reward_mean.numpy())
    final["reward/normalization_std"] = float(model.reward_std.numpy())
    if run_directory.chief:
        _write_outputs(run_directory, config, model, tokenizer, kind, summary)
        heldout_plot(run_directory, final)
    run_directory.update_metrics(final)
    return final, model, tokenizer


def _model_and_optimizer(config, strategy, steps, tokenizer_spec):
    """(model, tokenizer, AdamW with warm-up then cosine decay), built under `strategy`."""
    with strategy.scope():
        model, tokenizer = build_model(config, tokenizer_spec)
        model.build()
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate * 0.01,
            decay_steps=max(1, steps - 50),
            alpha=0.1,
            warmup_target=config.learning_rate,
            warmup_steps=min(50, steps // 10),
        )
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
        optimizer.build(model.trainable_variables)
    return model, tokenizer, optimizer


def _write_outputs(run_directory, config, model, tokenizer, kind, summary):
    """The reliability plot, calibration table, final checkpoint (with the normalisation), export and description."""
    metrics.reliability_plot(summary["bins"], run_directory.reliability_plot_path)
    files.atomic_write_json(run_directory.calibration_path, {"bins": summary["bins"]})
    # Save the normalisation with the weights (readable with tf.train.Checkpoint(model=...).read).
    tf.train.Checkpoint(model=model).write(run_directory.final_reward_checkpoint)
    if config.export:
        export.export_reward(
            model,
            tokenizer,
            run_directory.export_dir("reward"),
            config.pipeline.seq_len,
            config.pipeline.max_prompt_tokens,
        )
    files.atomic_write_json(
        run_directory.reward_model_description_path,
        {
            "tokenizer": tokenizer.config(),
            "kind": kind,
            "seq_len": config.pipeline.seq_len,
            "max_prompt_tokens": config.pipeline.max_prompt_tokens,
        },
    )


def heldout_plot(run_directory, final):
    """plots/heldout.png: held-out loss and accuracy over the run, the kept (best) evaluation marked."""
    scalars = training.read_scalars(run_directory.tensorboard_dir)
    figure, (loss_axes, accuracy_axes) = plots.new_figure(columns=2, size=(11, 4))
    for axes, tag, label in (
        (loss_axes, "reward/eval_calibrated_loss", "held-out loss, calibrated (the stopping criterion)"),
        (accuracy_axes, "reward/eval_accuracy", "held-out accuracy"),
    ):
        steps, values = plots.series(scalars, tag)
        axes.plot(steps, values, marker="o")
        if final.get("reward/best_step", -1) >= 0:
            axes.axvline(final["reward/best_step"], color="gray", linestyle="--", label="kept (best calibrated loss)")
            axes.legend(loc="best")
        axes.set_xlabel("step")
        axes.set_ylabel(label)
    loss_axes.set_title("Reward model: held-out loss")
    accuracy_axes.set_title("Reward model: held-out accuracy")
    return plots.save_png(figure, run_directory.plot_path("heldout.png"))


def _set_normalisation(model, eval_fn):
    """Mean and std of the held-out responses' scores become the model's normalisation."""
    scores = []
    for batch in eval_fn(None):
        values = model({"token_ids": batch["token_ids"], "padding_mask": batch["padding_mask"]}, training=False)
        scores.append(values.numpy()[batch["response_present"].numpy()])
    scores = np.concatenate(scores)
    model.reward_mean.assign(float(np.mean(scores)))
    model.reward_std.assign(float(max(np.std(scores), 1e-6)))


def describe_labels(path):
    """The labeler report next to a data file, if any (for printing)."""
    report = _labeler_report(path)
    return json.dumps(report) if report else ""
