"""What the offline preference trainers (DPO, KTO) share: data, the policy pair, cached reference log-probs, the
loop, and the final evaluation and export.

An offline trainer tokenizes its records once to fixed-shape arrays, computes the frozen reference policy's
log-probs of every response once (so training runs one model), trains from those arrays on the shared training
loop, and ends like the RL commands: the held-out evaluation against the starting policy (with a task), samples,
policy/ and export/policy.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from rlhf_tf import configs, hardware, training
from rlhf_tf.agents.language import rl
from rlhf_tf.data import pipelines, sources
from rlhf_tf.models import families, sampling
from rlhf_tf.models import lora as lora_lib
from rlhf_tf.models import policy as policy_lib


@dataclasses.dataclass(frozen=True)
class OfflineConfig:
    """The settings every offline preference trainer takes (`dpo.DPOConfig` and `kto.KTOConfig` add their own).

    Attributes:
      output_dir: the run directory.
      policy: the starting policy and frozen reference (SFT run directory, saved policy or keras-hub preset).
      data: the feedback records (JSONL, TFRecord or tfds:).
      eval_data: held-out records; empty holds out 10% of `data` (seeded).
      format, skip_bad_records: as for every data command.
      beta: the KL strength (temperature of the implicit reward).
      epochs: passes over the data (sets the steps; 0: `loop.steps`).
      learning_rate: AdamW peak learning rate (warm-up over 10% of the steps, then linear decay to 0).
      clip_norm: global gradient-norm clipping.
      pipeline: sequence length, prompt tokens, batch size, shuffling (one bucket: fixed shapes for XLA).
      loop: steps, logging, checkpoints, seed.
      task: bundled task for the final evaluation against the starting policy (gold score, win rate); "" skips it.
      reward: optional reward run directory or SavedModel, to report the reward win rate too.
      num_eval_prompts, max_new_tokens: the final evaluation's prompts and response budget.
      num_samples: held-out samples shown.
      export: write export/policy.
      strategy: tf.distribute strategy name.
      lora: LoRA adapters on the policy (`lora.LoraConfig`; rank 0: the whole policy trains); the frozen base is
        then the reference.
      compute_dtype: "float32", or "bfloat16" for the passes' matmuls (variables and optimizer stay float32; on a
        CPU the step then runs as a graph, `hardware.use_xla`).
      frontier_prompts: held-out prompts of the reward-KL frontier (`frontier.py`, with a task), evaluated at each
        evaluation (four a run) and at the end; 0 turns it off.
    """

    output_dir: str
    policy: str
    data: str
    eval_data: str = ""
    format: str = ""
    skip_bad_records: bool = False
    beta: float = 0.1
    epochs: float = 2.0
    learning_rate: float = 1e-4
    clip_norm: float = 1.0
    pipeline: pipelines.PipelineConfig = pipelines.PipelineConfig(
        seq_len=96, max_prompt_tokens=32, batch_size=32, buckets=(96,)
    )
    loop: training.LoopConfig = training.LoopConfig(steps=1000, log_every=25, checkpoint_every=250)
    task: str = "reviews"
    reward: str = ""
    num_eval_prompts: int = rl.RolloutConfig.num_eval_prompts
    max_new_tokens: int = sampling.MAX_NEW_TOKENS
    num_samples: int = 12
    export: bool = True
    strategy: str = "auto"
    lora: lora_lib.LoraConfig = lora_lib.LoraConfig()
    compute_dtype: str = "float32"
    frontier_prompts: int = 256

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require(bool(self.policy), "`policy` is required (the SFT run to start from).", policy=self.policy)
        configs.require(bool(self.data), "`data` is required.", data=self.data)
        configs.require_positive(beta=self.beta, learning_rate=self.learning_rate, clip_norm=self.clip_norm)
        configs.require_non_negative(epochs=self.epochs, frontier_prompts=self.frontier_prompts)
        configs.require_choice("compute_dtype", self.compute_dtype, ("float32", "bfloat16"))

    @property
    def pass_dtype(self):
        """The passes' dtype argument (`passes.read`): None for float32, else the tf.DType."""
        return None if self.compute_dtype == "float32" else tf.dtypes.as_dtype(self.compute_dtype)

    @property
    def use_xla(self):
        """Whether the steps and passes compile with XLA (not bf16 on a CPU: `hardware.use_xla`)."""
        return hardware.use_xla(True, self.compute_dtype)


def load_split(config, kind):
    """(train records, held-out records, data stats): `eval_data`, or 10% of `data` held out (seeded)."""
    train, stats = sources.load_records(
        config.data, config.format or None, config.skip_bad_records, config.output_dir, kind=kind
    )
    if config.eval_data:
        evaluation, _ = sources.load_records(config.eval_data, config.format or None, kind=kind)
        return train, evaluation, stats
    order = np.random.default_rng(config.loop.seed).permutation(len(train))
    cut = max(1, int(round(len(train) * 0.1)))
    return [train[i] for i in order[cut:]], [train[i] for i in order[:cut]], stats


