"""Every method on the bundled task with the same label budget: one table and one plot (`rlhf-tf compare`).

Per seed: the quickstart's SFT, labelled comparisons and reward model (one label budget: `num_pairs`), then each
method from the same SFT policy: best-of-n and PPO, GRPO, RLOO and online DPO against the same reward model, and
offline DPO on the same comparisons (no reward model). Each method is judged on the same 1,000 held-out prompts
against the SFT policy by the gold scorer. Every run has its own run directory (and resumes); `comparison.md`,
`comparison.json` and `comparison.png` gather gold score, win rate vs SFT (mean and spread over seeds), KL to SFT,
response length and wall time; `frontier_seed<S>.png` draws every method's reward-KL frontier for each seed
(`frontier.py`: the online methods and DPO evaluated along their runs, best-of-n at its one point).
"""

import dataclasses
import os
import time

import numpy as np

from rlhf_tf import configs, files, plots, training
from rlhf_tf.agents.language import best_of_n, dpo, frontier, policy_gradient, ppo
from rlhf_tf.agents.recipes import quickstart as quickstart_lib

METHODS = ("best-of-n", "ppo", "grpo", "rloo", "online-dpo", "dpo")


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Attributes:
    output_dir: where `seed<S>/<method>/` run directories and the comparison files go.
    seeds: the seeds (each gets its own SFT, labels and reward model).
    methods: which of `METHODS` to run.
    quickstart: the shared stages' settings (SFT steps, label budget, PPO iterations, ...); its output_dir and
      seed are set per seed.
    iterations: iterations of every online method (PPO, GRPO, RLOO, online DPO).
    best_of_n: n of best-of-n.
    """

    output_dir: str = "runs/compare"
    seeds: tuple = (0,)
    methods: tuple = METHODS
    quickstart: quickstart_lib.QuickstartConfig = quickstart_lib.QuickstartConfig()
    iterations: int = 160
    best_of_n: int = 16

    def __post_init__(self):
        configs.require(bool(self.seeds), "Give at least one seed.", seeds=self.seeds)
        unknown = sorted(set(self.methods) - set(METHODS))
        configs.require(not unknown, f"Methods are {list(METHODS)}.", methods=list(self.methods))


def method_config(method, stage, shared_dirs, output_dir, settings, seed):
    """The config of one method's run, starting from the seed's SFT policy and reward model."""
    rollouts = dataclasses.replace(stage["ppo"].rollouts, policy=shared_dirs["sft"], reward=shared_dirs["reward"])
    loop = dataclasses.replace(stage["ppo"].loop, steps=settings.iterations, seed=seed)
    if method == "ppo":
        return dataclasses.replace(stage["ppo"], output_dir=output_dir, loop=loop)
    if method in ("grpo", "rloo"):
        hyperparameters = policy_gradient.PolicyGradientHyperparameters(
            algorithm=method, length_penalty=stage["ppo"].hyperparameters.length_penalty
        )
        return policy_gradient.PolicyGradientConfig(
            output_dir=output_dir, rollouts=rollouts, hyperparameters=hyperparameters, loop=loop
        )
    if method == "online-dpo":
        hyperparameters = dpo.OnlineDPOHyperparameters(length_penalty=stage["ppo"].hyperparameters.length_penalty)
        return dpo.OnlineDPOConfig(output_dir=output_dir, rollouts=rollouts, hyperparameters=hyperparameters, loop=loop)
    if method == "dpo":
        labels = stage["labels"].output_dir
        base = dpo.DPOConfig(output_dir=output_dir, policy=shared_dirs["sft"], data="x")
        # Sequences as long as the task's prompts and the response budget need (one bucket: fixed shapes).
        prompt_tokens = max(base.pipeline.max_prompt_tokens, rollouts.max_prompt_tokens)
        seq_len = max(base.pipeline.seq_len, prompt_tokens + rollouts.max_new_tokens)
        pipeline = dataclasses.replace(
            base.pipeline, seq_len=seq_len, max_prompt_tokens=prompt_tokens, buckets=(seq_len,)
        )
        return dataclasses.replace(
            base,
            pipeline=pipeline,
            data=training.RunPaths(labels).train_records_path,
            eval_data=training.RunPaths(labels).eval_records_path,
            reward=shared_dirs["reward"],
            task=rollouts.task,
            num_eval_prompts=rollouts.num_eval_prompts,
            max_new_tokens=rollouts.max_new_tokens,
            loop=dataclasses.replace(base.loop, seed=seed, progress=settings.quickstart.progress),
        )
    return best_of_n.BestOfNConfig(output_dir=output_dir, rollouts=rollouts, n=settings.best_of_n, seed=seed)


def _run(method, config):
    if method == "ppo":
        return ppo.train_ppo(config)
    if method in ("grpo", "rloo"):
        return policy_gradient.train_policy_gradient(config)
    if method == "online-dpo":
        return dpo.train_online_dpo(config)
    if method == "dpo":
        return dpo.train_dpo(config)
    return best_of_n.run_best_of_n(config)


def run_compare(settings):
    """Runs (or resumes) every seed and method; returns the rows of the table."""
    rows, frontier_plots = [], []
    for seed in settings.seeds:
        seed_dir = os.path.join(settings.output_dir, f"seed{seed}")
        shared = dataclasses.replace(settings.quickstart, output_dir=seed_dir, seed=seed)
        quickstart_lib.run_quickstart(shared, stages=("sft", "labels", "reward"))
        stage = quickstart_lib.stage_configs(shared)
        shared_dirs = quickstart_lib.stage_dirs(shared)
        sft_metrics = training.RunDirectory(shared_dirs["sft"]).read_metrics()
        curves = {}
        for method in settings.methods:
            output_dir = os.path.join(seed_dir, method)
            metrics = training.RunDirectory(output_dir).read_metrics()
            if "rl/win_rate_vs_sft_gold" not in metrics or "compare/seconds" not in metrics:
                print(f"== compare seed {seed}: {method} -> {output_dir}", flush=True)
                started = time.perf_counter()
                metrics = _run(method, method_config(method, stage, shared_dirs, output_dir, settings, seed))
                metrics["compare/seconds"] = time.perf_counter() - started
                training.RunDirectory(output_dir).update_metrics({"compare/seconds": metrics["compare/seconds"]})
            rows.append({"seed": seed, "method": method, **_row(metrics)})
            curves[method] = frontier.points(output_dir) or _final_point(metrics)
        rows.append(
            {
                "seed": seed,
                "method": "sft",
                "gold_score": rows[-1].get("sft_gold_score", float("nan")),
                "win_rate_vs_sft_gold": 0.5,
                "kl_to_sft": 0.0,
                "sft_perplexity": sft_metrics.get("sft/eval_perplexity", float("nan")),
            }
        )
        path = os.path.join(settings.output_dir, f"frontier_seed{seed}.png")
        if frontier.plot(curves, path, title=f"Reward-KL frontier, seed {seed}"):
            frontier_plots.append(path)
    write_comparison(settings.output_dir, rows, frontier_plots)
    return rows


def _final_point(metrics):
    """A method's frontier without evaluations along its run (best-of-n): the origin and its final evaluation."""
    if metrics.get("rl/kl_to_reference") is None or metrics.get("rl/gold_score") is None:
        return []
    origin = {"step": 0, "kl": 0.0, "gold": metrics.get("rl/sft_gold_score"), "reward": metrics.get("rl/sft_reward")}
    final = {"step": 1, "kl": metrics["rl/kl_to_reference"], "gold": metrics["rl/gold_score"]}
    if metrics.get("rl/reward") is not None:
        final["reward"] = metrics["rl/reward"]
    return [{key: value for key, value in row.items() if value is not None} for row in (origin, final)]


