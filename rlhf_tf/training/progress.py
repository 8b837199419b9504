"""A progress bar with rate, ETA and the key metrics, in terminals and notebooks alike."""

import sys

from tqdm import auto as tqdm_auto


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """A tqdm bar over training steps. `enabled=False` (or a non-chief worker) shows nothing.

    Args:
      total: the step the run ends at.
      initial: the step it starts from (non-zero when resuming).
      description: the stage's name, shown at the left.
      unit: what a step is called in the rate ("step", "pair", ...).
    """

    def __init__(self, total, initial=0, description="train", unit="step", enabled=True):
        self._bar = None
        if enabled:
            self._bar = tqdm_auto.tqdm(
                total=total,
                initial=initial,
                desc=description,
                unit=unit,
                dynamic_ncols=True,
                file=sys.stderr,
                mininterval=0.5,
                smoothing=0.1,
            )

    def advance(self, count):
        if self._bar is not None:
            self._bar.update(count)

    def show(self, metrics, preferred=()):
        """Shows up to five metrics: the `preferred` names (without group) first, then the shortest names."""
        if self._bar is None or not metrics:
            return
        rank = {name: index for index, name in enumerate(preferred)}
        names = sorted(metrics, key=lambda name: (rank.get(name.split("/")[-1], len(rank)), len(name), name))[:5]
        self._bar.set_postfix({name.split("/")[-1]: _format(metrics[name]) for name in names}, refresh=False)

    def write(self, message):
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
