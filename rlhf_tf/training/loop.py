"""The training loop every trainer shares: a compiled step under tf.distribute, checkpoints, resume, summaries.

A trainer builds its models and optimizer under `loop.strategy.scope()`, writes a step function (usually a
`GradientStep`), a dataset function, and calls `loop.run`. The loop owns the rest:

- the step runs inside `strategy.run` in a `tf.function`, `steps_per_loop` steps per call, with the values the
  step returns (replica shares, see `distribution`) summed across replicas;
- `tf.train.CheckpointManager` saves the step counter, the loop's random generator and everything the trainer
  hands in (models, optimizers, Keras seed generators live in their layers); rerunning with the same output
  directory restores the latest checkpoint and continues from the same step on the same input position (the input
  pipeline must be deterministic, as seeded tf.data pipelines are: the loop skips the batches already consumed);
- TensorBoard scalars, a progress bar with rate, ETA and metrics, evaluation hooks at fixed steps;
- Ctrl-C or SIGTERM saves a checkpoint and re-raises KeyboardInterrupt, so the run can be resumed; in a
  multi-worker run, SIGTERM on any worker makes every worker save at the same step (TensorFlow's
  PreemptionCheckpointHandler) and raise `rlhf_tf.errors.Preempted`;
- metrics.json and config.json in the run directory, written atomically.
"""

import contextlib
import gc
import logging
import math
import signal
import threading
import time

import keras
import tensorflow as tf

from rlhf_tf import hardware
from rlhf_tf.errors import Preempted
from rlhf_tf.training import distribution
from rlhf_tf.training.progress import Progress
from rlhf_tf.training.run_directory import RunDirectory


def seed_everything(seed):
    """Seeds Python's `random`, NumPy, TensorFlow's global seed and Keras' seed generators."""
    keras.utils.set_random_seed(seed)


def enable_determinism():
    """TensorFlow's op determinism for this process: same seed, same machine, same numbers (`LoopConfig`)."""
    tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turns SIGTERM (preemption, `kill`) into KeyboardInterrupt so that it saves like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _seed_states(objects):
    """The random-seed state of Keras layers (Dropout's SeedGenerator), which tf.train.Checkpoint does not track.

    Without it a resumed run would replay the dropout masks of the steps it already took.
    """
    states = {}
    for name, value in objects.items():
        if isinstance(value, keras.layers.Layer):
            weights = {id(weight) for weight in value.weights}
            seeds = [variable.value for variable in value.variables if id(variable) not in weights]
            if seeds:
                states[f"{name}_seed_states"] = seeds
    return states


class TrainingDiverged(FloatingPointError):
    """A logged metric became NaN or infinite."""


