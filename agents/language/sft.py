"""Supervised fine-tuning (SFT): learn to write the demonstrations' completions, and to end them.

The loss is the token cross-entropy on completion tokens and the end token only (the prompt is context, never a
target), averaged over real target tokens across all replicas. It runs on the shared training loop (strategy,
checkpoints, exact resume, TensorBoard, progress), evaluates held-out perplexity, writes sampled completions to
TensorBoard and metrics.json, and saves the policy (keras-hub preset + tokenizer) and its serving SavedModel.
"""

import dataclasses
import logging
import math

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, export, files, tasks, training
from rlhf_tf.data import family_tokenizers, pipelines, sources
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.models import families, sampling
from rlhf_tf.models import lora as lora_lib
from rlhf_tf.models import policy as policy_lib


@dataclasses.dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning.

    Attributes:
      output_dir: the run directory.
      task: a bundled task whose demonstrations to learn ("reviews"), used when `data` is empty.
      data: demonstration data (JSONL, TFRecord or tfds: spec); overrides the task's corpus.
      eval_data: held-out demonstrations for perplexity; empty takes the task's held-out split or 5% of `data`.
      format: force the JSONL shape of `data`.
      skip_bad_records: skip malformed records (copied to rejected_records.jsonl) instead of stopping.
      tokenizer: "byte", a WordPiece vocabulary file, a keras-hub preset, or "family": the architecture's own kind
        (SentencePiece or byte-pair, `family_tokenizers`) trained on the demonstrations; empty uses the task's
        (byte for data).
      tokenizer_vocabulary_size: the vocabulary a "family" tokenizer learns.
      num_examples: demonstrations taken from the task's corpus.
      num_eval_examples: held-out demonstrations for perplexity.
      policy: the network (`PolicyConfig`); its preset may name a run directory or keras-hub preset to continue.
      pipeline: sequence length, batch size and shuffling (`PipelineConfig`).
      loop: steps, logging, checkpoints, seed (`LoopConfig`).
      learning_rate: peak learning rate of AdamW (linear warm-up, cosine decay to 10%).
      warmup_steps: steps of linear warm-up.
      weight_decay: AdamW weight decay.
      clip_norm: global gradient-norm clipping.
      jit_compile: compile the training step with XLA.
      num_samples: completions sampled from held-out prompts at the end (shown in TensorBoard and samples.jsonl).
      max_new_tokens: the sampling budget for those completions and for the exported policy.
      export: write export/policy (the serving SavedModel).
      strategy: tf.distribute strategy name (see `training.create_strategy`).
      lora: LoRA adapters on a pretrained `policy.preset` (`lora.LoraConfig`; rank 0: the whole model trains).
        Only the adapters train and are checkpointed; policy/ and the export hold the merged model.
    """

    output_dir: str
    task: str = "reviews"
    data: str = ""
    eval_data: str = ""
    format: str = ""
    skip_bad_records: bool = False
    tokenizer: str = ""
    tokenizer_vocabulary_size: int = 1024
    num_examples: int = 20_000
    num_eval_examples: int = 1000
    policy: policy_lib.PolicyConfig = policy_lib.PolicyConfig()
    pipeline: pipelines.PipelineConfig = pipelines.PipelineConfig(seq_len=64, max_prompt_tokens=32, batch_size=64)
    loop: training.LoopConfig = training.LoopConfig(steps=3000, log_every=50, checkpoint_every=500)
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    jit_compile: bool = True
    num_samples: int = 10
    max_new_tokens: int = sampling.MAX_NEW_TOKENS
    export: bool = True
    strategy: str = "auto"
    lora: lora_lib.LoraConfig = lora_lib.LoraConfig()

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require(bool(self.task or self.data), "Give a `task` or `data`.", task=self.task, data=self.data)
        configs.require(
            not self.lora.enabled or bool(self.policy.preset),
            "LoRA adapts a pretrained model: give the policy's `preset` (--preset) to put adapters on.",
            lora_rank=self.lora.rank,
        )
        configs.require_positive(learning_rate=self.learning_rate, clip_norm=self.clip_norm)
        configs.require_non_negative(warmup_steps=self.warmup_steps, num_samples=self.num_samples)
        configs.require(
            self.pipeline.seq_len <= self.policy.max_sequence_length,
            "`pipeline.seq_len` must fit the policy's `max_sequence_length`.",
            seq_len=self.pipeline.seq_len,
            max_sequence_length=self.policy.max_sequence_length,
        )


def _data(config):
    """(train records, eval records, tokenizer, data stats)."""
    stats = {}
    if config.data:
        train, stats = sources.load_records(
            config.data, config.format or None, config.skip_bad_records, config.output_dir, kind="demonstration"
        )
        if config.eval_data:
            evaluation, _ = sources.load_records(config.eval_data, kind="demonstration")
        else:
            cut = max(1, len(train) // 20)
            evaluation, train = train[:cut], train[cut:]
    else:
        task = tasks.get_task(config.task)
        train = task.demonstrations(config.num_examples)
        evaluation = task.held_out_demonstrations(config.num_eval_examples)
    return train, evaluation, _tokenizer(config, train), stats


def _tokenizer(config, train):
    """The tokenizer `config.tokenizer` names; "family" trains the architecture's own kind on the demonstrations."""
    if config.tokenizer == "family":
        texts = [record.prompt + record.completion for record in train]
        return family_tokenizers.trained(config.policy.architecture, texts, config.tokenizer_vocabulary_size)
    if config.data:
        return resolve_tokenizer(config.tokenizer or "byte")
    return resolve_tokenizer(config.tokenizer) if config.tokenizer else tasks.get_task(config.task).tokenizer()


