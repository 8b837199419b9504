"""absl binaries, one per `rlhf-tf` subcommand, and the dispatcher (`cli.py`).

The one place where library imports sit inside functions on purpose: a binary defines its flags at import and loads
the library (TensorFlow, keras-hub, TF-Agents: 5-10 s) only in `main()` or the config function it calls, so that
`rlhf-tf <subcommand> --helpfull` and a mistyped flag answer at once. Library code imports at the top of each file.
"""
