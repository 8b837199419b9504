"""Evaluating a language policy on held-out prompts against a baseline (the SFT policy, as a rule).

For each prompt the policy and the baseline each sample one response (temperature 1, the RL sampler). Reported:
- `gold_score` (and the baseline's) where the task has a gold scorer, `reward` where a reward function is given;
- `win_rate_vs_baseline_gold` / `_reward`: the share of prompts where the policy's response scores higher (ties
  count one half), judged by the gold scorer / by the reward model;
- `kl_to_reference`: mean over prompts of sum_t (log pi(y_t) - log pi_ref(y_t)) on the policy's own samples (the
  k1 estimator of the sequence KL), with the baseline as reference;
- `length_controlled_win_rate_vs_baseline_*`: the same win rates with the part explained by the length difference
  (in characters) taken out (`text_metrics.length_controlled_win_rate`, AlpacaEval 2's control);
- further judges (`judges`, e.g. `--judge=module:function` or a scorer SavedModel), each reported as
  `judge_<name>_score` and its own (length-controlled) win rate beside the gold scorer's;
- diversity of both: `distinct_1/2/3` (pooled word n-grams) and `unique_responses` (`text_metrics.diversity`);
- `response_length` of both, in tokens, and a table of samples.
With 1,000 prompts the win rate's standard error is about 0.016 at 0.5 and less further out.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece ops of exported tokenizers)

from rlhf_tf.agents.language import sft, text_metrics
from rlhf_tf.data import pipelines
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import lora, sampling
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.training import distribution
from rlhf_tf.training.progress import Progress


def public_name(name):
    """The metric name an RL run reports, where the baseline is the starting (SFT) policy:
    `win_rate_vs_baseline_gold` -> `win_rate_vs_sft_gold`, `baseline_gold_score` -> `sft_gold_score`."""
    return name.replace("vs_baseline", "vs_sft").replace("baseline_", "sft_")


def evaluate_policy(
    causal_lm,
    baseline_lm,
    tokenizer,
    prompts,
    gold_score=None,
    reward_texts=None,
    judges=None,
    task_metrics=None,
    max_new_tokens=48,
    max_prompt_tokens=32,
    batch_size=64,
    seed=0,
    num_samples_shown=10,
    progress=True,
):
    """Metrics (a flat dict, names without a group) and a list of sample rows (prompt, policy, baseline, and the
    policy sample's KL to the baseline).

    Args:
      causal_lm, baseline_lm: the policy and the baseline / reference (keras-hub causal LMs).
      tokenizer: their shared tokenizer.
      prompts: prompt strings (1,000 held-out prompts by default in the commands).
      gold_score: optional `(prompts, responses) -> [batch]`, the task's judge.
      reward_texts: optional `(prompts, responses) -> [batch]`, e.g. a reward SavedModel's signature.
      judges: optional {name: `(prompts, responses) -> [batch]`}, further scorers (`judge`).
      task_metrics: optional `(prompts, responses) -> {name: value}`, the task's own measures (`Task.metrics`).
    """
    evaluator = PolicyEvaluator(causal_lm, baseline_lm, tokenizer, max_new_tokens, max_prompt_tokens, batch_size)
    metrics, rows = evaluator.evaluate(prompts, gold_score, reward_texts, judges, seed, progress, task_metrics)
    return metrics, rows[:num_samples_shown]


class PolicyEvaluator:
    """`evaluate_policy` for repeated use on one policy as it trains (the reward-KL frontier): the samplers and the
    KL pass are built once, and the baseline's samples, which do not change, are drawn once per prompt set and
    seed. Every call samples as `evaluate_policy` does (stateless seeds [seed, 2 x batch] for the policy and
    [seed, 2 x batch + 1] for the baseline), so an evaluation on the first k batches of prompts gives the first k
    batches' samples of an evaluation on all of them."""

    def __init__(self, causal_lm, baseline_lm, tokenizer, max_new_tokens=48, max_prompt_tokens=32, batch_size=64):
        config = sampling.SamplingConfig(max_new_tokens=max_new_tokens)
        self._tokenizer, self._baseline_lm = tokenizer, baseline_lm
        self._max_prompt_tokens, self._batch_size = max_prompt_tokens, batch_size
        self._policy_sampler = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, config)
        # Under LoRA the baseline is the policy's own frozen base: its passes run with the adapters off.
        self._baseline_sampler = sampling.Sampler(
            baseline_lm, tokenizer.end_id, tokenizer.pad_id, config, adapters=False
        )
        self._kl_pass = tf.function(lora.base_function(sampling.teacher_forced, baseline_lm))
        self._baselines = {}

    def evaluate(
        self, prompts, gold_score=None, reward_texts=None, judges=None, seed=0, progress=False, task_metrics=None
    ):
        """(metrics, every sample row), as `evaluate_policy`; `task_metrics` as in `judge`."""
        key = (tuple(prompts), seed)
        cached = self._baselines.get(key)
        # In a multi-worker run each worker samples every n-th batch (with that batch's own seeds, so the samples
        # are a single process's) and the batches are gathered in order; the judging below then sees them all.
        worker, workers = distribution.worker_share()
        sampled = {}
        bar = Progress(len(prompts), description="evaluate", unit="prompt", enabled=progress)
        batches = pipelines.prompt_batches(prompts, self._tokenizer, self._max_prompt_tokens, self._batch_size)
        for index, batch in enumerate(batches):
            bar.advance(int(batch["token_ids"].shape[0]))
            if index % workers != worker:
                continue
            ids, mask = batch["token_ids"], batch["padding_mask"]
            ours = self._policy_sampler.generate(ids, mask, [seed, 2 * index])
            row = {}
            if cached is None:
                theirs = self._baseline_sampler.generate(ids, mask, [seed, 2 * index + 1])
                row["baseline_lengths"] = tf.reduce_sum(tf.cast(theirs["mask"], tf.float32), axis=1).numpy().tolist()
                row["baseline_texts"] = self._decode(theirs)
            reference = self._kl_pass(self._baseline_lm.backbone, ids, mask, ours["token_ids"], ours["mask"])
            row["kls"] = tf.reduce_sum(ours["logprobs"] - reference["logprobs"], axis=1).numpy().tolist()
            row["policy_lengths"] = tf.reduce_sum(tf.cast(ours["mask"], tf.float32), axis=1).numpy().tolist()
            row["policy_texts"] = self._decode(ours)
            sampled[index] = row
        bar.close()
        if workers > 1:
            sampled = {int(index): row for part in distribution.exchange(sampled) for index, row in part.items()}
        ordered = [sampled[index] for index in sorted(sampled)]
        gathered = lambda name: [value for row in ordered for value in row[name]]  # noqa: E731
        as_array = lambda name: np.asarray(gathered(name), np.float32)  # noqa: E731  (as computed: float32)
        policy_texts, policy_lengths = gathered("policy_texts"), [as_array("policy_lengths")]
        if cached is None:
            cached = self._baselines[key] = (gathered("baseline_texts"), as_array("baseline_lengths"))
        baseline_texts, baseline_lengths = cached
        kls = as_array("kls")
        metrics = {
            "kl_to_reference": float(np.mean(kls)),
            "response_length": float(np.mean(np.concatenate(policy_lengths))),
            "baseline_response_length": float(np.mean(baseline_lengths)),
            "prompts": len(prompts),
        }
        judged, rows = judge(prompts, policy_texts, baseline_texts, gold_score, reward_texts, judges, task_metrics)
        metrics.update(judged)
        for row, kl in zip(rows, kls):
            row["kl"] = float(kl)
        return metrics, rows

    def _decode(self, out):
        decoded = self._tokenizer.detokenize(out["token_ids"], out["mask"]).numpy()
        return [text.decode("utf-8", "replace") for text in decoded]


