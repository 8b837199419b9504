"""The training loop's configuration."""

import dataclasses

from rlhf_tf import configs


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How the shared training loop runs. Every trainer's config holds one.

    Attributes:
      steps: total optimizer steps of the run. A resumed run goes on to this number.
      log_every: steps between fetching metrics to the host for the progress bar and TensorBoard. Fetching
        synchronises host and device, so keep it well above 1 for small steps. A logged value is the mean over
        the steps of the compiled call that ended at the log step (the step itself when steps_per_loop is 1).
      checkpoint_every: steps between checkpoints. A checkpoint is also written at the end and on Ctrl-C.
      keep_checkpoints: how many recent checkpoints `tf.train.CheckpointManager` keeps.
      eval_every: steps between evaluation hooks; 0 evaluates only at the end.
      steps_per_loop: optimizer steps run inside one compiled call; more amortises host overhead (TPUs want
        tens to hundreds). Logging, checkpoints and evaluation still happen at their exact steps.
      seed: seeds Python, NumPy, TensorFlow and Keras, and the loop's `tf.random.Generator`.
      progress: show a progress bar (rate, ETA, metrics) on stderr.
      deterministic: TensorFlow's op determinism (`tf.config.experimental.enable_op_determinism`, for the whole
        process from the loop's construction on): with the seed, a rerun on the same machine repeats every number.
        Some ops run slower, and an op with no deterministic kernel raises instead of running.
    """

    steps: int = 1000
    log_every: int = 50
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    eval_every: int = 0
    steps_per_loop: int = 1
    seed: int = 0
    progress: bool = True
    deterministic: bool = False

    def __post_init__(self):
        configs.require_positive(
            steps=self.steps,
            log_every=self.log_every,
            checkpoint_every=self.checkpoint_every,
            keep_checkpoints=self.keep_checkpoints,
            steps_per_loop=self.steps_per_loop,
        )
        configs.require_non_negative(eval_every=self.eval_every, seed=self.seed)
        for name in ("steps", "log_every", "checkpoint_every", "keep_checkpoints", "eval_every", "steps_per_loop"):
            value = getattr(self, name)
            configs.require(
                isinstance(value, int) and not isinstance(value, bool),
                f"`{name}` must be a whole number.",
                **{name: value},
            )
