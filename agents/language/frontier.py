"""The reward-KL frontier: a policy evaluated at points along its run, gold score and learned reward against KL.

Every online RL run (PPO, GRPO, RLOO, REINFORCE, online DPO) and offline DPO / KTO evaluates its policy on the first
`frontier_prompts` held-out prompts four times a run (at its evaluation interval) and at the end, against the
starting policy: KL to it, gold score, learned reward, win rates, distinct-2 and length, logged as `frontier/...`
scalars in TensorBoard (so a resumed run's history reads as one). The starting policy itself is the origin (KL 0,
win rate 0.5). `plot` draws one run's frontier (the run's plots/frontier.png) or several methods' on one figure
(`rlhf-tf compare`). How far a method climbs per nat of KL, and where its gold score turns down while the learned
reward still rises (over-optimisation), is what the figure shows.
"""

import os

from rlhf_tf import plots, training
from rlhf_tf.agents.language import evaluation

# What a frontier point keeps of an evaluation (names as `evaluation.evaluate_policy` reports them).
_KEPT = (
    "kl_to_reference",
    "gold_score",
    "baseline_gold_score",
    "reward",
    "baseline_reward",
    "win_rate_vs_baseline_gold",
    "win_rate_vs_baseline_reward",
    "distinct_2",
    "response_length",
)


def evaluation_fn(make_evaluator, prompts, gold_score, reward_texts, seed):
    """`step -> {"frontier/<name>": value}` for `TrainLoop`'s evaluation hook: the policy evaluated on `prompts`
    by `make_evaluator()` (an `evaluation.PolicyEvaluator`, called only when an evaluation happens; in a
    multi-worker run every worker takes its share of the prompts); {} without prompts."""

    def evaluate(step):
        del step
        if not prompts:
            return {}
        metrics, _ = make_evaluator().evaluate(prompts, gold_score, reward_texts, seed=seed)
        return {f"frontier/{evaluation.public_name(name)}": metrics[name] for name in _KEPT if name in metrics}

    return evaluate


def points(run_dir):
    """The frontier of one run, from its TensorBoard scalars: [{"step", "kl", "gold", "reward", "win_rate_gold"}],
    starting with the origin (the starting policy: step 0, KL 0, win rate 0.5); [] when the run has none."""
    scalars = training.read_scalars(training.RunPaths(run_dir).tensorboard_dir)
    names = {
        "kl": "frontier/kl_to_reference",
        "gold": "frontier/gold_score",
        "reward": "frontier/reward",
        "win_rate_gold": "frontier/win_rate_vs_sft_gold",
    }
    columns = {key: dict(scalars.get(tag, [])) for key, tag in names.items()}
    if not columns["kl"]:
        return []
    origin = {"step": 0, "kl": 0.0, "win_rate_gold": 0.5}
    for key, tag in (("gold", "frontier/sft_gold_score"), ("reward", "frontier/sft_reward")):
        if scalars.get(tag):
            origin[key] = scalars[tag][0][1]
    rows = [origin]
    for step in sorted(columns["kl"]):
        rows.append({"step": step, **{key: column[step] for key, column in columns.items() if step in column}})
    return rows


def plot(curves, path, title="Reward-KL frontier"):
    """Writes the frontier of each {label: `points(...)`} as PNG at `path`: gold score (left) and learned reward
    (right) against KL to the starting policy, points in training order. Returns the path, or None when no curve
    has points."""
    curves = {label: rows for label, rows in curves.items() if rows}
    if not curves:
        return None
    figure, (left, right) = plots.new_figure(2, (10, 3.8))
    for axes, key, label in ((left, "gold", "gold score"), (right, "reward", "learned reward")):
        for name, rows in curves.items():
            kept = [row for row in rows if key in row]
            if kept:
                axes.plot([row["kl"] for row in kept], [row[key] for row in kept], marker="o", label=name)
        axes.set_xlabel("KL to the starting policy (nats per response)")
        axes.set_ylabel(f"{label} (held-out prompts)")
        axes.set_title(f"{title}: {label}")
        if len(curves) > 1 and axes.get_legend_handles_labels()[0]:
            axes.legend(loc="lower right")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return plots.save_png(figure, path)
