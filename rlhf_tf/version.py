"""The package version, read by setup.py and `rlhf-tf --version`."""

__version__ = "0.1.0"
