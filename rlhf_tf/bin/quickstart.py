"""`rlhf-tf quickstart`: the whole RLHF pipeline on the bundled `reviews` task, on one CPU machine in minutes.

    rlhf-tf quickstart                                   # everything with defaults, into runs/quickstart
    rlhf-tf quickstart --output_dir=runs/qs1 --seed=1    # another seed
    rlhf-tf quickstart --task=dialogue                   # another bundled task, with its recipe (flags win over it)

SFT -> sample comparison pairs from the SFT policy -> label them (simulated labeler, SQLite feedback store) -> train
the reward model -> PPO against it -> evaluate on 1,000 held-out prompts -> export both SavedModels. Writes
report.md (the story in numbers, plots, before/after samples), plots/, metrics.json (rl/win_rate_vs_sft_gold,
rl/kl_to_reference, rl/gold_score, sft/gold_score, reward/eval_accuracy, ...) and one run directory per stage.
Rerunning the same command resumes where it stopped. Every field: `rlhf_tf.agents.recipes.quickstart.QuickstartConfig`.
"""

from absl import flags

from rlhf_tf.bin import common, runner

DEFAULT_OUTPUT_DIR = "runs/quickstart"
_TASK = flags.DEFINE_string("task", "reviews", "QuickstartConfig.task.")
_SFT_STEPS = flags.DEFINE_integer("sft_steps", None, "QuickstartConfig.sft_steps.")
_NUM_PAIRS = flags.DEFINE_integer("num_pairs", None, "QuickstartConfig.num_pairs.")
_REWARD_EPOCHS = flags.DEFINE_float("reward_epochs", None, "QuickstartConfig.reward_epochs.")
_REWARD_PATIENCE = flags.DEFINE_integer(
    "reward_patience", None, "QuickstartConfig.reward_patience (0: every pass, the last weights kept)."
)
_PPO_ITERATIONS = flags.DEFINE_integer("ppo_iterations", None, "QuickstartConfig.ppo_iterations.")
_LENGTH_PENALTY = flags.DEFINE_float("length_penalty", None, "QuickstartConfig.length_penalty (0: off).")
_KL_COEF = flags.DEFINE_float("kl_coef", None, "QuickstartConfig.kl_coef.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "QuickstartConfig.learning_rate (PPO).")
_NUM_EVAL_PROMPTS = flags.DEFINE_integer("num_eval_prompts", None, "QuickstartConfig.num_eval_prompts.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", None, "QuickstartConfig.max_new_tokens.")
_ROLLOUT_BATCH_SIZE = flags.DEFINE_integer("rollout_batch_size", None, "QuickstartConfig.rollout_batch_size.")
_LABELER = flags.DEFINE_enum(
    "labeler", "simulated", ["simulated", "web"], "QuickstartConfig.labeler: web = people in `rlhf-tf label-server`."
)
_STORE = flags.DEFINE_string("store", "", "QuickstartConfig.store: the label server's feedback store (--labeler=web).")
_LABEL_TIMEOUT = flags.DEFINE_float("label_timeout", None, "QuickstartConfig.label_timeout (seconds).")
_ARCHITECTURE = flags.DEFINE_string(
    "architecture", None, "PolicyConfig.architecture of the SFT policy: gpt2 (default), llama3, qwen3, gemma3, ..."
)
_TOKENIZER = flags.DEFINE_string(
    "tokenizer", None, "QuickstartConfig.tokenizer: empty (the task's), or family (the architecture's own kind)."
)
_KEY_VALUE_HEADS = flags.DEFINE_integer("num_key_value_heads", None, "PolicyConfig.num_key_value_heads (GQA).")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", None, "PolicyConfig.num_layers of the SFT policy.")
_HIDDEN_DIM = flags.DEFINE_integer("hidden_dim", None, "PolicyConfig.hidden_dim (intermediate 4x, heads /32).")
_INTERMEDIATE_DIM = flags.DEFINE_integer(
    "intermediate_dim", None, "PolicyConfig.intermediate_dim (a gated MLP's 8/3 x hidden matches GPT-2's 4x in size)."
)

HEADLINE = (
    "rl/win_rate_vs_sft_gold",
    "rl/win_rate_vs_sft_reward",
    "rl/gold_score",
    "sft/gold_score",
    "rl/kl_to_reference",
    "rl/response_length",
    "rl/sft_response_length",
    "reward/eval_accuracy",
    "reward/labeler_ceiling",
)


def config_from_flags(default_output_dir=DEFAULT_OUTPUT_DIR):
    """The `QuickstartConfig` the flags describe: the task's recipe (`quickstart.recipe`) with every given flag over
    it (also used by `rlhf-tf compare` for its shared stages)."""
    import dataclasses

    from rlhf_tf.agents.recipes import quickstart

    base = quickstart.recipe(_TASK.value)
    network = dataclasses.replace(
        base.policy, **common.given((("architecture", _ARCHITECTURE), ("num_key_value_heads", _KEY_VALUE_HEADS)))
    )
    if _NUM_LAYERS.value is not None:
        network = dataclasses.replace(network, num_layers=_NUM_LAYERS.value)
    if _HIDDEN_DIM.value is not None:
        width = _HIDDEN_DIM.value
        network = dataclasses.replace(
            network, hidden_dim=width, intermediate_dim=4 * width, num_heads=max(1, width // 32)
        )
    network = dataclasses.replace(network, **common.given((("intermediate_dim", _INTERMEDIATE_DIM),)))
    return dataclasses.replace(
        base,
        output_dir=common.OUTPUT_DIR.value or default_output_dir,
        seed=common.SEED.value,
        progress=common.PROGRESS.value,
        policy=network,
        labeler=_LABELER.value,
        store=_STORE.value,
        lora=common.lora_config(),
        **common.given(
            (
                ("tokenizer", _TOKENIZER),
                ("sft_steps", _SFT_STEPS),
                ("num_pairs", _NUM_PAIRS),
                ("reward_epochs", _REWARD_EPOCHS),
                ("reward_patience", _REWARD_PATIENCE),
                ("ppo_iterations", _PPO_ITERATIONS),
                ("length_penalty", _LENGTH_PENALTY),
                ("kl_coef", _KL_COEF),
                ("learning_rate", _LEARNING_RATE),
                ("num_eval_prompts", _NUM_EVAL_PROMPTS),
                ("max_new_tokens", _MAX_NEW_TOKENS),
                ("rollout_batch_size", _ROLLOUT_BATCH_SIZE),
                ("label_timeout", _LABEL_TIMEOUT),
            )
        ),
    )


def main(argv):
    del argv
    if common.CPU_DEVICES.value:
        from rlhf_tf import training

        training.configure_cpu_devices(common.CPU_DEVICES.value)
    from rlhf_tf.agents.recipes import quickstart

    config = config_from_flags()
    metrics, report_path = quickstart.run_quickstart(config)
    for name in HEADLINE:
        if name in metrics:
            print(f"{name}: {metrics[name]:.4g}")
    print(f"report: {report_path}")


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
