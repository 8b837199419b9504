"""Collecting comparisons: sample two responses per prompt from a policy, ask a labeler, keep it all in the store.

Pairs in which a response is empty (an empty text is not a valid record) or both responses are the same text (a
comparison that carries no preference: the label would be a coin flip) are left out and counted. The simulated
path used by experiments and the quickstart: the labeler is a `BradleyTerryLabeler` over the task's
gold scorer. Items and labels go through the SQLite feedback store (the same store people label through), then
the labelled comparisons are exported as train and eval JSONL, with `labeler.json` beside them: the labeler's
temperature, its agreement with the noiseless gold ordering and its ceiling on the eval pairs (what a perfect
reward model would score against these labels).
"""

import dataclasses
import os

import numpy as np

from rlhf_tf import configs, files, tasks
from rlhf_tf.data import pipelines, reader
from rlhf_tf.feedback import labeling_round
from rlhf_tf.feedback.labelers import BradleyTerryLabeler, gold_verdict, label_to_choice
from rlhf_tf.feedback.store import FeedbackStore, Item
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.models import sampling
from rlhf_tf.training.progress import Progress
from rlhf_tf.training.run_directory import RunPaths

LABELERS = labeling_round.LABELERS


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """Sampling and labelling comparisons.

    Attributes:
      output_dir: where feedback.sqlite, train.jsonl, eval.jsonl and labeler.json go.
      policy: the policy to sample from (an SFT run directory, saved policy or keras-hub preset).
      task: the bundled task giving prompts and the gold scorer.
      num_pairs: comparisons to collect (train + eval).
      eval_fraction: the share kept for evaluation.
      temperature: the simulated labeler's Bradley-Terry temperature (0: always agrees with gold).
      max_new_tokens: the sampling budget per response.
      max_prompt_tokens: prompts keep their last this many tokens.
      batch_size: prompts sampled per call.
      seed: seeds sampling and the labeler.
      labeler: "simulated" (the Bradley-Terry labeler over the gold scorer answers at once) or "web" (people answer
        in the labeling app, `rlhf-tf label-server --store=...`): the same items go into the store either way.
      store: the feedback store (default: `output_dir/feedback.sqlite`); pass the label server's to share one.
      label_timeout: with "web", the longest wait for answers (seconds); what is answered by then is exported.
    """

    output_dir: str
    policy: str
    task: str = "reviews"
    num_pairs: int = 3000
    eval_fraction: float = 0.15
    temperature: float = 0.5
    max_new_tokens: int = sampling.MAX_NEW_TOKENS
    max_prompt_tokens: int = sampling.MAX_PROMPT_TOKENS
    batch_size: int = 256
    seed: int = 0
    labeler: str = "simulated"
    store: str = ""
    label_timeout: float = 3600.0

    def __post_init__(self):
        configs.require_positive(num_pairs=self.num_pairs, batch_size=self.batch_size)
        configs.require(
            0 < self.eval_fraction < 1, "`eval_fraction` must be in (0, 1).", eval_fraction=self.eval_fraction
        )
        configs.require_non_negative(temperature=self.temperature, label_timeout=self.label_timeout)
        configs.require(self.labeler in LABELERS, f"`labeler` must be one of {list(LABELERS)}.", labeler=self.labeler)


def sample_pairs(causal_lm, tokenizer, prompts, config, progress=True):
    """Two independent samples per prompt: (firsts, seconds) lists of strings."""

    sampler = sampling.Sampler(
        causal_lm,
        tokenizer.end_id,
        tokenizer.pad_id,
        sampling.SamplingConfig(max_new_tokens=config.max_new_tokens),
    )
    firsts, seconds = [], []
    bar = Progress(len(prompts), description="sample pairs", unit="pair", enabled=progress)
    for index, batch in enumerate(
        pipelines.prompt_batches(prompts, tokenizer, config.max_prompt_tokens, config.batch_size)
    ):
        bar.advance(int(batch["token_ids"].shape[0]))
        for output, seed in ((firsts, [config.seed, 2 * index]), (seconds, [config.seed, 2 * index + 1])):
            out = sampler.generate(batch["token_ids"], batch["padding_mask"], seed)
            output += [
                t.decode("utf-8", "replace") for t in tokenizer.detokenize(out["token_ids"], out["mask"]).numpy()
            ]
    bar.close()
    return firsts, seconds


