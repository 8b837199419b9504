"""What every RL fine-tuning command shares: prompts, the reward, rollouts through the TF-Agents bridge, evaluation
against the starting policy, samples and export.

The reward (`RolloutConfig.reward`) is one of:
- a reward run directory (`rlhf-tf train-reward`'s output; its `export/reward` SavedModel is used) or any reward
  SavedModel with the CONTRACTS.md signature (prompt, response strings -> score);
- "gold": the task's gold scorer itself (an upper bound for experiments; the quickstart never trains on it);
- in Python, any `(prompts, responses) -> [batch] float` function over strings.
"""

import dataclasses
import json
import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece ops of exported tokenizers)

from rlhf_tf import configs, files, tasks, training
from rlhf_tf import export as export_lib
from rlhf_tf.agents.language import bridge, evaluation, frontier
from rlhf_tf.data import pipelines, records, sources
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import lora as lora_lib
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.models import sampling
from rlhf_tf.reward import loading as reward_loading

# The KL coefficient against the starting policy, per method: the one place its default is set. PPO and GRPO hold
# 0.1 (PPO at 0.05 over-optimised the learned reward on one seed of three: gold win rate 0.81 at KL 9.2, against
# 0.88 at KL 5.6 with 0.1); RLOO and REINFORCE subtract 0.05 x the sequence KL from the score (Ahmadian et al. 2024).
KL_COEF_DEFAULTS = {"ppo": 0.1, "grpo": 0.1, "rloo": 0.05, "reinforce": 0.05}


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """Where rollouts come from and how they are scored.

    Attributes:
      policy: the starting policy: an SFT run directory, a saved policy or a keras-hub preset. It is also the
        frozen reference for the KL penalty and the baseline of the win rates.
      reward: a reward run directory, a reward SavedModel, or "gold" (the task's scorer; experiments only).
      task: the bundled task giving prompts and the gold scorer (empty: prompts from `prompts`, no gold score).
      prompts: prompt data (JSONL `{"prompt": ...}` or any shape with prompts, TFRecord, tfds:); overrides the
        task's training prompts.
      eval_prompts: held-out prompts for evaluation; empty takes the task's evaluation prompts (or 5% of `prompts`).
      num_prompts: training prompts taken from the task.
      num_eval_prompts: held-out prompts the final evaluation samples (1,000: win-rate standard error <= 0.016).
      batch_size: prompts (and responses) per iteration.
      max_prompt_tokens: prompts keep their last this many tokens (left-padded to this length).
      max_new_tokens: the response budget.
      temperature: the sampling temperature of rollouts.
      exact_sampling: in a multi-worker run, each worker draws its rows' tokens over the global batch's shape, so
        they are the tokens one process would sample and the run repeats a single process's (`sampling.Sampler`);
        the draw then costs N x batch/N x vocabulary per token on every worker (about 12 ns an element on a CPU,
        far less on accelerators: docs/scaling.md). False: each worker draws over its own rows from its own seed,
        the same distribution at 1/N of that cost, and the run differs from one process's by sampling noise.
    """

    policy: str = ""
    reward: str = ""
    task: str = "reviews"
    prompts: str = ""
    eval_prompts: str = ""
    num_prompts: int = 20_000
    num_eval_prompts: int = 1000
    batch_size: int = 64
    max_prompt_tokens: int = sampling.MAX_PROMPT_TOKENS
    max_new_tokens: int = sampling.MAX_NEW_TOKENS
    temperature: float = 1.0
    exact_sampling: bool = True

    def __post_init__(self):
        configs.require(bool(self.policy), "`policy` is required (an SFT run directory or preset).", policy="")
        configs.require(bool(self.reward), "`reward` is required (a reward run directory or SavedModel).", reward="")
        configs.require(
            bool(self.task or self.prompts), "Give a `task` or `prompts`.", task=self.task, prompts=self.prompts
        )
        configs.require_positive(
            num_prompts=self.num_prompts,
            num_eval_prompts=self.num_eval_prompts,
            batch_size=self.batch_size,
            max_prompt_tokens=self.max_prompt_tokens,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
        )


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings every online RL command takes (`ppo.PPOConfig` and the others add their `hyperparameters`).

    Attributes:
      output_dir: the run directory.
      rollouts: the policy, reward, prompts and sampling (`RolloutConfig`).
      loop: `steps` is the number of iterations (one batch of rollouts and its updates each); logging, checkpoints
        and the seed as in every run.
      num_samples: held-out samples shown in samples.jsonl and TensorBoard.
      export: write export/policy.
      strategy: tf.distribute strategy name (see `training.create_strategy`); minibatches split over replicas.
      lora: LoRA adapters on the policy (`lora.LoraConfig`; rank 0: the whole policy trains). With adapters, the
        frozen base is the reference (no second copy of the weights) and only the adapters are checkpointed.
      frontier_prompts: held-out prompts of the reward-KL frontier (`frontier.py`), evaluated every
        `loop.eval_every` iterations (0: a quarter of the run) and at the end; 0 turns it off.
    """

    output_dir: str
    rollouts: RolloutConfig
    loop: training.LoopConfig = training.LoopConfig(steps=160, log_every=1, checkpoint_every=10)
    num_samples: int = 12
    export: bool = True
    strategy: str = "auto"
    lora: lora_lib.LoraConfig = lora_lib.LoraConfig()
    frontier_prompts: int = 256

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require_non_negative(frontier_prompts=self.frontier_prompts)

    def require_divides(self, size, name):
        """`rollouts.batch_size` must be a multiple of `size` (a minibatch, a group of samples per prompt)."""
        configs.require(
            self.rollouts.batch_size % size == 0,
            f"`batch_size` must be a multiple of `{name}`.",
            batch_size=self.rollouts.batch_size,
            **{name: size},
        )


def load_reward(spec, task=None):
    """`(prompts, responses) -> float32 [batch]` over strings, from a run directory, SavedModel, "gold" or callable."""
    if callable(spec):
        return spec
    if spec == "gold":
        if task is None:
            raise UserInputError("reward='gold' needs a task with a gold scorer. Received: task=''")
        return task.gold_score

    return reward_loading.load_scorer(spec)


def prompts_as_written(tokenizer, prompts, chunk=1024):
    """`texts -> texts`: each detokenized prompt of `prompts` back as it was written, others (a prompt cut to its last
    tokens) unchanged. Rollouts hold token ids, and a tokenizer that lowercases and splits punctuation (the tasks'
    WordPiece ones) loses what a Python scorer reads ("Translate to Veltan:", "Human:", the turns' line breaks), so
    the reward and the rollouts' gold score see the prompts as written."""
    written = {}
    for start in range(0, len(prompts), chunk):
        batch = list(prompts[start : start + chunk])
        for text, prompt in zip(tokenizer.detokenize(tokenizer.tokenize(batch)).numpy(), batch):
            written.setdefault(text.decode("utf-8", "replace"), prompt)
    return lambda texts: [written.get(text, text) for text in texts]


def load_prompts(config):
    """(training prompts as `records.Prompt`, evaluation prompt strings, task or None)."""
    task = None
    if config.task:
        task = tasks.get_task(config.task)
    if config.prompts:
        loaded, _ = sources.load_records(config.prompts, kind=None)
        train = [records.Prompt(record.prompt) for record in loaded]
        if not train:
            raise UserInputError(f"No prompts in the data. Received: prompts={config.prompts}")
    else:
        train = task.training_prompts(config.num_prompts)
    if config.eval_prompts:
        loaded, _ = sources.load_records(config.eval_prompts, kind=None)
        evaluation = [record.prompt for record in loaded][: config.num_eval_prompts]
    elif task is not None and not config.prompts:
        evaluation = [prompt.prompt for prompt in task.evaluation_prompts(config.num_eval_prompts)]
    else:
        cut = max(1, len(train) // 20)
        evaluation, train = [prompt.prompt for prompt in train[:cut]], train[cut:]
    return train, evaluation, task


class Rollouts:
    """The TF-Agents side of a run: prompts as a `TextBanditEnvironment`, the policy as a `LanguagePolicy`, and a
    `RolloutCollector` (a `DynamicStepDriver` into a replay buffer) that yields one batch per call.

    With `samples_per_prompt` = k each batch holds `batch_size / k` prompts, each repeated k times in consecutive
    rows. Resume: the prompt stream skips the batches already used and the sampling counter is checkpointed
    (`checkpoint_objects`), so a resumed run samples exactly what the uninterrupted one would have.

    With `share` = (worker, workers) this process collects only its share of each batch: rows
    worker * batch_size / workers onwards, sampled (the very tokens of a single process, `sampling.Sampler`) and
    scored by this worker alone; `training.distribution.gather_rows` puts the batch together on every worker.
    """

    def __init__(
        self,
        config,
        causal_lm,
        tokenizer,
        reward_texts,
        train_prompts,
        seed,
        start_iteration=0,
        samples_per_prompt=1,
        share=(0, 1),
    ):
        worker, workers = share
        rows = config.batch_size // workers
        offset = worker * rows
        pipeline = pipelines.PipelineConfig(
            seq_len=config.max_prompt_tokens + 1,
            max_prompt_tokens=config.max_prompt_tokens,
            batch_size=config.batch_size // samples_per_prompt,
            buckets=(config.max_prompt_tokens,),
            shuffle_buffer=min(len(train_prompts), 10_000),
            seed=seed,
        )
        dataset = pipelines.prompt_dataset_fn(pipelines.TextSource(train_prompts, "prompt"), pipeline, tokenizer)(None)
        dataset = dataset.skip(start_iteration) if start_iteration else dataset
        if samples_per_prompt > 1:  # k samples of each prompt, as consecutive rows (a group)
            repeat = lambda batch: {
                name: tf.repeat(batch[name], samples_per_prompt, axis=0) for name in ("token_ids", "padding_mask")
            }
            dataset = dataset.map(repeat)
        if workers > 1:
            dataset = dataset.map(lambda batch: {name: value[offset : offset + rows] for name, value in batch.items()})
        self._batches = dataset
        self.tokenizer = tokenizer
        self._as_written = prompts_as_written(tokenizer, [prompt.prompt for prompt in train_prompts])
        score_as_written = lambda prompts, responses: reward_texts(self._as_written(prompts), responses)  # noqa: E731
        self.environment = bridge.TextBanditEnvironment(
            self._batches,
            bridge.text_reward(score_as_written, tokenizer),
            rows,
            config.max_prompt_tokens,
            config.max_new_tokens,
            tokenizer.vocabulary_size,
        )
        sampling_config = sampling.SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=config.temperature)
        self.policy = bridge.LanguagePolicy(
            causal_lm,
            tokenizer.end_id,
            tokenizer.pad_id,
            sampling_config,
            tokenizer.vocabulary_size,
            config.max_prompt_tokens,
            # Inexact: the worker's own stream (a seed no other worker or run seed shares).
            seed=seed if config.exact_sampling else seed + 1_000_003 * worker,
            rows=(offset, config.batch_size) if workers > 1 and config.exact_sampling else None,
        )
        self.collector = bridge.RolloutCollector(self.environment, self.policy)

    def checkpoint_objects(self):
        return {"sampling_calls": self.policy._calls}

    def collect(self):
        return self.collector.collect()

    def texts(self, rollout):
        """(prompt strings as written, response strings) of a rollout batch."""
        prompts = self.tokenizer.detokenize(rollout["prompt_ids"], rollout["prompt_mask"]).numpy()
        responses = self.tokenizer.detokenize(rollout["response_ids"], rollout["response_mask"]).numpy()
        decode = lambda texts: [text.decode("utf-8", "replace") for text in texts]
        return self._as_written(decode(prompts)), decode(responses)


def load_policies(config, strategy, lora=None):
    """(policy, frozen reference, tokenizer), both from `config.policy`, dropout off. With `lora` (a `LoraConfig`
    of rank > 0) the policy carries adapters and the reference is the same model: its passes run with the adapters
    off (`lora.adapters_off`)."""
    with strategy.scope():
        causal_lm, tokenizer = policy_lib.load_policy(config.policy, dropout=0.0)
        if lora is not None and lora.enabled:
            lora_lib.enable(causal_lm, lora, config.policy)
            return causal_lm, causal_lm, tokenizer
        reference_lm, _ = policy_lib.load_policy(config.policy, dropout=0.0)
    reference_lm.trainable = False
    return causal_lm, reference_lm, tokenizer


def evaluator_factory(settings, causal_lm, reference_lm, tokenizer):
    """`() -> evaluation.PolicyEvaluator` of the run's policy against its starting policy with the sampling settings
    of `settings` (a `RolloutConfig`), built on the first call and then the same one: the frontier's evaluations and
    the final one share its compiled samplers."""
    built = []

    def make_evaluator():
        if not built:
            built.append(
                evaluation.PolicyEvaluator(
                    causal_lm,
                    reference_lm,
                    tokenizer,
                    settings.max_new_tokens,
                    settings.max_prompt_tokens,
                    evaluation_batch_size(settings),
                )
            )
        return built[0]

    return make_evaluator


def evaluation_batch_size(settings):
    """Prompts per evaluation batch: the rollout batch, at least 64."""
    return max(settings.batch_size, 64)


def final_evaluation(evaluator, evaluation_prompts, reward_texts, task, seed, progress=True):
    """`rl/...` metrics on the held-out prompts against the starting policy, and every sample row."""
    gold, task_metrics = (task.gold_score, task.metrics) if task is not None else (None, None)
    metrics, rows = evaluator.evaluate(
        evaluation_prompts, gold, reward_texts, seed=seed, progress=progress, task_metrics=task_metrics
    )
    renamed = {f"rl/{evaluation.public_name(name)}": value for name, value in metrics.items()}
    return renamed, rows


def write_samples(output_dir, rows, writer, step):
    """samples.jsonl (policy vs starting policy on held-out prompts) and the same table in TensorBoard."""
    files.atomic_write_text(
        training.RunPaths(output_dir).samples_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    )
    with writer.as_default():
        table = "\n".join(f"| {row['prompt']} | {row['policy']} | {row['baseline']} |" for row in rows)
        tf.summary.text("rl/samples", "| prompt | policy | starting policy |\n|---|---|---|\n" + table, step=step)


def save_and_export(output_dir, run_directory, causal_lm, tokenizer, config, export=True):
    """Saves the trained policy (keras-hub preset + tokenizer) and its serving SavedModel in export/policy."""

    # Adapters are folded into the kernels: policy/ and the SavedModel are plain models (the base is not needed
    # after this, the run's last step).
    lora_lib.merge(causal_lm)
    policy_lib.save_policy(training.RunPaths(output_dir).policy_dir, causal_lm, tokenizer)
    if export:
        export_lib.export_policy(
            causal_lm,
            tokenizer,
            run_directory.export_dir("policy"),
            sampling.SamplingConfig(max_new_tokens=config.max_new_tokens),
            max_prompt_tokens=config.max_prompt_tokens,
        )


def rollout_gold(task, texts):
    """Mean gold score of a rollout batch's (prompts, responses), or None without a task."""
    if task is None:
        return None
    return float(np.mean(task.gold_score(*texts)))


def ended(rollout, end_id):
    """[batch] bool: whether each response emitted the end token."""
    mask = tf.cast(rollout["response_mask"], tf.bool)
    return tf.reduce_any(tf.logical_and(tf.equal(rollout["response_ids"], end_id), mask), axis=1)


def length_controlled(scores, response_mask, penalty, target):
    """Length control: `scores` minus `penalty` per response token beyond `target`, a tf.Variable that, while 0,
    is set to 1.1 x this batch's mean length (the starting policy's, on the first batch) and then kept."""
    if not penalty:
        return scores
    lengths = tf.reduce_sum(tf.cast(response_mask, tf.float32), axis=1)
    if float(target.numpy()) <= 0:
        target.assign(1.1 * float(tf.reduce_mean(lengths)))
    return scores - penalty * tf.nn.relu(lengths - target)


def penalized_scores(rollout, end_id, missing_end_penalty, length_penalty, length_target):
    """(scores after the missing-end penalty and length control [batch], ended [batch] bool)."""
    finished = ended(rollout, end_id)
    scores = tf.cast(rollout["reward"], tf.float32) - missing_end_penalty * (1.0 - tf.cast(finished, tf.float32))
    return length_controlled(scores, rollout["response_mask"], length_penalty, length_target), finished


def latest_step(loop):
    """The iteration a rerun resumes from (the latest checkpoint's number), before the loop restores it."""
    latest = tf.train.latest_checkpoint(loop.run_directory.checkpoint_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def train_rl(config, make_learner, reward_fn=None, description="rl", samples_per_prompt=1):
    """The RL run every online method shares: prompts, reward, policies, rollouts through the TF-Agents bridge,
    `config.loop.steps` iterations of `learner.update(rollout, step)` on the training loop (checkpoints, exact
    resume, TensorBoard, progress), then the held-out evaluation against the starting policy, samples, the saved
    policy and export/policy. Returns the final metrics (also in metrics.json).

    Args:
      config: a run config with `output_dir`, `rollouts` (`RolloutConfig`), `loop`, `num_samples`, `export`,
        `strategy`.
      make_learner: `(causal_lm, reference_lm, tokenizer, strategy) -> learner` with `update(rollout, iteration)`
        and `checkpoint_objects()`.
      reward_fn: optional `(prompts, responses) -> [batch]` over strings, used instead of `config.rollouts.reward`.
    """
    r = config.rollouts
    strategy = training.create_strategy(config.strategy)
    loop_config = frontier_loop(config.loop, config.frontier_prompts)
    loop = training.TrainLoop(loop_config, config.output_dir, strategy=strategy, run_config=config, metrics_prefix="rl")
    loop.shown_metrics = ("score", "rollout_gold_score", "kl", "response_length", "clip_fraction")
    train_prompts, evaluation_prompts, task = load_prompts(r)
    reward_texts = load_reward(reward_fn or r.reward, task)
    causal_lm, reference_lm, tokenizer = load_policies(r, strategy, config.lora)
    learner = make_learner(causal_lm, reference_lm, tokenizer, strategy)
    start = latest_step(loop)
    if start:
        logging.info("Resuming RL at iteration %d.", start)
    share = training.distribution.worker_share(strategy)
    config.require_divides(share[1] * samples_per_prompt, "workers_times_samples_per_prompt")
    rollouts = Rollouts(
        r, causal_lm, tokenizer, reward_texts, train_prompts, config.loop.seed, start, samples_per_prompt, share
    )

    def iteration(step):
        # Each worker samples and scores its share; every worker then holds the whole batch for the update.
        rollout = training.distribution.gather_rows(strategy, rollouts.collect())
        metrics = learner.update(rollout, step)
        gold = rollout_gold(task, rollouts.texts(rollout))
        if gold is not None:
            metrics["rollout_gold_score"] = gold
        return metrics

    checkpoint = {**learner.checkpoint_objects(), **rollouts.checkpoint_objects()}
    make_evaluator = evaluator_factory(r, causal_lm, reference_lm, tokenizer)
    prompts = evaluation_prompts[: config.frontier_prompts]
    evaluate = frontier_evaluation(make_evaluator, prompts, reward_texts, task, loop)
    metrics = loop.run_iterations(iteration, checkpoint, evaluate=evaluate, description=description)
    return evaluate_and_export(
        config,
        loop,
        r,
        causal_lm,
        reference_lm,
        tokenizer,
        evaluation_prompts,
        reward_texts,
        task,
        metrics,
        make_evaluator,
    )


def frontier_loop(loop_config, frontier_prompts):
    """The loop config with an evaluation interval for the reward-KL frontier: `eval_every` as given, or a quarter
    of the run when it is 0 (four points and the end); unchanged without a frontier."""
    if not frontier_prompts or loop_config.eval_every:
        return loop_config
    return dataclasses.replace(loop_config, eval_every=max(1, loop_config.steps // 4))


def frontier_evaluation(make_evaluator, prompts, reward_texts, task, loop):
    """The evaluation hook of the reward-KL frontier (`frontier.evaluation_fn`): the policy on `prompts` against
    the starting policy with the run's evaluator (`evaluator_factory`), which samples as the final evaluation does,
    so the last point is the final evaluation's on its first prompts; None without prompts."""
    if not prompts:
        return None
    gold = task.gold_score if task is not None else None
    return frontier.evaluation_fn(make_evaluator, prompts, gold, reward_texts, loop.config.seed)


def evaluate_and_export(
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
    make_evaluator=None,
):
    """How every policy-training run ends: the held-out evaluation against the starting policy when there is a task
    (shared out over the workers of a multi-worker run), then on the chief samples.jsonl and TensorBoard samples,
    the saved policy and export/policy; then metrics.json.

    Args:
      config: the run's config (`output_dir`, `num_samples`, `export`, `loop`).
      settings: a `RolloutConfig` with the evaluation's sampling settings.
      metrics: the training metrics, updated in place with the evaluation's.
      make_evaluator: the run's `evaluator_factory` (made here when None).
    """
    run_directory = loop.run_directory
    if task is not None:
        make_evaluator = make_evaluator or evaluator_factory(settings, causal_lm, reference_lm, tokenizer)
        progress = config.loop.progress and run_directory.chief
        final, rows = final_evaluation(
            make_evaluator(), evaluation_prompts, reward_texts, task, config.loop.seed, progress
        )
        metrics.update(final)
    if run_directory.chief:
        if task is not None:
            write_samples(config.output_dir, rows[: config.num_samples], run_directory.summary_writer(), loop.step)
        frontier.plot(
            {"policy": frontier.points(config.output_dir)},
            os.path.join(training.RunPaths(config.output_dir).plots_dir, "frontier.png"),
        )
        save_and_export(config.output_dir, run_directory, causal_lm, tokenizer, settings, config.export)
    run_directory.update_metrics(metrics)
    return metrics
