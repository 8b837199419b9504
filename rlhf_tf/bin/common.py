"""Flags shared by the training binaries, and their translation into configs (flags live only in binaries).

Each flag's full meaning is documented once, in the config dataclass field it sets (named in the help text).
"""

from absl import flags

from rlhf_tf import training

OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Run directory (README, 'Run directories'). Reruns resume.")
STEPS = flags.DEFINE_integer("steps", None, "LoopConfig.steps: total optimizer steps (default: the command's).")
SEED = flags.DEFINE_integer("seed", 0, "LoopConfig.seed: seeds everything; recorded in config.json.")
LOG_EVERY = flags.DEFINE_integer("log_every", None, "LoopConfig.log_every.")
CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", None, "LoopConfig.checkpoint_every.")
STRATEGY = flags.DEFINE_enum("strategy", "auto", list(training.distribution.STRATEGIES), "tf.distribute strategy.")
CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Split the CPU into this many logical devices (to try multi-device strategies); 0: don't."
)
SKIP_BAD_RECORDS = flags.DEFINE_bool(
    "skip_bad_records",
    False,
    "Skip malformed records (copied with reasons to rejected_records.jsonl) instead of stopping.",
)
FORMAT = flags.DEFINE_enum(
    "format",
    None,
    ["pairwise", "transcript", "chat", "ranking", "rating", "demonstration", "prompt", "segments"],
    "Force the JSONL shape of the data.",
)
SEQ_LEN = flags.DEFINE_integer("seq_len", None, "PipelineConfig.seq_len: max tokens per sequence.")
MAX_PROMPT_TOKENS = flags.DEFINE_integer("max_prompt_tokens", None, "PipelineConfig.max_prompt_tokens.")
BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "PipelineConfig.batch_size (global).")
DETERMINISTIC = flags.DEFINE_bool(
    "deterministic",
    False,
    "LoopConfig.deterministic: TensorFlow's op determinism, so that a rerun on the same machine with the same seed "
    "repeats every number (some ops run slower).",
)
PROGRESS = flags.DEFINE_bool("progress", True, "LoopConfig.progress: show progress bars.")
LORA_RANK = flags.DEFINE_integer(
    "lora_rank", 0, "LoraConfig.rank: train LoRA adapters of this rank on the frozen model (0: train it all)."
)
LORA_ALPHA = flags.DEFINE_float("lora_alpha", 0.0, "LoraConfig.alpha: updates scaled by alpha / rank (0: rank).")
COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype",
    None,
    ["float32", "bfloat16"],
    "compute_dtype of DPO, KTO, PPO and the policy-gradient learners: bfloat16 runs their passes' matmuls in bf16 "
    "(variables stay float32); worth it where the hardware computes bf16 natively (`rlhf-tf info`).",
)
LORA_TARGETS = flags.DEFINE_list(
    "lora_targets", [], "LoraConfig.targets: layer names to adapt (default: the attention's query and value)."
)


def prepare():
    """Call first in main(): sets up logical CPU devices before TensorFlow initialises them, and joins the
    multi-worker cluster TF_CONFIG names (TensorFlow configures collective ops only before its first op)."""
    if CPU_DEVICES.value:
        training.configure_cpu_devices(CPU_DEVICES.value)
    if not OUTPUT_DIR.value:
        from rlhf_tf.errors import UserInputError

        raise UserInputError("--output_dir is required.")
    if STRATEGY.value == "multi_worker" or (
        STRATEGY.value == "auto" and training.distribution.cluster_from_environment() is not None
    ):
        training.create_strategy("multi_worker")


def given(pairs):
    """{name: flag value} for the (name, flag) pairs whose flag was given (not None)."""
    return {name: flag.value for name, flag in pairs if flag.value is not None}


def loop_config(default):
    """`default` (a LoopConfig) with the flags that were given."""
    import dataclasses

    changes = {"seed": SEED.value, "progress": PROGRESS.value, "deterministic": DETERMINISTIC.value}
    changes.update(given((("steps", STEPS), ("log_every", LOG_EVERY), ("checkpoint_every", CHECKPOINT_EVERY))))
    return dataclasses.replace(default, **changes)


def task_pipeline(default, task, response_tokens=None):
    """`default` (a PipelineConfig) made long enough for bundled task `task`'s prompts ("" leaves it): its
    `max_prompt_tokens` and a `seq_len` holding the task's SFT sequences (or its prompts plus `response_tokens`);
    never shorter than `default`. A fixed bucket list becomes the one new length."""
    if not task:
        return default
    import dataclasses

    from rlhf_tf import tasks

    found = tasks.get_task(task)
    needed = found.sft_seq_len if response_tokens is None else found.max_prompt_tokens + response_tokens
    seq_len = max(default.seq_len, needed)
    changes = {"seq_len": seq_len, "max_prompt_tokens": max(default.max_prompt_tokens, found.max_prompt_tokens)}
    if default.buckets and seq_len != default.seq_len:
        changes["buckets"] = (seq_len,)
    return dataclasses.replace(default, **changes)


def pipeline_config(default, task="", response_tokens=None):
    """`default` (a PipelineConfig) sized for bundled task `task` (`task_pipeline`), with the flags that were given,
    seeded by --seed."""
    import dataclasses

    default = task_pipeline(default, task, response_tokens)
    changes = {"seed": SEED.value}
    changes.update(given((("seq_len", SEQ_LEN), ("max_prompt_tokens", MAX_PROMPT_TOKENS), ("batch_size", BATCH_SIZE))))
    return dataclasses.replace(default, **changes)


def lora_config():
    """The `LoraConfig` of the --lora_* flags."""
    from rlhf_tf.models import lora

    return lora.LoraConfig(rank=LORA_RANK.value, alpha=LORA_ALPHA.value, targets=tuple(LORA_TARGETS.value))


def compute_dtype_changes(target):
    """{"compute_dtype": --compute_dtype} for a config or hyperparameters that have the field; an error for one
    that has not (so the flag is never silently ignored); {} when the flag was not given."""
    if COMPUTE_DTYPE.value is None:
        return {}
    if not hasattr(target, "compute_dtype"):
        from rlhf_tf.errors import UserInputError

        hint = " (reward models: --mixed_precision)" if hasattr(target, "mixed_precision") else ""
        raise UserInputError(f"--compute_dtype does not apply to this command{hint}. Received: {COMPUTE_DTYPE.value}")
    return {"compute_dtype": COMPUTE_DTYPE.value}


def data_run_changes(base, task="", response_tokens=None):
    """Config changes from the flags every data-driven training command shares: the data format, bad-record
    handling, pipeline (sized for bundled task `task`, `task_pipeline`), loop and strategy (plus `epochs=0` when
    --steps is given: explicit steps win over the epoch-derived default)."""
    changes = dict(
        format=FORMAT.value or "",
        skip_bad_records=SKIP_BAD_RECORDS.value,
        pipeline=pipeline_config(base.pipeline, task, response_tokens),
        loop=loop_config(base.loop),
        strategy=STRATEGY.value,
        lora=lora_config(),
        **compute_dtype_changes(base),
    )
    if STEPS.value is not None and hasattr(base, "epochs"):
        changes["epochs"] = 0.0
    return changes


def print_metrics(metrics, prefixes):
    """Prints the metrics whose names start with one of `prefixes`, then the run directory."""
    for name in sorted(metrics):
        if name.startswith(tuple(prefixes)):
            print(f"{name}: {metrics[name]:.4g}")
    print(f"run directory: {OUTPUT_DIR.value}")