def judge(prompts, policy_texts, baseline_texts, gold_score=None, reward_texts=None, judges=None, task_metrics=None):
    """Scores, win rates, diversity and sample rows of two sets of responses to the same prompts (no model needed:
    this is also how policies only available as SavedModels are compared). `judges`: {name: (prompts, responses)
    -> [batch]}, further scorers reported as `judge_<name>`. `task_metrics`: a task's own measures (`Task.metrics`),
    reported for both."""
    metrics = {}
    for prefix, texts in (("", policy_texts), ("baseline_", baseline_texts)):
        metrics.update({prefix + name: value for name, value in text_metrics.diversity(texts).items()})
        if task_metrics is not None:
            metrics.update({prefix + name: value for name, value in task_metrics(prompts, texts).items()})
    rows = [{"prompt": p, "policy": a, "baseline": b} for p, a, b in zip(prompts, policy_texts, baseline_texts)]
    our_lengths, their_lengths = [len(text) for text in policy_texts], [len(text) for text in baseline_texts]
    scorers = [("gold", gold_score), ("reward", reward_texts)]
    scorers += [(f"judge_{name}", judge_fn) for name, judge_fn in (judges or {}).items()]
    for name, judge_fn in scorers:
        if judge_fn is None:
            continue
        ours, theirs = np.asarray(judge_fn(prompts, policy_texts)), np.asarray(judge_fn(prompts, baseline_texts))
        score = "reward" if name == "reward" else f"{name}_score"
        metrics[score], metrics[f"baseline_{score}"] = float(np.mean(ours)), float(np.mean(theirs))
        metrics[f"win_rate_vs_baseline_{name}"] = text_metrics.win_rate(ours, theirs)
        metrics[f"length_controlled_win_rate_vs_baseline_{name}"] = text_metrics.length_controlled_win_rate(
            ours, theirs, our_lengths, their_lengths
        )
        for row, a, b in zip(rows, ours, theirs):
            row[f"policy_{name}"], row[f"baseline_{name}"] = float(a), float(b)
    return metrics, rows


