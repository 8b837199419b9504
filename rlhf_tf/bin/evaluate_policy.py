"""`rlhf-tf evaluate-policy`: compare a policy with a baseline (its starting policy) on held-out prompts.

    rlhf-tf evaluate-policy --policy=runs/ppo                        # baseline: the policy the run started from
    rlhf-tf evaluate-policy --policy=runs/ppo/export/policy --baseline=runs/sft --reward=runs/rm --output=eval.json

    rlhf-tf evaluate-policy --policy=runs/ppo --judge=my_judges:politeness --judge=style=runs/style_rm

Reports the gold score (where the task has one) and the reward of both, the win rates of the policy over the
baseline judged by each, raw and length-controlled, the KL to the baseline (sum over response tokens of
log pi - log pi_base on the policy's own samples; needs both as models, not SavedModels), diversity (distinct-1/2/3,
unique responses) and length of both, and a table of samples. Policies are run directories, saved policies,
keras-hub presets or policy SavedModels. `--judge` adds scorers of your own beside the gold one
(`agents/language/evaluation.py`: `evaluate_policy` and `load_judge` say what each metric is).
"""

import json
import os

from absl import flags

from rlhf_tf.bin import runner

_POLICY = flags.DEFINE_string("policy", None, "The policy: run directory, saved policy, preset or SavedModel.")
_BASELINE = flags.DEFINE_string("baseline", "", "The baseline; default: the run's starting policy (config.json).")
_REWARD = flags.DEFINE_string("reward", "", "Reward run directory or SavedModel; default: the run's reward.")
_TASK = flags.DEFINE_string("task", "reviews", "Bundled task: evaluation prompts and gold scorer.")
_PROMPTS = flags.DEFINE_string("prompts", "", "Held-out prompt data instead of the task's evaluation prompts.")
_NUM_PROMPTS = flags.DEFINE_integer("num_prompts", 1000, "Prompts to evaluate on.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 48, "Response budget.")
_MAX_PROMPT_TOKENS = flags.DEFINE_integer(
    "max_prompt_tokens", None, "Prompts keep their last this many tokens (default: 32, or the task's own when longer)."
)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10, "Sample rows printed.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_OUTPUT = flags.DEFINE_string("output", "", "Write the metrics and samples as JSON here.")
_JUDGE = flags.DEFINE_multi_string(
    "judge",
    [],
    "A further judge, repeatable: [name=]module:function of (prompts, responses) -> scores, or [name=]path of a "
    "scorer SavedModel / reward run directory, reported as judge_<name>_score and its win rates; or 'people': blind "
    "pairs in the labeling app's --store, reported as people_win_rate_vs_baseline with a 95% interval.",
)
_STORE = flags.DEFINE_string("store", "", "With --judge=people: the feedback store the labeling app serves.")
_PEOPLE_TIMEOUT = flags.DEFINE_float("people_timeout", 3600.0, "With --judge=people: the longest wait (seconds).")
_LABELS_PER_PAIR = flags.DEFINE_integer(
    "labels_per_pair", 1, "With --judge=people: people asked per pair (2 or more measures their agreement)."
)
flags.mark_flag_as_required("policy")


def _run_setting(path, name):
    """A setting of the RL run that produced `path` (its config.json), or ''."""
    from rlhf_tf import files, training

    for directory in (path, os.path.dirname(os.path.dirname(os.path.normpath(path)))):
        config = files.read_json(training.RunPaths(directory).config_path) or {}
        value = config.get("rollouts", {}).get(name, "")
        if value:
            return value
    return ""


def _is_saved_model(path):
    return os.path.exists(os.path.join(path, "saved_model.pb"))


def evaluate(
    policy,
    baseline,
    reward,
    task_name,
    prompts_spec,
    num_prompts,
    max_new_tokens,
    max_prompt_tokens,
    seed,
    judges=(),
    people=None,
):
    """(metrics, sample rows). `judges`: `--judge` specs (`evaluation.load_judge`; "people" is `people`'s).
    `people`: {"store", "timeout", "labels_per_pair"} when people judge too (`human_evaluation.people_judge`)."""
    from rlhf_tf import tasks
    from rlhf_tf.agents.language import evaluation, rl
    from rlhf_tf.data import sources
    from rlhf_tf.errors import UserInputError
    from rlhf_tf.models import policy as policy_lib
    from rlhf_tf.models import sampling

    task = tasks.get_task(task_name) if task_name else None
    if prompts_spec:
        loaded, _ = sources.load_records(prompts_spec, kind=None)
        prompts = [record.prompt for record in loaded][:num_prompts]
    elif task is not None:
        prompts = [prompt.prompt for prompt in task.evaluation_prompts(num_prompts)]
    else:
        raise UserInputError("Give --task or --prompts.")
    if not baseline:
        raise UserInputError(
            f"No baseline: give --baseline (the policy's run has no starting policy). Received: {policy}"
        )
    reward_texts = rl.load_reward(reward, task) if reward else None
    asks_people = "people" in judges
    judges = [spec for spec in judges if spec != "people"]
    if asks_people and not (people and people.get("store")):
        raise UserInputError("--judge=people needs --store: the feedback store the labeling app serves.")
    judge_fns = dict(evaluation.load_judge(spec) for spec in judges)
    if len(judge_fns) < len(judges):
        raise UserInputError(f"Two judges have the same name; name them (name=...). Received: {list(judges)}")
    gold = task.gold_score if task is not None else None
    task_metrics = task.metrics if task is not None else None
    if _is_saved_model(policy) or _is_saved_model(baseline):
        config = sampling.SamplingConfig(max_new_tokens=max_new_tokens)
        ours = evaluation.generate(policy, prompts, config, max_prompt_tokens, seed)
        theirs = evaluation.generate(baseline, prompts, config, max_prompt_tokens, seed + 1)
        metrics, rows = evaluation.judge(prompts, ours, theirs, gold, reward_texts, judge_fns, task_metrics)
        metrics["prompts"] = len(prompts)
    else:
        causal_lm, tokenizer = policy_lib.load_policy(policy, dropout=0.0)
        baseline_lm, _ = policy_lib.load_policy(baseline, dropout=0.0)
        metrics, rows = evaluation.evaluate_policy(
            causal_lm,
            baseline_lm,
            tokenizer,
            prompts,
            gold_score=gold,
            reward_texts=reward_texts,
            judges=judge_fns,
            task_metrics=task_metrics,
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=max_prompt_tokens,
            seed=seed,
            num_samples_shown=len(prompts),
        )
    if asks_people:
        from rlhf_tf.agents.language import human_evaluation

        texts = [row["prompt"] for row in rows], [row["policy"] for row in rows], [row["baseline"] for row in rows]
        metrics.update(
            human_evaluation.people_judge(
                people["store"], *texts, seed=seed, labels_per_pair=people["labels_per_pair"], timeout=people["timeout"]
            )
        )
    return metrics, rows


def main(argv):
    del argv
    from rlhf_tf import files, tasks

    baseline = _BASELINE.value or _run_setting(_POLICY.value, "policy")
    reward = _REWARD.value or _run_setting(_POLICY.value, "reward")
    metrics, rows = evaluate(
        _POLICY.value,
        baseline,
        reward,
        _TASK.value if not _PROMPTS.value else "",
        _PROMPTS.value,
        _NUM_PROMPTS.value,
        _MAX_NEW_TOKENS.value,
        _MAX_PROMPT_TOKENS.value or tasks.prompt_tokens(_TASK.value if not _PROMPTS.value else "", 32),
        _SEED.value,
        _JUDGE.value,
        {"store": _STORE.value, "timeout": _PEOPLE_TIMEOUT.value, "labels_per_pair": _LABELS_PER_PAIR.value},
    )
    print(f"policy: {_POLICY.value}\nbaseline: {baseline}\nreward: {reward or '(none)'}")
    for name in sorted(metrics):
        print(f"{name}: {metrics[name]:.4g}")
    for row in rows[: _NUM_SAMPLES.value]:
        print(json.dumps(row, ensure_ascii=False))
    if _OUTPUT.value:
        files.atomic_write_json(_OUTPUT.value, {"metrics": metrics, "samples": rows})


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
