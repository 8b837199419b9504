"""What every binary shares: starting under absl, and turning interrupts and bad input into exit statuses."""

import sys

from absl import app, flags, logging

from rlhf_tf.errors import Preempted, UserInputError

_HELP_FLAGS = ("-h", "-?", "--help", "--helpfull", "--helpshort", "--helpxml")


def _not_checkpoint_timing(record):
    return not record.getMessage().startswith("Sharding callback duration")


def run_binary(main, argv=None):
    """Runs an absl `main(argv)`: Ctrl-C exits 130 after the loop saved its checkpoint; bad input exits 2; a
    preempted multi-worker run exits 42 (`distribution.PREEMPTED_EXIT_STATUS`) once every worker saved."""

    def guarded(arguments):
        # TensorFlow's own INFO lines (checkpoint sharding callbacks and such) drown the progress bars.
        import logging as python_logging

        python_logging.getLogger("tensorflow").setLevel(python_logging.WARNING)
        # ... and so does the checkpoint saver's per-save INFO line, logged through absl directly.
        python_logging.getLogger("absl").addFilter(_not_checkpoint_timing)
        # TF-Agents 0.19 calls APIs TensorFlow has deprecated (ReplayBuffer.get_next, foldr's back_prop), and the
        # code AutoGraph generates from it compares with `is ()`: warnings about code the user cannot change.
        import warnings

        from tensorflow.python.util import deprecation

        deprecation._PRINT_DEPRECATION_WARNINGS = False
        warnings.filterwarnings("ignore", category=SyntaxWarning)
        if getattr(flags.FLAGS, "deterministic", False):
            # Every binary with the flag (rlhf_tf.bin.common), before it builds anything.
            from rlhf_tf import training

            training.enable_determinism()
        from rlhf_tf.training import distribution

        try:
            status = main(arguments)
        except KeyboardInterrupt:
            logging.warning("Interrupted; rerun the same command to resume.")
            sys.exit(130)
        except UserInputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except Preempted as preempted:
            print(str(preempted), file=sys.stderr)
            distribution.finish(distribution.PREEMPTED_EXIT_STATUS)  # every worker saved at this step: leave together
            sys.exit(distribution.PREEMPTED_EXIT_STATUS)
        distribution.finish(status or 0)  # a multi-worker run's workers leave together (and exit here)
        return status

    try:
        app.run(guarded, argv=argv)
    except SystemExit as exit_:
        # absl exits 1 after printing --help/--helpfull; asking for help is not a failure.
        arguments = sys.argv if argv is None else argv
        if exit_.code == 1 and any(arg in _HELP_FLAGS for arg in arguments[1:]):
            sys.exit(0)
        raise
