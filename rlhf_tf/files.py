"""Atomic file writes: a run killed at any moment leaves the old file or the new one, never half of one.

Paths go through `tf.io.gfile`, so the same calls write to local disks and to cloud buckets (where a rename is a
copy, still never a partial object in place of a good one).
"""

import json
import math
import os
import uuid

import tensorflow as tf


def atomic_write_bytes(path, data):
    """Writes `data` (bytes) to `path` through a temporary sibling and a rename."""
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(temporary, "wb") as handle:
        handle.write(data)
        if hasattr(handle, "flush"):
            handle.flush()
    try:
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except Exception:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)
        raise


def atomic_write_text(path, text):
    """Writes `text` as UTF-8 to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(value):
    """Turns numpy and tensor scalars into plain numbers; NaN and inf become strings JSON can hold."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def atomic_write_json(path, payload):
    """Writes `payload` as indented JSON to `path` atomically (numpy scalars and tensors become numbers)."""
    atomic_write_text(path, json.dumps(_json_safe(payload), indent=2, sort_keys=True) + "\n")


def read_json(path):
    """Reads a JSON file; returns None when it does not exist."""
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.load(handle)
