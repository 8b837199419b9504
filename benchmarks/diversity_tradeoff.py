"""Diversity against win rate on `reviews`: which PPO setting keeps distinct-2 at least 0.8x SFT's while the gold
win rate stays at least 0.85?

    python benchmarks/diversity_tradeoff.py --workdir=runs/tradeoff [--seeds=0 --variants=default,entropy_0.01]

Per seed: the quickstart's SFT policy, labels and reward model (`rlhf-tf quickstart`'s first three stages, in
`<workdir>/seed<S>/`), then the quickstart's PPO stage once per variant, each from the same SFT policy and reward
model in its own run directory (reruns resume). A variant changes PPO's settings and nothing else:

    default        the quickstart's PPO (kl_coef 0.1, length penalty 0.05, full fine-tuning)
    entropy_<c>    an entropy bonus of c in the loss
    kl_<c>         KL coefficient c
    target_<t>     the adaptive KL controller holding t nats per response (kl_horizon 1,000 responses)
    lora           rank-16 LoRA adapters on query and value at a 1e-3 learning rate (the quickstart's --lora_rank=16)

Prints one row per seed and variant: gold win rate vs SFT, KL to SFT, distinct-2 of policy and SFT and their ratio,
the share of unique responses, and whether the row meets both bars (distinct-2 ratio >= 0.8, win rate >= 0.85).
"""

import argparse
import dataclasses
import json
import os

VARIANTS = "default,entropy_0.01,entropy_0.03,kl_0.2,target_4,lora"


def variant_config(base, name):
    """The PPO stage config of one variant."""
    from rlhf_tf.models import lora

    h = base.hyperparameters
    if name == "default":
        return base
    kind, _, value = name.partition("_")
    if kind == "entropy":
        return dataclasses.replace(base, hyperparameters=dataclasses.replace(h, entropy_coef=float(value)))
    if kind == "kl":
        return dataclasses.replace(base, hyperparameters=dataclasses.replace(h, kl_coef=float(value)))
    if kind == "target":
        return dataclasses.replace(
            base, hyperparameters=dataclasses.replace(h, target_kl=float(value), kl_horizon=1000.0)
        )
    if kind == "lora":
        return dataclasses.replace(
            base, lora=lora.LoraConfig(rank=16), hyperparameters=dataclasses.replace(h, learning_rate=1e-3)
        )
    raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--variants", default=VARIANTS)
    args = parser.parse_args()

    from rlhf_tf.agents.language import ppo
    from rlhf_tf.agents.recipes import quickstart

    rows = []
    for seed in [int(seed) for seed in args.seeds.split(",")]:
        shared = quickstart.QuickstartConfig(
            output_dir=os.path.join(args.workdir, f"seed{seed}"), seed=seed, progress=False
        )
        quickstart.run_quickstart(shared, stages=("sft", "labels", "reward"))
        base = quickstart.stage_configs(shared)["ppo"]
        for name in args.variants.split(","):
            output_dir = os.path.join(args.workdir, f"seed{seed}", f"ppo_{name}")
            metrics_path = os.path.join(output_dir, "metrics.json")
            metrics = {}
            if os.path.exists(metrics_path):
                with open(metrics_path) as handle:
                    metrics = json.load(handle)
            if "rl/win_rate_vs_sft_gold" not in metrics:
                metrics = ppo.train_ppo(dataclasses.replace(variant_config(base, name), output_dir=output_dir))
            rows.append((seed, name, metrics))
            _print_row(seed, name, metrics, header=len(rows) == 1)


def _print_row(seed, name, metrics, header):
    if header:
        print("| seed | variant | gold win rate vs SFT | KL to SFT | distinct-2 (SFT) | ratio | unique | both bars |")
        print("|---|---|---|---|---|---|---|---|")
    ratio = metrics["rl/distinct_2"] / metrics["rl/sft_distinct_2"]
    met = ratio >= 0.8 and metrics["rl/win_rate_vs_sft_gold"] >= 0.85
    print(
        f"| {seed} | {name} | {metrics['rl/win_rate_vs_sft_gold']:.3f} | {metrics['rl/kl_to_reference']:.2f} | "
        f"{metrics['rl/distinct_2']:.4f} ({metrics['rl/sft_distinct_2']:.4f}) | {ratio:.2f} | "
        f"{metrics['rl/unique_responses']:.3f} | {'yes' if met else 'no'} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