def load_judge(spec):
    """(name, `(prompts, responses) -> float [batch]`) from `spec`: `[name=]module:function` (a Python callable of
    two lists of strings; the module importable from the working directory or the Python path) or `[name=]path` of
    a scorer SavedModel (a reward run directory or SavedModel: its `score`). The name defaults to the function's
    or the path's last part."""
    import importlib
    import re
    import sys

    name, target = "", spec
    named = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", spec)
    if named:
        name, target = named.groups()
    if os.path.exists(target):
        from rlhf_tf.reward import loading

        return name or os.path.basename(os.path.normpath(target)), _checked(spec, loading.load_scorer(target))
    if ":" not in target:
        raise UserInputError(
            "A judge is `module:function` or the path of a scorer SavedModel (a reward run directory or SavedModel); "
            f"no such path. Received: judge={spec}"
        )
    module_name, function_name = target.rsplit(":", 1)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserInputError(f"The judge's module does not import ({error}). Received: judge={spec}") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserInputError(f"`{module_name}` has no callable `{function_name}`. Received: judge={spec}")
    return name or function_name, _checked(spec, function)


def _checked(spec, function):
    """`function` with its output checked: one finite score per response."""

    def score(prompts, responses):
        scores = np.asarray(function(list(prompts), list(responses)), np.float64).reshape(-1)
        if scores.shape[0] != len(responses) or not np.all(np.isfinite(scores)):
            raise UserInputError(
                f"A judge must return one finite score per response: {len(responses)} responses gave "
                f"{scores.shape[0]} scores ({int(np.sum(~np.isfinite(scores)))} not finite). Received: judge={spec}"
            )
        return scores

    return score


def generate(policy, prompts, sampling_config, max_prompt_tokens=32, seed=0):
    """One response per prompt from a policy path: a run directory (its policy/), a saved policy or keras-hub preset
    (sampled with `sampling_config`), or a policy SavedModel (sampled with the settings it was exported with)."""
    if os.path.exists(os.path.join(policy, "saved_model.pb")):
        loaded = tf.saved_model.load(policy)
        out = loaded.signatures["serving_default"](prompt=tf.constant(prompts))["response"].numpy()
        return [text.decode("utf-8", "replace") for text in out]

    causal_lm, tokenizer = policy_lib.load_policy(policy, dropout=0.0)
    responses = []
    for start in range(0, len(prompts), 64):
        chunk = prompts[start : start + 64]
        samples = sft.sample_completions(
            causal_lm,
            tokenizer,
            chunk,
            sampling_config.max_new_tokens,
            seed=seed + start,
            max_prompt_tokens=max_prompt_tokens,
            sampling_config=sampling_config,
        )
        responses += [completion for _, completion, _ in samples]
    return responses