def token_losses(causal_lm, batch, training_mode):
    """Per-token negative log-likelihoods [batch, length - 1] and their target weights (completion + end)."""
    backbone = causal_lm.backbone
    hidden = backbone({"token_ids": batch["token_ids"], "padding_mask": batch["padding_mask"]}, training=training_mode)
    logits = backbone.token_embedding(hidden[:, :-1], reverse=True)
    targets = batch["token_ids"][:, 1:]
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
    weights = tf.cast(batch["loss_mask"][:, 1:], tf.float32)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=targets.dtype), targets), tf.float32)
    return nll, weights, correct


def _learning_rate(config):
    decay_steps = max(1, config.loop.steps - config.warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.01 if config.warmup_steps else config.learning_rate,
        decay_steps=decay_steps,
        alpha=0.1,
        warmup_target=config.learning_rate if config.warmup_steps else None,
        warmup_steps=config.warmup_steps,
    )


def evaluate_perplexity(causal_lm, evaluation_fn):
    """exp(mean completion-token NLL) over a finite evaluation dataset, and the mean NLL."""

    @tf.function
    def sums(batch):
        nll, weights, _ = token_losses(causal_lm, batch, False)
        return tf.reduce_sum(nll * weights), tf.reduce_sum(weights)

    total, count = 0.0, 0.0
    for batch in evaluation_fn(None):
        loss, weight = sums(batch)
        total += float(loss)
        count += float(weight)
    mean = total / max(count, 1.0)
    return math.exp(min(mean, 50.0)), mean


def sample_completions(
    causal_lm, tokenizer, prompts, max_new_tokens, seed=0, max_prompt_tokens=32, sampling_config=None
):
    """Samples one completion per prompt (by default at temperature 1, as RL samples); returns
    [(prompt, completion, ended)]."""
    batch = next(iter(pipelines.prompt_batches(prompts, tokenizer, max_prompt_tokens, len(prompts))))
    sampling_config = sampling_config or sampling.SamplingConfig(max_new_tokens=max_new_tokens)
    sampler = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, sampling_config)
    out = sampler.generate(batch["token_ids"], batch["padding_mask"], [seed, 0])
    texts = tokenizer.detokenize(out["token_ids"], out["mask"]).numpy()
    ended = tf.reduce_any(tf.logical_and(tf.equal(out["token_ids"], tokenizer.end_id), out["mask"]), axis=1).numpy()
    return [(prompt, text.decode("utf-8", "replace"), bool(end)) for prompt, text, end in zip(prompts, texts, ended)]


