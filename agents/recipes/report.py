"""The RLHF run report: report.md with the story in numbers, PNG plots and before/after samples.

Everything is read back from the stage run directories (metrics.json, TensorBoard events, samples.jsonl), so a
report can be rewritten at any time and a resumed run's history reads as one.

Reward hacking is checked in two comparable units: the final win rates over the starting policy judged by the
learned reward and by the gold scorer (a reward win rate well above 0.5 while the gold win rate is not is the
signature of a policy exploiting the reward model), and the trajectories of both over training.
"""

import json
import os

import numpy as np

from rlhf_tf import files, plots, training
from rlhf_tf.agents.language import frontier


def _window_mean(values, share=0.15):
    if not values:
        return float("nan"), float("nan")
    count = max(1, int(round(len(values) * share)))
    return float(np.mean(values[:count])), float(np.mean(values[-count:]))


def hacking_check(metrics, rl_scalars):
    """A verdict on reward hacking: (flag, sentence), from final win rates and the training trajectories."""
    reward_win = metrics.get("rl/win_rate_vs_sft_reward")
    gold_win = metrics.get("rl/win_rate_vs_sft_gold")
    _, rewards = plots.series(rl_scalars, "rl/score")
    _, golds = plots.series(rl_scalars, "rl/rollout_gold_score")
    parts, flagged = [], False
    if rewards and golds:
        (reward_start, reward_end), (gold_start, gold_end) = _window_mean(rewards), _window_mean(golds)
        parts.append(
            f"over training the learned reward went {reward_start:+.3f} -> {reward_end:+.3f} and the gold score "
            f"{gold_start:+.3f} -> {gold_end:+.3f}"
        )
        if reward_end - reward_start > 0.1 and gold_end - gold_start <= 0.05:
            flagged = True
    if reward_win is not None and gold_win is not None:
        parts.append(f"on held-out prompts the policy beats SFT {reward_win:.0%} of the time by the learned reward")
        parts[-1] += f" and {gold_win:.0%} by the gold scorer"
        if reward_win >= 0.6 and gold_win <= 0.5:
            flagged = True
    if not parts:
        return False, "No reward or gold history to compare."
    verdict = (
        "**Reward hacking: the learned reward rose while the gold score did not.** The policy found what the reward "
        "model over-values; use more or more diverse comparisons, an ensemble, a stronger KL penalty or length control."
        if flagged
        else "The learned reward and the gold score rose together: no sign of reward hacking."
    )
    return flagged, verdict + " (" + "; ".join(parts) + ".)"


def plot_rl(rl_scalars, metrics, directory):
    """Reward and gold score over PPO iterations; KL and response length. Returns the written paths."""
    paths = []
    figure, axes = plots.new_figure()
    for tag, label in (("rl/score", "learned reward (rollouts)"), ("rl/rollout_gold_score", "gold score (rollouts)")):
        steps, values = plots.series(rl_scalars, tag)
        if steps:
            axes.plot(steps, values, label=label)
    if "rl/sft_gold_score" in metrics:
        axes.axhline(metrics["rl/sft_gold_score"], color="gray", linestyle="--", label="SFT gold score (held out)")
    axes.set_xlabel("iteration")
    axes.set_ylabel("score")
    axes.set_title("Reward and gold score during RL")
    axes.legend(loc="lower right")
    paths.append(plots.save_png(figure, os.path.join(directory, "rl_reward_and_gold.png")))

    figure, (left, right) = plots.new_figure(2, (10, 3.6))
    steps, values = plots.series(rl_scalars, "rl/kl")
    left.plot(steps, values, label="KL to SFT per response (nats)")
    steps, values = plots.series(rl_scalars, "rl/kl_coef")
    if values and max(values) != min(values):
        twin = left.twinx()
        twin.plot(steps, values, color="tab:orange", label="KL coefficient")
        twin.set_ylabel("KL coefficient")
    left.set_xlabel("iteration")
    left.set_ylabel("nats")
    left.set_title("KL to the reference")
    steps, values = plots.series(rl_scalars, "rl/response_length")
    right.plot(steps, values, label="policy")
    if "rl/sft_response_length" in metrics:
        right.axhline(metrics["rl/sft_response_length"], color="gray", linestyle="--", label="SFT (held out)")
    right.set_xlabel("iteration")
    right.set_ylabel("tokens")
    right.set_title("Response length")
    right.legend(loc="lower right")
    paths.append(plots.save_png(figure, os.path.join(directory, "rl_kl_and_length.png")))
    return paths


