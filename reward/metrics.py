"""How well a reward model predicts preferences: accuracy, calibration (ECE) and a reliability plot."""

import numpy as np

from rlhf_tf import plots


def pairwise_metrics(chosen, rejected, tie=None, bins=10):
    """Accuracy, expected calibration error and the bins behind them, from rewards of labelled pairs.

    The Bradley-Terry probability that the labelled winner wins is p = sigmoid(r_chosen - r_rejected); a pair is
    right when p > 0.5. ECE sorts pairs by confidence max(p, 1 - p) into `bins` bins and averages
    |accuracy - confidence| weighted by bin size. Ties are left out of both.
    """
    chosen = np.asarray(chosen, np.float64)
    rejected = np.asarray(rejected, np.float64)
    keep = np.ones_like(chosen, bool) if tie is None else ~np.asarray(tie, bool)
    chosen, rejected = chosen[keep], rejected[keep]
    if len(chosen) == 0:
        return {"accuracy": float("nan"), "ece": float("nan"), "bins": []}
    probability = 1.0 / (1.0 + np.exp(-(chosen - rejected)))
    correct = probability > 0.5
    confidence = np.maximum(probability, 1.0 - probability)
    edges = np.linspace(0.5, 1.0, bins + 1)
    table, ece = [], 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence >= low) & ((confidence < high) if high < 1.0 else (confidence <= high))
        if inside.any():
            accuracy, mean_confidence = correct[inside].mean(), confidence[inside].mean()
            ece += inside.mean() * abs(accuracy - mean_confidence)
            table.append((float(low), float(high), int(inside.sum()), float(accuracy), float(mean_confidence)))
    return {
        "accuracy": float(correct.mean()),
        "ece": float(ece),
        "bins": table,
        "calibrated_loss": calibrated_loss(chosen - rejected),
    }


_TEMPERATURES = np.geomspace(1 / 16, 64, 61)


def calibrated_loss(differences, temperatures=_TEMPERATURES):
    """The Bradley-Terry loss of labelled pairs after the one rescaling of the score differences that fits them best:
    min over T of mean(-log sigmoid(d / T)) on a log grid of T from 1/16 to 64. A model that ranks pairs better
    always has a lower calibrated loss; unlike the raw loss it does not rise because scores grow more confident
    (which one scalar undoes), so it tells when more training stops helping the ranking. The T that fits is
    searched on a grid, not fitted exactly: the loss is flat near its minimum."""
    differences = np.asarray(differences, np.float64)
    if differences.size == 0:
        return float("nan")
    scaled = differences[None, :] / np.asarray(temperatures, np.float64)[:, None]
    return float(np.min(np.mean(np.logaddexp(0.0, -scaled), axis=1)))


def reliability_plot(bins, path, title="Reward model calibration"):
    """Writes a reliability diagram (accuracy vs confidence per bin) as PNG."""
    figure, axes = plots.new_figure(size=(4.5, 4.5))
    axes.plot([0.5, 1.0], [0.5, 1.0], linestyle="--", color="gray", label="perfect calibration")
    if bins:
        confidence = [row[4] for row in bins]
        accuracy = [row[3] for row in bins]
        sizes = [row[2] for row in bins]
        axes.scatter(confidence, accuracy, s=[20 + 200 * size / max(sizes) for size in sizes], label="bins")
        axes.plot(confidence, accuracy)
    axes.set_xlabel("confidence max(p, 1 - p)")
    axes.set_ylabel("accuracy")
    axes.set_xlim(0.5, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_title(title)
    axes.legend(loc="lower right")
    return plots.save_png(figure, path)