def train_sft(config):
    """Runs SFT; returns the final metrics (also in metrics.json)."""
    strategy = training.create_strategy(config.strategy)
    loop = training.TrainLoop(
        config.loop, config.output_dir, strategy=strategy, run_config=config, metrics_prefix="sft"
    )
    train, evaluation, tokenizer, data_stats = _data(config)
    logging.info("SFT on %d demonstrations (%d held out), tokenizer %s.", len(train), len(evaluation), tokenizer.name)
    with strategy.scope():
        if config.policy.preset:
            causal_lm, tokenizer = policy_lib.load_policy(config.policy.preset, dropout=config.policy.dropout)
            needed = max(config.pipeline.seq_len, config.pipeline.max_prompt_tokens + config.max_new_tokens)
            needed_for = "the pipeline's seq_len, and max_prompt_tokens + max_new_tokens for samples"
            families.check_positions(causal_lm.backbone, needed, needed_for, config.policy.preset)
            if config.lora.enabled:
                lora_lib.enable(causal_lm, config.lora, config.policy.preset)
        else:
            causal_lm = policy_lib.build_policy(config.policy, tokenizer.vocabulary_size)
        optimizer = keras.optimizers.AdamW(
            learning_rate=_learning_rate(config), weight_decay=config.weight_decay, beta_2=0.98
        )
        optimizer.build(causal_lm.trainable_variables)

    def loss_fn(batch):
        nll, weights, correct = token_losses(causal_lm, batch, True)
        loss = training.global_mean(nll, weights)
        return loss, {
            "token_accuracy": training.global_mean(correct, weights),
            "truncated": training.global_mean(tf.cast(batch["truncated"], tf.float32)),
        }

    step = training.GradientStep(
        loss_fn, causal_lm.trainable_variables, optimizer, clip_norm=config.clip_norm, jit_compile=config.jit_compile
    )
    train_fn = pipelines.demonstration_dataset_fn(
        pipelines.TextSource(train, "demonstration"), config.pipeline, tokenizer
    )
    eval_pipeline = dataclasses.replace(config.pipeline, repeat=False, shuffle_buffer=0, drop_remainder=False)
    eval_fn = pipelines.demonstration_dataset_fn(
        pipelines.TextSource(evaluation, "demonstration"), eval_pipeline, tokenizer
    )

    def evaluate(step_number):
        perplexity, loss = evaluate_perplexity(causal_lm, eval_fn)
        return {"sft/eval_perplexity": perplexity, "sft/eval_loss": loss}

    metrics = loop.run(
        step,
        train_fn,
        checkpoint={"model": lora_lib.trainable_state(causal_lm), "optimizer": optimizer},
        evaluate=evaluate,
        description="sft",
    )
    lora_lib.merge(causal_lm)  # policy/, samples and the export use the merged model
    metrics.update(data_stats)
    run_directory = loop.run_directory
    if run_directory.chief:
        policy_lib.save_policy(training.RunPaths(config.output_dir).policy_dir, causal_lm, tokenizer)
        if config.num_samples:
            metrics.update(_write_samples(config, causal_lm, tokenizer, evaluation, run_directory))
        if config.export:
            export.export_policy(
                causal_lm,
                tokenizer,
                run_directory.export_dir("policy"),
                sampling.SamplingConfig(max_new_tokens=config.max_new_tokens),
                max_prompt_tokens=config.pipeline.max_prompt_tokens,
            )
    run_directory.update_metrics(metrics)
    return metrics


def _write_samples(config, causal_lm, tokenizer, evaluation, run_directory):

    prompts = [demo.prompt for demo in evaluation[: config.num_samples]]
    samples = sample_completions(
        causal_lm,
        tokenizer,
        prompts,
        config.max_new_tokens,
        seed=config.loop.seed,
        max_prompt_tokens=config.pipeline.max_prompt_tokens,
    )
    lines = [{"prompt": prompt, "completion": completion, "ended": ended} for prompt, completion, ended in samples]
    files.atomic_write_text(
        training.RunPaths(config.output_dir).samples_path,
        "".join(__import__("json").dumps(line, ensure_ascii=False) + "\n" for line in lines),
    )
    with run_directory.summary_writer().as_default():
        table = "\n".join(f"| {p} | {c} |" for p, c, _ in samples)
        tf.summary.text("sft/samples", "| prompt | completion |\n|---|---|\n" + table, step=config.loop.steps)
    result = {"sft/samples_ended": float(np.mean([ended for _, _, ended in samples]))}
    if config.task and not config.data:
        gold = tasks.get_task(config.task).gold_score([p for p, _, _ in samples], [c for _, c, _ in samples])
        result["sft/samples_gold_score"] = float(np.mean(gold))
    return result