def loop_config(config, num_train):
    """The loop: `epochs` over the data set the steps (unless 0: `loop.steps`); evaluation four times a run."""
    steps = config.loop.steps
    if config.epochs:
        steps = max(1, int(round(config.epochs * num_train / config.pipeline.batch_size)))
    return dataclasses.replace(
        config.loop,
        steps=steps,
        checkpoint_every=min(config.loop.checkpoint_every, steps),
        log_every=min(config.loop.log_every, steps),
        eval_every=config.loop.eval_every or max(1, steps // 4),
    )


def policies_and_optimizer(config, strategy, steps):
    """(policy, frozen reference, tokenizer, AdamW with 10% linear warm-up then linear decay to 0). Under LoRA the
    reference is the policy itself, whose reference passes run with its adapters off."""
    with strategy.scope():
        causal_lm, tokenizer = policy_lib.load_policy(config.policy, dropout=0.0)
        families.check_positions(causal_lm.backbone, config.pipeline.seq_len, "the pipeline's seq_len", config.policy)
        if config.lora.enabled:
            reference_lm = lora_lib.enable(causal_lm, config.lora, config.policy)  # the base, adapters off
        else:
            reference_lm, _ = policy_lib.load_policy(config.policy, dropout=0.0)
        warmup = max(1, steps // 10)
        schedule = keras.optimizers.schedules.PolynomialDecay(config.learning_rate, max(1, steps - warmup), 0.0)
        optimizer = keras.optimizers.AdamW(learning_rate=WarmUp(schedule, config.learning_rate, warmup))
        optimizer.build(causal_lm.trainable_variables)
    return causal_lm, reference_lm, tokenizer, optimizer


def with_reference(dataset, reference_fn, columns):
    """Numpy arrays of `columns` from a finite dataset, plus "reference_logprobs" from `reference_fn(batch)`."""
    arrays = {name: [] for name in (*columns, "reference_logprobs")}
    for batch in dataset:
        for name in columns:
            arrays[name].append(batch[name].numpy())
        arrays["reference_logprobs"].append(reference_fn(batch).numpy())
    return {name: np.concatenate(values) for name, values in arrays.items()}


def dataset_fn(arrays, batch_size, seed):
    """The training input: the arrays shuffled, repeated and batched per replica."""
    count = len(next(iter(arrays.values())))

    def make(input_context):
        dataset = tf.data.Dataset.from_tensor_slices(arrays).shuffle(count, seed=seed).repeat()
        dataset = training.shard_for_input_pipeline(dataset, input_context)  # after the shuffle: the global batch
        per_replica = training.per_replica_batch_size(batch_size, input_context)
        return dataset.batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return make


def evaluation_batches(arrays, batch_size):
    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)


def evaluation_settings(config):
    """The evaluation and export settings in the form the RL helpers take (no rollouts happen here)."""
    return rl.RolloutConfig(
        policy=config.policy,
        reward=config.reward or "(none)",
        task=config.task or "",
        prompts="" if config.task else config.eval_data or config.data,
        num_eval_prompts=config.num_eval_prompts,
        max_prompt_tokens=config.pipeline.max_prompt_tokens,
        max_new_tokens=config.max_new_tokens,
    )


def with_frontier(evaluate, config, loop, causal_lm, reference_lm, tokenizer):
    """(`evaluate` (the trainer's held-out hook) plus the reward-KL frontier's (`rl.frontier_evaluation`) when the
    run has a task and `frontier_prompts`, the run's `rl.evaluator_factory` for `finish`)."""
    settings = evaluation_settings(config)
    make_evaluator = rl.evaluator_factory(settings, causal_lm, reference_lm, tokenizer)
    if not config.task or not config.frontier_prompts:
        return evaluate, make_evaluator
    _, prompts, task = rl.load_prompts(settings)
    reward_texts = rl.load_reward(config.reward, task) if config.reward else None
    frontier_fn = rl.frontier_evaluation(make_evaluator, prompts[: config.frontier_prompts], reward_texts, task, loop)
    return (lambda step: {**evaluate(step), **frontier_fn(step)}), make_evaluator


def finish(config, loop, causal_lm, reference_lm, tokenizer, metrics, make_evaluator=None):
    """The held-out evaluation against the starting policy (when `config.task`), samples, the saved policy and
    export/policy; merges everything into metrics.json and returns the metrics. `make_evaluator`: the run's
    `rl.evaluator_factory` (from `with_frontier`)."""
    settings = evaluation_settings(config)
    task = None
    evaluation_prompts = []
    if config.task:
        _, evaluation_prompts, task = rl.load_prompts(settings)
    reward_texts = rl.load_reward(config.reward, task) if config.reward else None
    rl.evaluate_and_export(
        config,
        loop,
        settings,
        causal_lm,
        reference_lm,
        tokenizer,
        evaluation_prompts,
        reward_texts,
        task,
        metrics,
        make_evaluator,
    )
    return metrics


class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup` steps, then `schedule` (counted from the end of the warm-up)."""

    def __init__(self, schedule, peak, warmup):
        self.schedule, self.peak, self.warmup = schedule, peak, warmup

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / float(self.warmup)
        return tf.where(step < self.warmup, warm, self.schedule(step - self.warmup))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}
