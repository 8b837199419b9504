"""Exceptions for things the user can fix (bad flags, configs or input files); binaries exit 2 on them."""


class UserInputError(ValueError):
    """A value, file or record given by the user is not acceptable; the message says what to change."""


class Preempted(Exception):
    """A multi-worker run was asked to stop (SIGTERM on any worker) and every worker saved a checkpoint at `step`;
    binaries exit with `rlhf_tf.training.distribution.PREEMPTED_EXIT_STATUS` and rerunning resumes."""

    def __init__(self, step, checkpoint_dir):
        super().__init__(
            f"Preempted: every worker saved a checkpoint at step {step} ({checkpoint_dir}). "
            "Rerun the same command (on all workers) to resume."
        )
        self.step = step
