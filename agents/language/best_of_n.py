"""Best-of-n sampling: draw n responses from a policy and keep the one the reward model scores highest.

The inference-time baseline every RL method is compared with: no training at all, n times the sampling cost. Its KL
to the policy it samples from is known in closed form, KL = log n - (n - 1) / n (Stiennon et al. 2020, appendix),
reported as `rl/kl_to_reference`. `export/policy` is a SavedModel doing the same in one graph: it samples n
responses per prompt, scores them with the reward SavedModel (loaded inside it) and returns the best.
"""

import dataclasses
import json
import math
import os

import numpy as np
import tensorflow as tf

from rlhf_tf import configs, export, files, training
from rlhf_tf.agents.language import evaluation, rl
from rlhf_tf.data import pipelines
from rlhf_tf.models import sampling
from rlhf_tf.reward import loading as reward_loading


@dataclasses.dataclass(frozen=True)
class BestOfNConfig:
    """`rlhf-tf best-of-n`.

    Attributes:
      output_dir: where metrics.json, samples.jsonl and export/policy go.
      rollouts: the policy, reward, prompts and sampling (`rl.RolloutConfig`; evaluation prompts only).
      n: responses sampled per prompt.
      seed: sampling seed.
      num_samples: sample rows shown.
      export: write export/policy (best-of-n inside one SavedModel; needs a reward SavedModel, not "gold").
    """

    output_dir: str
    rollouts: rl.RolloutConfig
    n: int = 16
    seed: int = 0
    num_samples: int = 12
    export: bool = True

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require(self.n >= 1, "`n` must be at least 1.", n=self.n)


def kl_bound(n):
    """KL(best-of-n || policy) = log n - (n - 1) / n."""
    return math.log(n) - (n - 1) / n


def select(prompts, candidates, reward_texts, n):
    """The best of each prompt's n candidates (consecutive), by `reward_texts`: (texts, their rewards)."""
    scores = np.asarray(reward_texts([p for p in prompts for _ in range(n)], candidates), np.float32).reshape(-1, n)
    best = scores.argmax(axis=1)
    return [candidates[i * n + b] for i, b in enumerate(best)], scores.max(axis=1)


def sample_best_of_n(causal_lm, tokenizer, prompts, reward_texts, n, max_new_tokens, max_prompt_tokens, seed):
    """Best-of-n responses for `prompts` (strings)."""
    sampler = sampling.Sampler(
        causal_lm, tokenizer.end_id, tokenizer.pad_id, sampling.SamplingConfig(max_new_tokens=max_new_tokens)
    )
    repeated = [prompt for prompt in prompts for _ in range(n)]
    candidates = []
    for index, batch in enumerate(pipelines.prompt_batches(repeated, tokenizer, max_prompt_tokens, 256)):
        out = sampler.generate(batch["token_ids"], batch["padding_mask"], [seed, index])
        texts = tokenizer.detokenize(out["token_ids"], out["mask"]).numpy()
        candidates += [text.decode("utf-8", "replace") for text in texts]
    return select(prompts, candidates, reward_texts, n)[0]


def run_best_of_n(config, reward_fn=None):
    """Evaluates best-of-n against one sample of the same policy; returns the metrics (also in metrics.json)."""
    r = config.rollouts
    os.makedirs(config.output_dir, exist_ok=True)
    run_directory = training.RunDirectory(config.output_dir)
    run_directory.write_config(config)
    _, prompts, task = rl.load_prompts(r)
    reward_texts = rl.load_reward(reward_fn or r.reward, task)
    causal_lm, _, tokenizer = rl.load_policies(r, tf.distribute.get_strategy())
    ours = sample_best_of_n(
        causal_lm, tokenizer, prompts, reward_texts, config.n, r.max_new_tokens, r.max_prompt_tokens, config.seed
    )
    theirs = evaluation.generate(
        r.policy,
        prompts,
        sampling.SamplingConfig(max_new_tokens=r.max_new_tokens),
        r.max_prompt_tokens,
        config.seed + 1,
    )
    judged, rows = evaluation.judge(
        prompts,
        ours,
        theirs,
        task.gold_score if task else None,
        reward_texts,
        task_metrics=task.metrics if task else None,
    )
    metrics = {f"rl/{evaluation.public_name(name)}": value for name, value in judged.items()}
    metrics["rl/kl_to_reference"] = kl_bound(config.n)
    metrics["rl/prompts"] = len(prompts)
    metrics["rl/n"] = config.n
    for name, texts in (("response_length", ours), ("sft_response_length", theirs)):
        metrics[f"rl/{name}"] = float(np.mean(tokenizer.tokenize(texts).row_lengths().numpy()))
    files.atomic_write_text(
        run_directory.samples_path,
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows[: config.num_samples]),
    )
    if config.export and r.reward != "gold" and reward_fn is None:
        export.export_best_of_n(
            causal_lm,
            tokenizer,
            reward_loading.saved_model_path(r.reward),
            run_directory.export_dir("policy"),
            config.n,
            sampling.SamplingConfig(max_new_tokens=r.max_new_tokens),
            r.max_prompt_tokens,
        )
    run_directory.update_metrics(metrics)
    return metrics