def _row(metrics):
    return {
        "gold_score": metrics.get("rl/gold_score"),
        "sft_gold_score": metrics.get("rl/sft_gold_score"),
        "win_rate_vs_sft_gold": metrics.get("rl/win_rate_vs_sft_gold"),
        "win_rate_vs_sft_reward": metrics.get("rl/win_rate_vs_sft_reward"),
        "kl_to_sft": metrics.get("rl/kl_to_reference"),
        "response_length": metrics.get("rl/response_length"),
        "sft_response_length": metrics.get("rl/sft_response_length"),
        "seconds": metrics.get("compare/seconds"),
    }


def summarize(rows):
    """Per method: mean (and min, max over seeds) of each measure."""
    table = {}
    for row in rows:
        table.setdefault(row["method"], []).append(row)
    summary = {}
    for method, group in table.items():
        entry = {"seeds": len(group)}
        for name in (
            "gold_score",
            "win_rate_vs_sft_gold",
            "win_rate_vs_sft_reward",
            "kl_to_sft",
            "response_length",
            "seconds",
        ):
            values = [row[name] for row in group if row.get(name) is not None]
            if values:
                entry[name] = (float(np.mean(values)), float(np.min(values)), float(np.max(values)))
        summary[method] = entry
    return summary


def write_comparison(output_dir, rows, frontier_plots=()):
    """comparison.json (every row), comparison.md (the table, and the frontier plots `frontier_plots` below it) and
    comparison.png (win rate and KL per method)."""
    summary = summarize(rows)
    files.atomic_write_json(os.path.join(output_dir, "comparison.json"), {"rows": rows, "summary": summary})
    fmt = lambda cell, pattern: "n/a" if cell is None else pattern.format(*cell)
    lines = [
        "| method | seeds | win rate vs SFT (gold), mean [min, max] | gold score | win rate (reward) | KL to SFT | "
        "length (tokens) | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ["sft"] + [method for method in METHODS if method in summary]
    for method in order:
        entry = summary.get(method)
        if entry is None:
            continue
        lines.append(
            f"| {method} | {entry['seeds']} | {fmt(entry.get('win_rate_vs_sft_gold'), '{:.3f} [{:.3f}, {:.3f}]')} | "
            f"{fmt(entry.get('gold_score'), '{:.3f}')} | {fmt(entry.get('win_rate_vs_sft_reward'), '{:.3f}')} | "
            f"{fmt(entry.get('kl_to_sft'), '{:.2f}')} | {fmt(entry.get('response_length'), '{:.1f}')} | "
            f"{fmt(entry.get('seconds'), '{:.0f}')} |"
        )
    lines += [""] + [f"![{os.path.basename(path)}]({os.path.basename(path)})" for path in frontier_plots]
    files.atomic_write_text(os.path.join(output_dir, "comparison.md"), "\n".join(lines) + "\n")
    figure, (left, right) = plots.new_figure(2, (10, 3.8))
    names = [method for method in order if "win_rate_vs_sft_gold" in summary.get(method, {})]
    means = [summary[name]["win_rate_vs_sft_gold"][0] for name in names]
    errors = [
        [m - summary[name]["win_rate_vs_sft_gold"][1] for name, m in zip(names, means)],
        [summary[name]["win_rate_vs_sft_gold"][2] - m for name, m in zip(names, means)],
    ]
    left.bar(names, means, yerr=errors, capsize=4)
    left.axhline(0.5, color="gray", linestyle="--")
    left.set_ylim(0, 1)
    left.set_title("Win rate vs SFT (gold scorer, 1,000 held-out prompts)")
    kls = [summary[name].get("kl_to_sft", (0.0,))[0] for name in names]
    right.scatter(kls, means)
    for name, x, y in zip(names, kls, means):
        right.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4))
    right.set_xlabel("KL to SFT (nats per response)")
    right.set_ylabel("win rate vs SFT (gold)")
    right.set_title("Win rate against KL")
    plots.save_png(figure, os.path.join(output_dir, "comparison.png"))
    return summary
