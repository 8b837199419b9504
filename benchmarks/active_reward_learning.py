"""Active learning for the language reward model: with the same label budget, does asking about the pairs the
ensemble disagrees on give a more accurate reward model than asking about random pairs?

    python benchmarks/active_reward_learning.py --policy=runs/quickstart/sft [--num_labels=600 --seeds=0,1]

Runs `rlhf-tf train-reward --policy=... --selection=disagreement` and `--selection=random` on the bundled `reviews`
task for each seed (same pool, same held-out pairs and same first round for both: only the later rounds' choice
differs) and prints, per round, the held-out accuracy against the task's noiseless gold ordering (on 1000 pairs
sampled from held-out prompts, and on the run's own held-out labelled pairs) and the ensemble's disagreement on the
pairs asked vs on the pool. Without --policy it first trains the quickstart's SFT policy.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time


def _train_policy(workdir):
    from rlhf_tf.agents.language import sft
    from rlhf_tf.agents.recipes import quickstart

    config = quickstart.QuickstartConfig(output_dir=os.path.join(workdir, "quickstart"), progress=False)
    stage = quickstart.stage_configs(config)["sft"]
    sft.train_sft(stage)
    return stage.output_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="")
    parser.add_argument("--num_labels", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workdir", default="")
    parser.add_argument("--report_only", action="store_true", help="print the results already in --workdir")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="active_reward_")
    policy = args.policy or ("" if args.report_only else _train_policy(workdir))
    results = {}
    for seed in [int(seed) for seed in args.seeds.split(",")]:
        for selection in ("disagreement", "random"):
            output_dir = os.path.join(workdir, f"{selection}_s{seed}")
            if args.report_only:
                with open(os.path.join(output_dir, "metrics.json")) as handle:
                    results[(seed, selection)] = (json.load(handle), float("nan"))
                continue
            started = time.perf_counter()
            subprocess.run(
                [
                    shutil.which("rlhf-tf") or "rlhf-tf",
                    "train-reward",
                    f"--policy={policy}",
                    "--task=reviews",
                    f"--num_labels={args.num_labels}",
                    f"--label_rounds={args.rounds}",
                    f"--selection={selection}",
                    f"--seed={seed}",
                    "--progress=false",
                    f"--output_dir={output_dir}",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            with open(os.path.join(output_dir, "metrics.json")) as handle:
                results[(seed, selection)] = (json.load(handle), time.perf_counter() - started)

    report(results, policy, args, workdir)


def report(results, policy, args, workdir):
    print(f"policy {policy}, {args.num_labels} labels in {args.rounds} rounds, workdir {workdir}")
    print("accuracy against the gold ordering on 1000 pairs from held-out prompts (gold check), per round;")
    print("in brackets: on the run's own held-out labelled pairs")
    finals = {"disagreement": [], "random": []}
    for (seed, selection), (metrics, seconds) in sorted(results.items()):
        cells = []
        for k in range(args.rounds):
            check = metrics.get(f"active/round_{k}_gold_check_accuracy", float("nan"))
            held_out = metrics.get(f"active/round_{k}_eval_accuracy_vs_gold", float("nan"))
            cells.append(f"round {k}: {check:.4f} ({held_out:.4f})")
        finals[selection].append(metrics.get(f"active/round_{args.rounds - 1}_gold_check_accuracy", float("nan")))
        print(f"seed {seed} {selection:<12} " + "  ".join(cells) + f"  {seconds:.0f} s")
        if selection == "disagreement":
            for k in range(1, args.rounds):
                print(
                    f"    round {k}: ensemble disagreement on the pairs asked "
                    f"{metrics[f'active/round_{k}_asked_disagreement']:.4f}, on the pool "
                    f"{metrics[f'active/round_{k}_pool_disagreement']:.4f}"
                )
    mean = {name: sum(values) / max(1, len(values)) for name, values in finals.items()}
    print(
        f"final gold-check accuracy, mean over seeds: disagreement {mean['disagreement']:.4f}, random "
        f"{mean['random']:.4f} (difference {mean['disagreement'] - mean['random']:+.4f})"
    )


if __name__ == "__main__":
    main()
