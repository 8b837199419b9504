"""Stopping a run when a held-out metric stops improving, and keeping the weights of its best evaluation.

`TrainLoop.run(..., early_stopping=EarlyStopping(...))`: after every evaluation the loop hands the results to
`observe`, which saves the watched objects (into `<run>/ckpt/best/`, through a `tf.train.CheckpointManager`, so a
save is atomic) whenever the metric improves, and asks the loop to stop after `patience` evaluations without
improvement. At the end the loop restores the best weights. The counters are variables checkpointed with the loop's
own state: a resumed run continues the same count, and a run that stopped stays stopped when rerun.
"""

import logging
import math

import tensorflow as tf


class EarlyStopping:
    """Watches one evaluation result; keeps the best weights; stops after `patience` evaluations without improvement.

    Args:
      metric: the evaluation result watched ("reward/eval_loss").
      objects: {name: trackable} saved at each improvement and restored at the end (a model's trainable state).
      patience: evaluations without improvement before the run stops; 0 never stops early (the best evaluation's
        weights are still the ones kept).
      mode: "min" (a loss) or "max" (an accuracy).
      min_delta: the least change that counts as an improvement.
    """

    def __init__(self, metric, objects, patience=2, mode="min", min_delta=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'. Received: {mode!r}")
        if patience < 0:
            raise ValueError(f"`patience` must be non-negative. Received: {patience}")
        self.metric = metric
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self._objects = dict(objects)
        self.best = tf.Variable(math.inf if mode == "min" else -math.inf, dtype=tf.float64, trainable=False)
        self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.since_best = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.stopped = tf.Variable(False, trainable=False)
        self.state = tf.train.Checkpoint(
            best=self.best, best_step=self.best_step, since_best=self.since_best, stopped=self.stopped
        )
        self._manager = None

    def attach(self, directory):
        """Keeps the best weights in `directory` (the loop passes `<run>/ckpt/best`)."""
        self._manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(**self._objects), directory, max_to_keep=1, checkpoint_name="best"
        )

    def _improved(self, value):
        if self.mode == "min":
            return value < float(self.best.numpy()) - self.min_delta
        return value > float(self.best.numpy()) + self.min_delta

    def observe(self, step, results):
        """Records one evaluation; saves the weights if it is the best so far. Returns True when the run should stop."""
        if self.metric not in results:
            raise KeyError(
                f"Early stopping watches {self.metric!r}, which the evaluation did not return "
                f"(it returned {sorted(results)})."
            )
        value = float(results[self.metric])
        if math.isfinite(value) and self._improved(value):
            self.best.assign(value)
            self.best_step.assign(step)
            self.since_best.assign(0)
            if self._manager is not None:
                self._manager.save(checkpoint_number=step)
        else:
            self.since_best.assign_add(1)
        if self.patience and int(self.since_best.numpy()) >= self.patience:
            self.stopped.assign(True)
            logging.info(
                "Early stopping at step %d: %s has not improved on %.6g (step %d) for %d evaluations.",
                step,
                self.metric,
                float(self.best.numpy()),
                int(self.best_step.numpy()),
                int(self.since_best.numpy()),
            )
        return bool(self.stopped.numpy())

    def restore_best(self, step):
        """Loads the best evaluation's weights unless they are the current step's; returns True if it loaded."""
        best_step = int(self.best_step.numpy())
        if self._manager is None or best_step < 0 or best_step == step or not self._manager.latest_checkpoint:
            return False
        self._manager.checkpoint.restore(self._manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("Restored the weights of step %d, the best %s (%.6g).", best_step, self.metric, self.best.numpy())
        return True

    def metrics(self, prefix):
        """The run's record of it: best step and value, and whether it stopped before the last step."""
        return {
            f"{prefix}/best_step": int(self.best_step.numpy()),
            f"{prefix}/best_{self.metric.split('/')[-1]}": float(self.best.numpy()),
            f"{prefix}/stopped_early": float(bool(self.stopped.numpy())),
        }
