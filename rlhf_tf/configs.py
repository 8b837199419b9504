"""Helpers shared by the frozen-dataclass configs: validation messages and JSON round trips."""

import dataclasses

from rlhf_tf.errors import UserInputError


def require(condition, message, **received):
    """Raises UserInputError (a ValueError) with message + 'Received: k=v, ...') unless `condition` holds."""
    if not condition:
        shown = ", ".join(f"{key}={value!r}" for key, value in received.items())
        raise UserInputError(f"{message} Received: {shown}")


def require_positive(**fields):
    """Each keyword must be a number > 0."""
    for name, value in fields.items():
        require(isinstance(value, (int, float)) and value > 0, f"`{name}` must be > 0.", **{name: value})


def require_non_negative(**fields):
    """Each keyword must be a number >= 0."""
    for name, value in fields.items():
        require(isinstance(value, (int, float)) and value >= 0, f"`{name}` must be >= 0.", **{name: value})


def require_choice(name, value, choices):
    """`value` must be one of `choices`."""
    require(value in choices, f"`{name}` must be one of {sorted(choices)}.", **{name: value})


def to_dict(config):
    """A dataclass config (possibly nested) as a JSON-ready dict, with its class name recorded."""
    if not dataclasses.is_dataclass(config):
        return dict(config)
    result = {"_type": type(config).__name__}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        result[field.name] = to_dict(value) if dataclasses.is_dataclass(value) else value
    return result


def differences(old, new, prefix=""):
    """Names of the keys whose values differ between two nested dicts (for 'resumed with other settings')."""
    changed = []
    for key in sorted(set(old) | set(new)):
        left, right = old.get(key), new.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            changed.extend(differences(left, right, prefix=f"{prefix}{key}."))
        elif left != right:
            changed.append(f"{prefix}{key}: {left!r} -> {right!r}")
    return changed