def plot_reward_model(reward_scalars, metrics, directory):
    """Reward-model pairwise accuracy over training, with the labeler's ceiling."""
    figure, axes = plots.new_figure()
    for tag, label in (("reward/accuracy", "train (batch)"), ("reward/eval_accuracy", "held out")):
        steps, values = plots.series(reward_scalars, tag)
        if steps:
            axes.plot(steps, values, marker="o" if "eval" in tag else None, label=label)
    if "reward/labeler_ceiling" in metrics:
        axes.axhline(metrics["reward/labeler_ceiling"], color="gray", linestyle="--", label="labeler ceiling")
    axes.set_ylim(0.4, 1.0)
    axes.set_xlabel("step")
    axes.set_ylabel("pairwise accuracy")
    axes.set_title("Reward model accuracy")
    axes.legend(loc="lower right")
    return [plots.save_png(figure, os.path.join(directory, "reward_accuracy.png"))]


def _read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


_STORY_ROWS = [
    ("SFT", "held-out perplexity", "sft/eval_perplexity", "{:.3f}"),
    ("SFT", "gold score (held-out prompts)", "sft/gold_score", "{:.3f}"),
    ("feedback", "comparisons labelled (train / eval)", None, None),
    ("feedback", "labeler agreement with gold ordering", "reward/labeler_agreement_with_gold", "{:.3f}"),
    ("reward model", "held-out accuracy (vs labels)", "reward/eval_accuracy", "{:.3f}"),
    ("reward model", "labeler ceiling", "reward/labeler_ceiling", "{:.3f}"),
    ("reward model", "held-out accuracy vs gold ordering", "reward/eval_accuracy_vs_gold", "{:.3f}"),
    ("RL", "gold score (held-out prompts)", "rl/gold_score", "{:.3f}"),
    ("RL", "win rate vs SFT, gold scorer", "rl/win_rate_vs_sft_gold", "{:.3f}"),
    ("RL", "win rate vs SFT, learned reward", "rl/win_rate_vs_sft_reward", "{:.3f}"),
    ("RL", "length-controlled win rate vs SFT, gold scorer", "rl/length_controlled_win_rate_vs_sft_gold", "{:.3f}"),
    ("RL", "KL to SFT (nats per response)", "rl/kl_to_reference", "{:.2f}"),
    ("RL", "response length, SFT -> RL (tokens)", None, None),
    ("RL", "distinct-2, SFT -> RL", "rl/distinct_2", "{:.3f}"),
    ("RL", "unique responses, SFT -> RL", "rl/unique_responses", "{:.3f}"),
]