class TrainLoop:
    """Runs a step function over a distributed dataset with checkpoints, resume, summaries and progress.

    Constructing the loop seeds everything, so build models after it (under `loop.strategy.scope()`).

    Args:
      config: a `LoopConfig`.
      output_dir: the run directory (README, "Run directories").
      strategy: a tf.distribute strategy; None takes the current one (the default strategy outside any scope).
      run_config: the trainer's whole config, saved as config.json (defaults to `config`).
      metrics_prefix: the group under which training metrics are logged and saved ("reward", "sft", ...).
    """

    def __init__(self, config, output_dir, strategy=None, run_config=None, metrics_prefix="train"):
        self.config = config
        self.shown_metrics = ()  # metric names (without group) the progress bar shows first
        self.strategy = strategy or tf.distribute.get_strategy()
        self.metrics_prefix = metrics_prefix
        seed_everything(config.seed)
        if config.deterministic:
            enable_determinism()
        resolver = getattr(self.strategy, "cluster_resolver", None)
        worker_id = getattr(resolver, "task_id", 0) or 0
        self.run_directory = RunDirectory(output_dir, chief=distribution.is_chief(self.strategy), worker_id=worker_id)
        with self.strategy.scope():
            self.step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name="global_step",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            self.rng = tf.random.Generator.from_seed(config.seed)
        self.run_directory.write_config(run_config if run_config is not None else config)

    def run(self, step_fn, dataset_fn, checkpoint, evaluate=None, description=None, early_stopping=None):
        """Trains to `config.steps` and returns the final metrics (also merged into metrics.json).

        Args:
          step_fn: `batch -> {name: scalar share}`, run in replica context; see `GradientStep`.
          dataset_fn: `tf.distribute.InputContext -> tf.data.Dataset` of per-replica batches, endless and
            deterministic (shard with `distribution.shard_for_input_pipeline`, batch with
            `distribution.per_replica_batch_size`).
          checkpoint: `{name: trackable}` saved and restored with the loop's own state (models, optimizers, ...).
          evaluate: optional `step -> {"group/name": number}`, called every `eval_every` steps and at the end.
          description: the progress bar's label (defaults to the metrics prefix).
          early_stopping: an `EarlyStopping` fed every evaluation (`eval_every` must be set): the run ends when it
            says so, and the best evaluation's weights are restored before returning.
        """
        manager = self._restore(checkpoint, early_stopping)
        start = int(self.step.numpy())
        iterator = iter(self.strategy.distribute_datasets_from_function(self._skipping(dataset_fn, start)))
        train_chunk = self._compile(step_fn, iterator)
        try:
            return self._drive(train_chunk, manager, evaluate, description, self.config.steps_per_loop, early_stopping)
        finally:
            # The compiled functions capture the endless input iterator. Released here, its prefetch threads stop
            # now; left to interpreter exit, each one's teardown waits on them.
            del train_chunk, iterator
            gc.collect()

    def run_iterations(self, iteration_fn, checkpoint, evaluate=None, description=None, early_stopping=None):
        """Like `run`, for steps that are host-level iterations rather than one compiled step over a dataset:
        `iteration_fn(step) -> {name: scalar}` is called once per step (one PPO iteration: rollouts, then
        several epochs of updates). Checkpoints, exact resume, logging, progress, evaluation and metrics.json work
        as in `run`; `iteration_fn` must draw its randomness from `step` (or from state in `checkpoint`) so that a
        resumed run repeats the uninterrupted one.
        """
        manager = self._restore(checkpoint, early_stopping)

        def one_iteration(count):
            del count
            outputs = iteration_fn(int(self.step.numpy()))
            self.step.assign_add(1)
            return outputs

        return self._drive(one_iteration, manager, evaluate, description, 1, early_stopping)

    def _restore(self, checkpoint, early_stopping=None):
        if early_stopping is not None:
            if not self.config.eval_every:
                raise ValueError("Early stopping needs periodic evaluations: set `eval_every`.")
            early_stopping.attach(self.run_directory.best_checkpoint_dir)
            checkpoint = {**checkpoint, "early_stopping": early_stopping.state}
        state = tf.train.Checkpoint(step=self.step, rng=self.rng, **checkpoint, **_seed_states(checkpoint))
        manager = tf.train.CheckpointManager(
            state, self.run_directory.checkpoint_dir, max_to_keep=self.config.keep_checkpoints
        )
        # Every worker resumes from the chief's checkpoint (another worker's own saves go to a scratch folder that
        # a restarted or moved worker may not have).
        latest = tf.train.latest_checkpoint(self.run_directory.shared_checkpoint_dir)
        if latest:
            state.restore(latest).assert_existing_objects_matched()
            logging.info("Resumed from %s at step %d.", latest, int(self.step.numpy()))
        return manager

    def _drive(self, train_chunk, manager, evaluate, description, steps_per_call, early_stopping=None):
        config = self.config
        start = int(self.step.numpy())
        progress = Progress(
            config.steps,
            initial=min(start, config.steps),
            description=description or self.metrics_prefix,
            enabled=config.progress and self.run_directory.chief,
        )
        writer = self.run_directory.summary_writer()
        final = {}
        step = start
        started_at, timed_from_step, timed_from = time.perf_counter(), None, None
        evaluation_seconds = 0.0
        last_evaluation = None  # (step, results) of the evaluation that stopped the run early
        stopped = early_stopping is not None and bool(early_stopping.stopped.numpy())
        training_ended = time.perf_counter()
        preemption = distribution.preemption_for(self.strategy)
        if preemption is None:
            stopping = _sigterm_as_interrupt()
        else:

            def preempted():
                raise Preempted(int(self.step.numpy()), self.run_directory.shared_checkpoint_dir)

            stopping = preemption.watching(manager.save, preempted)
        try:
            with stopping:
                while step < config.steps and not stopped:
                    count = min(steps_per_call, self._steps_to_next_event(step))
                    outputs = train_chunk(count)
                    step += count
                    progress.advance(count)
                    if timed_from is None:  # the first call compiles; time the steady state after it
                        timed_from_step, timed_from = step, time.perf_counter()
                    if step % config.log_every == 0 or step == config.steps:
                        final.update(self._log(outputs, step, writer, progress))
                    if step % config.checkpoint_every == 0 and step < config.steps:
                        manager.save(checkpoint_number=step)
                    if config.eval_every and step % config.eval_every == 0 and step < config.steps and evaluate:
                        evaluation_started = time.perf_counter()
                        results = self._evaluate(evaluate, step, writer, progress)
                        if early_stopping is not None and early_stopping.observe(step, results):
                            stopped, last_evaluation = True, (step, results)
                            progress.write(
                                f"step {step}: stopping early, {early_stopping.metric} has not improved for "
                                f"{early_stopping.patience} evaluations (best at step "
                                f"{int(early_stopping.best_step.numpy())})"
                            )
                        evaluation_seconds += time.perf_counter() - evaluation_started
                    if preemption is not None:
                        preemption.check(step)
                # The steady-state rate ends with the last step: the end-of-run checkpoint below is written once,
                # not per step (periodic checkpoints above are counted).
                training_ended = time.perf_counter()
                saved = manager.latest_checkpoint is not None and manager.latest_checkpoint.endswith(f"-{step}")
                if not saved or last_evaluation is not None:  # a save before the stopping evaluation lacks it
                    manager.save(checkpoint_number=step)
        except KeyboardInterrupt:
            self._save_on_interrupt(manager, progress)
            raise
        finally:
            progress.close()
            writer.flush()

        if evaluate is not None:
            if last_evaluation is not None and last_evaluation[0] == step:
                final.update(last_evaluation[1])
            else:
                results = self._evaluate(evaluate, step, writer, progress)
                final.update(results)
                if early_stopping is not None:
                    early_stopping.observe(step, results)
        if early_stopping is not None:
            if early_stopping.restore_best(step):
                final.update({name: float(value) for name, value in evaluate(step).items()})
            final.update(early_stopping.metrics(self.metrics_prefix))
        writer.flush()
        if timed_from is not None and step > timed_from_step:
            # Steady-state training rate: compilation (the first call), evaluations and the end-of-run checkpoint
            # left out; logging and periodic checkpoints included.
            final[f"{self.metrics_prefix}/steps_per_second"] = (step - timed_from_step) / (
                training_ended - timed_from - evaluation_seconds
            )
        final[f"{self.metrics_prefix}/steps"] = step
        final[f"{self.metrics_prefix}/peak_memory_mb"] = hardware.peak_memory_mb()
        logging.info("%s finished %d steps in %.1f s.", self.metrics_prefix, step, time.perf_counter() - started_at)
        self.run_directory.update_metrics(final)
        self._remove_worker_scratch()
        return final

    def _skipping(self, dataset_fn, start):
        def dataset_for_pipeline(input_context):
            dataset = dataset_fn(input_context)
            if not isinstance(dataset, tf.data.Dataset):
                raise TypeError(f"`dataset_fn` must return a tf.data.Dataset. Received: {type(dataset).__name__}")
            batches_per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
            return dataset.skip(start * batches_per_step) if start else dataset

        return dataset_for_pipeline

    def _compile(self, step_fn, iterator):
        """The compiled chunk of steps. The iterator is captured, not passed: a call then has no argument for
        tf.function to inspect, which keeps the host's per-call cost at its minimum."""
        strategy = self.strategy

        def one_step():
            if strategy.num_replicas_in_sync > 1:  # the metrics summed over replicas in one collective
                totals = distribution.run_summed(strategy, step_fn, next(iterator))
                self.step.assign_add(1)
                return totals
            per_replica = strategy.run(step_fn, args=(next(iterator),))
            if not isinstance(per_replica, dict):
                raise TypeError(
                    f"The step function must return a dict of scalar metrics. Received: {type(per_replica).__name__}"
                )
            self.step.assign_add(1)
            return {
                name: tf.cast(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None), tf.float32)
                for name, value in per_replica.items()
            }

        @tf.function
        def train_many(count):
            totals = one_step()
            for _ in tf.range(count - 1):
                totals = {name: total + value for (name, total), value in zip(totals.items(), one_step().values())}
            return {name: total / tf.cast(count, tf.float32) for name, total in totals.items()}

        # A single step needs no while loop around it, and skipping the loop keeps per-call overhead at its minimum.
        train_one = tf.function(one_step)

        def train_chunk(count):
            return train_one() if count == 1 else train_many(tf.constant(count, tf.int64))

        return train_chunk

    def _steps_to_next_event(self, step):
        config = self.config
        intervals = [config.log_every, config.checkpoint_every] + ([config.eval_every] if config.eval_every else [])
        next_event = min(step - step % interval + interval for interval in intervals)
        return min(next_event, config.steps) - step

    def _log(self, outputs, step, writer, progress):
        values = {f"{self.metrics_prefix}/{name}": float(value) for name, value in outputs.items()}
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if bad:
            raise TrainingDiverged(
                f"Training diverged at step {step}: {bad}. Lower the learning rate, clip gradients "
                "(clip_norm) or check the data; the last good checkpoint is in "
                f"{self.run_directory.checkpoint_dir}."
            )
        with writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=step)
        progress.show(values, self.shown_metrics)
        return values

    def _evaluate(self, evaluate, step, writer, progress):
        results = {name: float(value) for name, value in evaluate(step).items()}
        with writer.as_default():
            for name, value in results.items():
                tf.summary.scalar(name, value, step=step)
        if results:
            progress.write(f"step {step}: " + ", ".join(f"{name}={value:.4g}" for name, value in results.items()))
        return results

    def _save_on_interrupt(self, manager, progress):
        step = int(self.step.numpy())
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # A save is collective; the other workers are not saving now, so it would hang.
            progress.write(f"Interrupted at step {step}; resume from the last periodic checkpoint.")
            return
        if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(f"-{step}"):
            manager.save(checkpoint_number=step)
        progress.write(
            f"Interrupted at step {step}; checkpoint saved in {self.run_directory.checkpoint_dir}. "
            "Rerun the same command to resume."
        )

    def _remove_worker_scratch(self):
        if not self.run_directory.chief and tf.io.gfile.exists(self.run_directory.checkpoint_dir):
            tf.io.gfile.rmtree(self.run_directory.checkpoint_dir)
