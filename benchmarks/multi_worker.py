"""Benchmark (issue 23): PPO and GRPO on two workers (`rlhf-tf launch --workers=2`) against one process.

On the quickstart's policy and reward (a finished `rlhf-tf quickstart` run directory, or one made here with the
quickstart's defaults), each method runs `--iterations` iterations with the same global batch and seed as one
process and as two local workers under MultiWorkerMirroredStrategy. Printed:

- agreement: per iteration, the largest relative difference of the loss, the KL and the score between the two
  runs (the acceptance bar: 1e-3), and which final evaluation metrics differ;
- time: seconds per iteration (the loop's steady-state rate) of each, and the two-worker overhead, the figure
  docs/scaling.md's model is checked against. On one machine the two workers share its cores, so this measures
  the cost of the collectives and the second process, not a speed-up.

usage: python benchmarks/multi_worker.py [--quickstart=RUN_DIR] [--iterations=10] [--output_dir=DIR]
(runs already in --output_dir are kept)
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

UNTIMED = ("steps_per_second", "peak_memory_mb", "seconds")
COMPARED = ("rl/loss", "rl/kl", "rl/score")


def run(command, log, output=None):
    """Runs `command` (its output to `log`); returns its seconds. A run whose `output` has metrics is kept."""
    if output and os.path.exists(os.path.join(output, "metrics.json")):
        with open(log + ".seconds") as handle:
            return float(handle.read())
    started = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed; see {log}")
    seconds = time.perf_counter() - started
    with open(log + ".seconds", "w") as handle:
        handle.write(str(seconds))
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quickstart", default="", help="A finished quickstart run directory (sft/, reward/).")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--methods", default="ppo,grpo")
    parser.add_argument("--output_dir", default="")
    args = parser.parse_args()
    root = args.output_dir or tempfile.mkdtemp(prefix="multi_worker_")
    os.makedirs(root, exist_ok=True)
    quickstart = args.quickstart
    if not quickstart:
        quickstart = os.path.join(root, "quickstart")
        print(f"quickstart (defaults) into {quickstart} ...", flush=True)
        run(["rlhf-tf", "quickstart", f"--output_dir={quickstart}", "--progress=false"], quickstart + ".log")

    import rlhf_tf  # noqa: F401  (after the subprocesses are set up: TensorFlow starts here)
    from rlhf_tf import training

    common = [
        f"--policy={os.path.join(quickstart, 'sft')}",
        f"--reward={os.path.join(quickstart, 'reward')}",
        f"--steps={args.iterations}",
        "--length_penalty=0.05",  # the quickstart's PPO setting
        "--frontier_prompts=0",
        "--noexport",
        "--noprogress",
        "--seed=0",
    ]
    print(f"policy and reward: {quickstart}; {args.iterations} iterations; seed 0")
    for method in args.methods.split(","):
        runs, wall = {}, {}
        for workers in (1, 2):
            output = os.path.join(root, f"{method}-{workers}")
            launcher = ["launch", f"--workers={workers}"] if workers > 1 else []
            command = ["rlhf-tf", *launcher, method, f"--output_dir={output}", *common]
            wall[workers] = run(command, output + ".log", output)
            runs[workers] = output
        # The same two replicas in one process (MirroredStrategy over two logical CPUs): the cost of splitting
        # the steps over replicas (graphs rather than XLA, the all-reduce) without a second process or gRPC.
        mirrored = os.path.join(root, f"{method}-mirrored")
        command = ["rlhf-tf", method, f"--output_dir={mirrored}", "--strategy=mirrored", "--cpu_devices=2", *common]
        run(command, mirrored + ".log", mirrored)
        scalars = {workers: training.read_scalars(os.path.join(runs[workers], "tb")) for workers in runs}
        print(f"\n{method}:")
        for name in COMPARED:
            pairs = [(a, b) for (_, a), (_, b) in zip(scalars[1][name], scalars[2][name])]
            # Relative differences of values that are not rounding noise around zero (the first iteration's KL is
            # ~1e-7 on both sides): those at least 1e-3 of the series' largest; absolute ones for all.
            scale = max(abs(a) for a, _ in pairs)
            relative = max((abs(a - b) / abs(a) for a, b in pairs if abs(a) >= 1e-3 * scale), default=0.0)
            absolute = max(abs(a - b) for a, b in pairs)
            print(
                f"  {name}: {len(pairs)} iterations, largest relative difference {relative:.2e} (bar 1e-3), "
                f"largest absolute {absolute:.2e} (largest value {scale:.3g})"
            )
        metrics = {}
        for workers, output in runs.items():
            with open(os.path.join(output, "metrics.json")) as handle:
                metrics[workers] = json.load(handle)
        differing = {
            name: (value, metrics[2].get(name))
            for name, value in metrics[1].items()
            if not name.endswith(UNTIMED) and not name.startswith(COMPARED) and metrics[2].get(name) != value
        }
        equal = sum(1 for name in metrics[1] if not name.endswith(UNTIMED)) - len(differing)
        print(
            f"  final metrics: {equal} equal; differing: "
            + (", ".join(f"{name} {a:.6g} vs {b:.6g}" for name, (a, b) in differing.items()) or "none")
        )
        per_iteration = {workers: 1.0 / metrics[workers]["rl/steps_per_second"] for workers in metrics}
        with open(os.path.join(mirrored, "metrics.json")) as handle:
            two_replicas = 1.0 / json.load(handle)["rl/steps_per_second"]
        print(
            f"  seconds per iteration: one process {per_iteration[1]:.3f}, two replicas in one process "
            f"{two_replicas:.3f} ({two_replicas / per_iteration[1]:.2f}x), two workers {per_iteration[2]:.3f} "
            f"({per_iteration[2] / per_iteration[1]:.2f}x); whole command {wall[1]:.1f} s vs {wall[2]:.1f} s"
        )
        if not math.isfinite(per_iteration[2]):
            sys.exit(1)


if __name__ == "__main__":
    main()