def collect(config, progress=True):
    """Samples, stores, labels and exports; returns a summary dict (also written to labeler.json).

    labeler.json is written last: when it exists the collection is complete and a rerun returns it as it is. A rerun
    after an interruption starts over with a fresh store (sampling and labelling are seeded: the same pairs and
    labels come out).
    """
    paths = RunPaths(config.output_dir)
    finished = files.read_json(paths.labeler_report_path)
    if finished is not None:
        return finished
    store_path = config.store or paths.feedback_store_path
    if config.labeler == labeling_round.SIMULATED:
        for leftover in (store_path, store_path + "-wal", store_path + "-shm"):
            if os.path.exists(leftover):
                os.remove(leftover)
    task = tasks.get_task(config.task)
    store = FeedbackStore(store_path)
    questions = labeling_round.LabelingRound(
        store, os.path.abspath(config.output_dir), "comparison", config.labeler, config.label_timeout
    )
    ids, pairs, left_out = _ask_pairs(questions, task, config, progress)
    report = {
        "labeler": "web" if questions.people_answer else "simulated-bradley-terry",
        "temperature": None if questions.people_answer else config.temperature,
        "task": config.task,
        "policy": os.path.abspath(os.fspath(config.policy)) if os.path.exists(os.fspath(config.policy)) else "",
        **left_out,
    }
    if questions.people_answer:
        report["unanswered_at_timeout"] = questions.wait_for_people()
    exports = _answer_and_export(questions, ids, pairs, task, config, report)
    report["ceiling"] = report["eval_ceiling"]
    report["agreement_with_gold"] = report["eval_agreement_with_gold"]
    report["mean_response_words"] = float(np.mean([len(text.split()) for text in pairs[1] + pairs[2]]))
    reader.write_jsonl(paths.train_records_path, exports["train"])
    reader.write_jsonl(paths.eval_records_path, exports["eval"])
    files.atomic_write_json(paths.labeler_report_path, report)
    store.close()
    return report


def _ask_pairs(questions, task, config, progress):
    """(item ids, (prompts, firsts, seconds), {reason: pairs left out}): the pairs put into the store. People's
    answers are never thrown away: a rerun of a web collection finds its items in the store."""
    items = questions.items() if questions.people_answer else []
    if items:
        pairs = ([item.prompt for item in items], *([item.candidates[k] for item in items] for k in (0, 1)))
        return [item.id for item in items], pairs, {}
    causal_lm, tokenizer = policy_lib.load_policy(config.policy, dropout=0.0)
    prompts = [record.prompt for record in task.training_prompts(config.num_pairs)]
    firsts, seconds = sample_pairs(causal_lm, tokenizer, prompts, config, progress)
    prompts, firsts, seconds, left_out = drop_unusable_pairs(prompts, firsts, seconds)
    golds = task.gold_score(prompts, firsts), task.gold_score(prompts, seconds)
    ids = questions.ask(
        [
            Item(
                "comparison",
                (a, b),
                prompt=p,
                source=questions.source,
                # The gold scorer's verdict, for the labeling app's agreement-with-gold (never for training).
                metadata={"policy": os.fspath(config.policy), "gold_preferred": gold_verdict(g_a, g_b)},
            )
            for p, a, b, g_a, g_b in zip(prompts, firsts, seconds, *golds)
        ]
    )
    return ids, (prompts, firsts, seconds), left_out


def _answer_and_export(questions, ids, pairs, task, config, report):
    """{"eval": records, "train": records}: the held-out share first, then the rest, each answered by the simulated
    labeler (unless people answer) and read back from the store; adds each split's counts and agreement to
    `report`."""
    count_eval = max(1, int(round(len(ids) * config.eval_fraction)))
    labeler = BradleyTerryLabeler(task.gold_score, temperature=config.temperature, seed=config.seed)
    exports = {}
    for split, selection in (("eval", slice(0, count_eval)), ("train", slice(count_eval, None))):
        labeler.tracker = type(labeler.tracker)()
        split_ids = ids[selection]
        if not questions.people_answer:
            labels = labeler.compare(*(column[selection] for column in pairs))
            questions.answer(labeler_name(config), split_ids, [label_to_choice(label) for label in labels])
        exports[split] = questions.records(split_ids)
        report[f"{split}_pairs"] = len(exports[split])
        if questions.people_answer:
            agreement, ceiling = _agreement_with_gold(questions.store, set(split_ids)), None
        else:
            agreement, ceiling = labeler.agreement, labeler.ceiling
        report[f"{split}_agreement_with_gold"] = agreement
        report[f"{split}_ceiling"] = ceiling
    return exports


EMPTY_LEFT_OUT = "pairs_with_an_empty_response_left_out"
IDENTICAL_LEFT_OUT = "pairs_with_identical_responses_left_out"


def drop_unusable_pairs(prompts, firsts, seconds):
    """(prompts, firsts, seconds, {EMPTY_LEFT_OUT: count, IDENTICAL_LEFT_OUT: count}): an empty response is not a
    valid record (README, "Bad input") and two identical responses carry no preference, so such pairs are left out
    and counted."""
    empty = [not (a.strip() and b.strip()) for a, b in zip(firsts, seconds)]
    identical = [not e and a.strip() == b.strip() for e, a, b in zip(empty, firsts, seconds)]
    keep = [not (e or i) for e, i in zip(empty, identical)]
    kept = ([x for x, k in zip(column, keep) if k] for column in (prompts, firsts, seconds))
    return (*kept, {EMPTY_LEFT_OUT: empty.count(True), IDENTICAL_LEFT_OUT: identical.count(True)})


def _agreement_with_gold(store, split_ids):
    """People's agreement with the gold scorer's ordering on their strict answers to these items."""
    agree = total = 0
    for item, label in store.labeled("comparison"):
        gold = item.metadata.get("gold_preferred")
        if item.id in split_ids and "preferred" in label.choice and gold in (0, 1):
            total += 1
            agree += int(gold == label.choice["preferred"])
    return agree / total if total else None


def labeler_name(config):
    return f"simulated-bt-t{config.temperature:g}"
