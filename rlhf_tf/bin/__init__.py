"""absl binaries, one per `rlhf-tf` subcommand, and the dispatcher (`cli.py`)."""
