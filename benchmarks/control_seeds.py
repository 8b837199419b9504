"""Issue 24's seed sweeps: each documented control recipe on seeds 0-9, with min / median / max of the final greedy
policy's true return and how many seeds reach the recipe's bar.

    python benchmarks/control_seeds.py --recipes=ppo,dqn,sac,sac-true,gail --seeds=0-9
    python benchmarks/control_seeds.py --recipes=ppo-budget --budgets=300,500 --seeds=0-9

Recipes (the README's commands; `rlhf-tf control`, each run in its own process):
- `ppo`: CartPole PPO from 1000 labels on the pessimistic reward (the ensemble's mean less one member std); bar 450.
- `ppo-mean`: the same on the ensemble's mean alone.
- `dqn`: CartPole DQN from 2000 labels; bar 450.
- `sac`: Pendulum SAC from 1500 labels; bar: within 10% of the median of `sac-true` (SAC on the true reward over the
  same seeds; returns are negative, so "within" is at least median - 0.1 |median|). Also counted: seeds within 10%
  of the same seed's true-reward run, and how many true-reward runs reach the median bar themselves (SAC's own
  spread across seeds is wider than 10%).
- `sac-true`: Pendulum SAC on the true reward (the reference of `sac`).
- `gail`: CartPole GAIL (adversarial reward) from 20 demonstrations recorded once by a PPO expert trained on the
  true reward (seed 0, `expert/`), the policy first cloned from them (2000 behavioural-cloning steps, the default
  with demonstrations); bar 400.
- `gail-no-bc`: the same from a random policy (`--bc_steps=0`): what the adversarial reward alone teaches.
- `ppo-budget`: CartPole PPO from each of `--budgets` labels; bar 450: the smallest budget holding 9 of 10 seeds.

A run whose directory already holds its final metrics is read, not rerun (the sweep resumes). Runs go `--parallel`
at a time, each pinned to its own core when there are enough (TensorFlow's numerics depend on the threads it uses:
a run pinned to one core and the same run over two cores can differ in the last digits, and a learning run's
trajectory then drifts). The wall time of each run is its `control/seconds`.
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile

CARTPOLE = ["--env=CartPole-v1"]
PESSIMISTIC = ["--reward_uncertainty_penalty=1"]
PENDULUM = ["--env=Pendulum-v1", "--agent=sac"]
RECIPES = {
    "ppo": (CARTPOLE + ["--agent=ppo", "--num_labels=1000"] + PESSIMISTIC, 450.0),
    "ppo-mean": (CARTPOLE + ["--agent=ppo", "--num_labels=1000"], 450.0),
    "dqn": (CARTPOLE + ["--agent=dqn", "--num_labels=2000"], 450.0),
    "sac": (PENDULUM + ["--num_labels=1500"], None),
    "sac-true": (PENDULUM + ["--reward=true"], None),
    "gail": (CARTPOLE + ["--agent=ppo", "--reward=adversarial"], 400.0),
    "gail-no-bc": (CARTPOLE + ["--agent=ppo", "--reward=adversarial", "--bc_steps=0"], 400.0),
}
EXPERT = CARTPOLE + ["--agent=ppo", "--reward=true", "--record_demonstrations=20", "--seed=0"]
SAC_TOLERANCE = 0.1


def _seeds(text):
    if "-" in text:
        low, high = (int(part) for part in text.split("-"))
        return list(range(low, high + 1))
    return [int(part) for part in text.split(",")]


def _control(arguments, output, core, extra=()):
    """Runs `rlhf-tf control` into `output` unless it finished before; returns its metrics."""
    metrics_path = os.path.join(output, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as handle:
            metrics = json.load(handle)
        if "control/seconds" in metrics:
            return metrics
    command = ["rlhf-tf", "control", *arguments, *extra, f"--output_dir={output}", "--progress=false"]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    with open(metrics_path) as handle:
        return json.load(handle)


def _jobs(recipes, seeds, budgets, root, demonstrations):
    """(recipe label, seed, arguments, output directory) of every run."""
    jobs = []
    for recipe in recipes:
        if recipe == "ppo-budget":
            for budget in budgets:
                arguments = CARTPOLE + ["--agent=ppo", f"--num_labels={budget}"] + PESSIMISTIC
                jobs += [(f"ppo-{budget}", seed, arguments, f"ppo-{budget}") for seed in seeds]
            continue
        arguments = list(RECIPES[recipe][0])
        if recipe.startswith("gail"):
            arguments.append(f"--demonstrations={demonstrations}")
        jobs += [(recipe, seed, arguments, recipe) for seed in seeds]
    return [
        (label, seed, [*arguments, f"--seed={seed}"], os.path.join(root, directory, f"seed-{seed}"))
        for label, seed, arguments, directory in jobs
    ]


def _bar(label, results):
    if label.startswith("ppo-"):
        return RECIPES["ppo"][1]
    if label == "sac":
        reference = results.get("sac-true")
        if not reference:
            return None
        median = statistics.median(reference.values())
        return median - SAC_TOLERANCE * abs(median)
    return RECIPES[label][1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="ppo,dqn,sac,sac-true,gail")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--budgets", default="300,500")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--output_dir", default="")
    args = parser.parse_args()
    root = args.output_dir or tempfile.mkdtemp(prefix="control_seeds_")
    recipes = args.recipes.split(",")
    unknown = sorted(set(recipes) - set(RECIPES) - {"ppo-budget"})
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {sorted(RECIPES) + ['ppo-budget']}")
    seeds = _seeds(args.seeds)
    budgets = [int(budget) for budget in args.budgets.split(",")]
    cores = os.cpu_count() or 1
    pin = hasattr(os, "sched_setaffinity") and cores >= args.parallel and args.parallel > 1
    demonstrations = os.path.join(root, "expert", "demonstrations.jsonl")
    if any(recipe.startswith("gail") for recipe in recipes):
        expert = _control(EXPERT, os.path.join(root, "expert"), 0 if pin else None)
        print(f"expert (PPO on the true reward, seed 0): demonstrations {expert['control/demonstrations_return_mean']}")
    jobs = _jobs(recipes, seeds, budgets, root, demonstrations)
    results, seconds = {}, {}
    free = list(range(args.parallel))
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:

        def run(job):
            core = free.pop()
            try:
                return job, _control(job[2], job[3], core if pin else None)
            finally:
                free.append(core)

        for (label, seed, _, _), metrics in pool.map(run, jobs):
            final, took = metrics["control/true_return_mean"], metrics["control/seconds"]
            results.setdefault(label, {})[seed] = final
            seconds.setdefault(label, {})[seed] = took
            print(f"{label} seed {seed}: {final:.1f} in {took:.0f} s")
            sys.stdout.flush()
    print()
    print("| recipe | bar | min | median | max | seeds at the bar | per seed | longest run |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for label, by_seed in results.items():
        values = [by_seed[seed] for seed in sorted(by_seed)]
        bar = _bar(label, results)
        reached = sum(value >= bar for value in values) if bar is not None else None
        summary[label] = dict(
            bar=bar,
            returns={str(seed): by_seed[seed] for seed in sorted(by_seed)},
            seconds={str(seed): seconds[label][seed] for seed in sorted(by_seed)},
            reached=reached,
        )
        shown_bar = "-" if bar is None else f"{bar:.1f}"
        shown_reached = "-" if reached is None else f"{reached} of {len(values)}"
        per_seed = " / ".join(f"{value:.1f}" for value in values)
        print(
            f"| {label} | {shown_bar} | {min(values):.1f} | {statistics.median(values):.1f} | {max(values):.1f} | "
            f"{shown_reached} | {per_seed} | {max(seconds[label].values()):.0f} s |"
        )
    if "sac" in results and "sac-true" in results:
        paired = [
            seed
            for seed, value in results["sac"].items()
            if seed in results["sac-true"]
            and value >= results["sac-true"][seed] - SAC_TOLERANCE * abs(results["sac-true"][seed])
        ]
        summary["sac"]["reached_against_own_seed"] = len(paired)
        print(
            f"\nsac within 10% of the same seed's true-reward run: {len(paired)} of {len(results['sac'])} "
            f"(the true-reward runs themselves reach the median bar on "
            f"{sum(value >= _bar('sac', results) for value in results['sac-true'].values())} of "
            f"{len(results['sac-true'])})"
        )
    with open(os.path.join(root, "results.json"), "w") as handle:
        json.dump(summary, handle, indent=1)
    print(f"\nruns and results.json: {root} (parallel {args.parallel}, pinned to one core each: {pin})")


if __name__ == "__main__":
    main()
