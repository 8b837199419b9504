"""The `rlhf-tf` console script: `rlhf-tf <subcommand> [--flag=value ...]`.

Each subcommand is the absl binary `rlhf_tf.bin.<name>` (dashes on the command line, underscores in module names),
so `rlhf-tf info --measure` and `python -m rlhf_tf.bin.info --measure` are the same program, with `--flagfile` and
`--helpfull` handled by absl.
"""

import difflib
import importlib
import sys

# Subcommands that work today, in pipeline order, with their one-line purpose. A subcommand is listed here only
# once its machinery exists.
SUBCOMMANDS = {
    "quickstart": "The main job: SFT -> feedback -> reward model -> PPO -> evaluation -> export, with a report.",
    "validate-data": "Check feedback files: shapes, counts, lengths, and every bad line with its number and field.",
    "convert-data": "Convert feedback data between JSON Lines and TFRecord shards (optionally GZIP).",
    "sft": "Supervised fine-tuning of a language policy on demonstrations (--task=reviews or --data=FILE).",
    "collect-labels": "Sample comparison pairs from a policy and label them (simulated labeler) through the store.",
    "label-server": "The labeling web app over a feedback store: people answer comparisons, rankings, ratings, clips.",
    "train-reward": "Train a reward model from comparisons or rankings; writes metrics, calibration and export/reward.",
    "evaluate-reward": "Measure a reward model (run directory or SavedModel) on comparisons: accuracy, calibration.",
    "ppo": "Fine-tune a policy against a reward model with PPO (actor-critic) through TF-Agents drivers.",
    "grpo": "Fine-tune a policy with GRPO (group-normalised advantages, no critic) against a reward.",
    "rloo": "Fine-tune a policy with RLOO (leave-one-out baseline over k samples, no critic) against a reward.",
    "reinforce": "Fine-tune a policy with REINFORCE and a moving-average baseline against a reward.",
    "dpo": "Learn a policy from comparisons without a reward model (DPO, IPO or hinge loss), offline.",
    "kto": "Learn a policy from unpaired thumbs-up / thumbs-down ratings (KTO).",
    "online-dpo": "DPO on pairs sampled from the current policy and ranked by a reward model, each iteration.",
    "best-of-n": "The inference-time baseline: n samples per prompt, the reward model's favourite kept; evaluated.",
    "compare": "Every method (best-of-n, PPO, GRPO, RLOO, online DPO, DPO) with one label budget: a table and a plot.",
    "control": "Train a TF-Agents agent in a gym environment from preferences (or demonstrations, or true reward).",
    "recommend": "Train a TF-Agents bandit on a reward learned from clicks, ratings or slate choices; judge it.",
    "evaluate-policy": "Compare a policy with its starting policy on held-out prompts: gold, reward, KL, win rates.",
    "generate": "Sample responses from a policy run directory, saved policy, preset or SavedModel.",
    "new-preset": "A fresh keras-hub preset of any family (random weights, its own tokenizer kind) for offline work.",
    "launch": "Run a training subcommand as N local workers under MultiWorkerMirroredStrategy (preemption-safe).",
    "info": "Show versions, Keras routing, devices and CPU features; --measure adds the fp32 matmul peak.",
}

USAGE = """usage: rlhf-tf <subcommand> [--flag=value ...]
       rlhf-tf <subcommand> --helpfull     (every flag of a subcommand)
       rlhf-tf --version

Reinforcement learning from human feedback for TensorFlow and Keras.

subcommands:
{subcommands}

Each subcommand is also `python -m rlhf_tf.bin.<name_with_underscores>`; flags can come from --flagfile=FILE."""


def usage():
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [f"  {name.ljust(width)}  {purpose}" for name, purpose in SUBCOMMANDS.items()]
    return USAGE.format(subcommands="\n".join(lines))


def main(argv):
    """Dispatches `argv` (without the program name); returns an exit status or runs the binary."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from rlhf_tf.version import __version__

        print(f"rlhf-tf {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name.replace("_", "-"), list(SUBCOMMANDS), n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        print(f"rlhf-tf: unknown subcommand `{name}`.{hint} Run `rlhf-tf --help` for the list.", file=sys.stderr)
        return 2
    if name == "launch":  # a supervisor of worker processes, not an absl binary; TensorFlow stays out of it
        from rlhf_tf.bin import launch

        return launch.main(argv[1:])
    from rlhf_tf.bin import console

    console.install(argv[1:])  # before TensorFlow starts: its C++ start-up lines go to the log, not the screen
    module = importlib.import_module(f"rlhf_tf.bin.{name.replace('-', '_')}")
    if "--helpshort" in argv[1:]:
        print(helpshort(name, module))
        return 0
    module.run(argv=[f"rlhf-tf {name}", *argv[1:]])
    return 0


def helpshort(name, module):
    """The subcommand's own flags (its module's and the shared flag modules it uses), grouped by module: absl's
    --helpshort lists only the main module's, which under this dispatcher is the dispatcher."""
    from absl import flags

    shared = [sys.modules[shared] for shared in ("rlhf_tf.bin.rl_flags", "rlhf_tf.bin.common") if shared in sys.modules]
    sections = [f"usage: rlhf-tf {name} [--flag=value ...]", (module.__doc__ or "").strip(), ""]
    for source in [module, *shared]:
        text = flags.FLAGS.module_help(source)
        if text.strip():
            sections.append(text)
    sections.append("\n(--helpfull lists every flag, absl's and TensorFlow's too.)")
    return "\n".join(sections)


def run():
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
