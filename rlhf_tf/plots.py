"""Figures written as PNG files: built without pyplot, so the backend of an enclosing notebook is left alone."""

import io

from matplotlib.figure import Figure

from rlhf_tf import files


def new_figure(columns=1, size=(6.5, 4)):
    """(figure, axes): one row of `columns` axes (a single axes object when `columns` is 1)."""
    figure = Figure(figsize=size)
    return figure, figure.subplots(1, columns)


def save_png(figure, path):
    """Writes `figure` to `path` as PNG (atomically); returns the path."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    files.atomic_write_bytes(path, buffer.getvalue())
    return path


def series(scalars, tag):
    """(steps, values) of one tag of `rlhf_tf.training.read_scalars`' output (empty lists when absent)."""
    points = scalars.get(tag, [])
    return [step for step, _ in points], [value for _, value in points]