def write_report(output_dir, stage_dirs, metrics, title="RLHF run", timings=None, seed=None):
    """Writes `<output_dir>/report.md` and `<output_dir>/plots/*.png`; returns (the report's path, whether reward
    hacking was flagged).

    Args:
      output_dir: where the report goes.
      stage_dirs: {"sft": dir, "reward": dir, "rl": dir} (any may be missing).
      metrics: the combined flat metrics (rl/..., sft/..., reward/...).
      timings: optional {stage: (seconds, run directory)}.
    """
    plots_dir = training.RunPaths(output_dir).plots_dir
    os.makedirs(plots_dir, exist_ok=True)
    rl_dir = stage_dirs.get("rl")
    rl_scalars = training.read_scalars(training.RunPaths(rl_dir).tensorboard_dir) if rl_dir else {}
    reward_dir = stage_dirs.get("reward")
    reward_scalars = training.read_scalars(training.RunPaths(reward_dir).tensorboard_dir) if reward_dir else {}
    plot_paths = []
    if rl_scalars:
        plot_paths += plot_rl(rl_scalars, metrics, plots_dir)
    if reward_scalars:
        plot_paths += plot_reward_model(reward_scalars, metrics, plots_dir)
    if rl_dir:
        drawn = frontier.plot({"RL": frontier.points(rl_dir)}, os.path.join(plots_dir, "frontier.png"))
        plot_paths += [drawn] if drawn else []
    flagged, verdict = hacking_check(metrics, rl_scalars)
    lines = [f"# {title}", ""] + _story(metrics) + ["", "## Reward hacking check", "", verdict, ""]
    if plot_paths:
        lines += ["## Plots", ""]
        lines += [f"![{os.path.basename(path)}]({training.PLOTS_DIR}/{os.path.basename(path)})" for path in plot_paths]
        lines.append("")
    lines += _samples(_read_jsonl(training.RunPaths(rl_dir).samples_path) if rl_dir else [])
    if timings:
        lines += ["## Stages", "", "| stage | seconds | run directory |", "|---|---|---|"]
        for stage, (seconds, directory) in timings.items():
            lines.append(f"| {stage} | {seconds:.0f} | {_cell(directory)} |")
        total = sum(seconds for seconds, _ in timings.values())
        lines.append(f"| all | {total:.0f} | |")
        lines.append("")
    if seed is not None:
        lines += [f"Seed: {seed}. Every stage's full configuration is in its run directory's config.json.", ""]
    path = training.RunPaths(output_dir).report_path
    files.atomic_write_text(path, "\n".join(lines))
    return path, flagged


def _format(metrics, name, fmt="{:.3f}"):
    return fmt.format(metrics[name]) if name in metrics and metrics[name] == metrics[name] else "n/a"


def _story(metrics):
    """The opening sentence (after RL) and the table of the story in numbers."""

    def value(name, fmt="{:.3f}"):
        return _format(metrics, name, fmt)

    lines = []
    if "rl/win_rate_vs_sft_gold" in metrics:
        length_change = metrics.get("rl/response_length", 0) / max(metrics.get("rl/sft_response_length", 1), 1e-9) - 1
        lines += [
            f"After RL the policy's answers beat the SFT policy's on **{value('rl/win_rate_vs_sft_gold', '{:.1%}')}** "
            f"of {value('rl/prompts', '{:.0f}')} held-out prompts by the gold scorer (ties count half); mean gold "
            f"score {value('sft/gold_score')} -> **{value('rl/gold_score')}**, KL to SFT "
            f"{value('rl/kl_to_reference', '{:.2f}')} nats per response, response length "
            f"{value('rl/sft_response_length', '{:.1f}')} -> {value('rl/response_length', '{:.1f}')} tokens "
            f"({length_change:+.0%}).",
            "",
        ]
    lines += ["## The story in numbers", "", "| stage | measure | value |", "|---|---|---|"]
    for stage, label, name, fmt in _STORY_ROWS:
        before = name.replace("rl/", "rl/sft_") if name and "SFT -> RL" in label else None
        if before is not None:
            if name in metrics:
                lines.append(f"| {stage} | {label} | {value(before, fmt)} -> {value(name, fmt)} |")
        elif name is not None:
            if name in metrics:
                lines.append(f"| {stage} | {label} | {value(name, fmt)} |")
        elif stage == "feedback" and "feedback/train_pairs" in metrics:
            lines.append(
                f"| {stage} | {label} | {metrics['feedback/train_pairs']:.0f} / {metrics['feedback/eval_pairs']:.0f} |"
            )
        elif stage == "RL" and "rl/response_length" in metrics:
            lines.append(
                f"| {stage} | {label} | {value('rl/sft_response_length', '{:.1f}')} -> "
                f"{value('rl/response_length', '{:.1f}')} |"
            )
    return lines


def _samples(samples):
    """The before/after table of held-out samples (nothing without samples)."""
    if not samples:
        return []
    lines = [
        "## Before and after (held-out prompts)",
        "",
        "| prompt | SFT | gold | after RL | gold |",
        "|---|---|---|---|---|",
    ]
    for row in samples:
        lines.append(
            f"| {_cell(row['prompt'])} | {_cell(row['baseline'])} | {row.get('baseline_gold', float('nan')):.2f} "
            f"| {_cell(row['policy'])} | {row.get('policy_gold', float('nan')):.2f} |"
        )
    lines.append("")
    return lines
