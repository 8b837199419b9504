"""Flags every RL command shares (policy, reward, prompts, sampling, length control), turned into configs."""

from absl import flags

from rlhf_tf.bin import common

POLICY = flags.DEFINE_string("policy", None, "RolloutConfig.policy: SFT run directory, saved policy or preset.")
REWARD = flags.DEFINE_string("reward", None, "RolloutConfig.reward: reward run directory, SavedModel, or 'gold'.")
TASK = flags.DEFINE_string("task", "reviews", "RolloutConfig.task: bundled task (prompts, gold scorer).")
PROMPTS = flags.DEFINE_string("prompts", "", "RolloutConfig.prompts: prompt data; overrides the task's prompts.")
EVAL_PROMPTS = flags.DEFINE_string("eval_prompts", "", "RolloutConfig.eval_prompts: held-out prompts.")
NUM_EVAL_PROMPTS = flags.DEFINE_integer("num_eval_prompts", None, "RolloutConfig.num_eval_prompts.")
MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", None, "RolloutConfig.max_new_tokens: response budget.")
TEMPERATURE = flags.DEFINE_float("temperature", None, "RolloutConfig.temperature of rollouts.")
EXACT_SAMPLING = flags.DEFINE_bool(
    "exact_sampling", None, "RolloutConfig.exact_sampling: workers sample the tokens one process would (default)."
)
LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "Learning rate of the policy update.")
KL_COEF = flags.DEFINE_float(
    "kl_coef",
    None,
    "KL coefficient against the starting policy; default per command (rl.KL_COEF_DEFAULTS): ppo 0.1 (per-token "
    "penalty in the reward; the adaptive controller's start with --target_kl), grpo 0.1 (k3 loss term), rloo and "
    "reinforce 0.05 (sequence KL subtracted from the score). online-dpo has no KL term and refuses the flag.",
)
TARGET_KL = flags.DEFINE_float(
    "target_kl",
    None,
    "Adaptive KL: hold the KL to the starting policy near this many nats per response by adapting --kl_coef after "
    "every batch (0: fixed). ppo, grpo, rloo, reinforce.",
)
KL_HORIZON = flags.DEFINE_float(
    "kl_horizon", None, "The adaptive KL controller's horizon in responses (larger: slower adaptation)."
)
LENGTH_PENALTY = flags.DEFINE_float(
    "length_penalty", None, "Length control: score lost per response token beyond --length_target (0: off)."
)
LENGTH_TARGET = flags.DEFINE_float(
    "length_target", None, "Tokens; 0 takes 1.1 x the starting policy's mean response length."
)
LR_SCHEDULE = flags.DEFINE_enum("lr_schedule", None, ["constant", "linear"], "Learning-rate schedule.")
EXPORT = flags.DEFINE_bool("export", True, "Write export/policy (the serving SavedModel).")
FRONTIER_PROMPTS = flags.DEFINE_integer(
    "frontier_prompts", None, "RunConfig.frontier_prompts: held-out prompts of the reward-KL frontier (0: off)."
)
flags.mark_flag_as_required("policy")
flags.mark_flag_as_required("reward")


def rollout_config():
    from rlhf_tf import tasks
    from rlhf_tf.agents.language import rl

    changes = common.given(
        (
            ("num_eval_prompts", NUM_EVAL_PROMPTS),
            ("max_new_tokens", MAX_NEW_TOKENS),
            ("temperature", TEMPERATURE),
            ("exact_sampling", EXACT_SAMPLING),
            ("batch_size", common.BATCH_SIZE),
            ("max_prompt_tokens", common.MAX_PROMPT_TOKENS),
        )
    )
    task = TASK.value if not PROMPTS.value else ""
    if "max_prompt_tokens" not in changes:
        changes["max_prompt_tokens"] = tasks.prompt_tokens(task, rl.RolloutConfig.max_prompt_tokens)
    return rl.RolloutConfig(
        policy=POLICY.value,
        reward=REWARD.value,
        task=task,
        prompts=PROMPTS.value,
        eval_prompts=EVAL_PROMPTS.value,
        **changes,
    )


def run_changes(base):
    """The `rl.RunConfig` fields every RL command sets from flags (loop, export, strategy, LoRA, frontier)."""
    return dict(
        loop=common.loop_config(base.loop),
        export=EXPORT.value,
        strategy=common.STRATEGY.value,
        lora=common.lora_config(),
        **common.given((("frontier_prompts", FRONTIER_PROMPTS),)),
    )


def hyperparameter_changes():
    return common.given(
        (
            ("learning_rate", LEARNING_RATE),
            ("kl_coef", KL_COEF),
            ("target_kl", TARGET_KL),
            ("kl_horizon", KL_HORIZON),
            ("length_penalty", LENGTH_PENALTY),
            ("length_target", LENGTH_TARGET),
            ("lr_schedule", LR_SCHEDULE),
        )
    )


def print_summary(metrics):
    for name in sorted(metrics):
        if name.startswith("rl/") and not name.startswith(("rl/policy_loss", "rl/value_loss", "rl/grad")):
            print(f"{name}: {metrics[name]:.4g}")
    print(f"run directory: {common.OUTPUT_DIR.value}")
