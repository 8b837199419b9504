"""Exceptions for things the user can fix (bad flags, configs or input files); binaries exit 2 on them."""


class UserInputError(ValueError):
    """A value, file or record given by the user is not acceptable; the message says what to change."""
