"""Active learning for language reward models: ask people about the pairs the reward ensemble disagrees on most,
and train again as their answers arrive (Christiano et al. 2017, applied to a policy's responses).

A run samples a pool of candidate pairs (two responses per prompt) from a policy once. Round 0 asks about a held-out
evaluation share and a first share of the training budget, both at random. Each later round scores every pair not
yet asked with the ensemble trained on the answers so far and asks about the ones whose members disagree most (the
standard deviation over members of P(first preferred); `selection="random"` draws them at random instead, for
comparison), then trains the ensemble again, from the policy's backbone, on every answer so far.

Every question and answer goes through the SQLite feedback store. With `labeler="simulated"` the Bradley-Terry
labeler over the task's gold scorer answers each round's items at once; with `labeler="web"` people answer them in
the labeling app (`rlhf-tf label-server --store=...`, disagreement as the items' priority) while the run waits,
logging how many are left, and goes on with what was answered when `label_timeout` passes. Either way the run then
reads the answers back from the store, so a person who answers as the simulated labeler would gives the same run.

Writes in `output_dir`: pool.json (the candidate pairs), feedback.sqlite (unless `store` names a shared one),
rounds/round-K/ (each round's train.jsonl, eval.jsonl and reward run directory), and, like `train-reward`,
metrics.json (the last round's reward metrics plus "active/*"), config.json and export/reward (the last round's
model: `--reward=` of the RL commands takes the run directory). A rerun resumes: the pool, the asked items and their
answers come back from disk and the store, and each round's reward run resumes from its checkpoints.
"""

import dataclasses
import logging
import os
import shutil

import numpy as np
import tensorflow as tf

from rlhf_tf import configs, export, files, tasks, training
from rlhf_tf.data import pipelines, reader, records
from rlhf_tf.feedback import collect, labeling_round
from rlhf_tf.feedback.labelers import BradleyTerryLabeler, gold_verdict, label_to_choice
from rlhf_tf.feedback.store import FeedbackStore, Item, record_item_id
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.models import sampling
from rlhf_tf.reward import ensemble, trainer

PAIR_KEYS = ("prompts", "firsts", "seconds")
SELECTIONS = ("disagreement", "random")


@dataclasses.dataclass(frozen=True)
class ActiveConfig:
    """Active-learning reward training.

    Attributes:
      output_dir: the run directory.
      policy: the policy whose responses are compared (an SFT run directory, saved policy or keras-hub preset); the
        reward models start from its backbone.
      task: the bundled task giving prompts (and the gold scorer of the simulated labeler and of evaluation).
      num_labels: the label budget: held-out pairs plus training pairs.
      eval_fraction: the share of the budget asked at random in round 0 and held out for evaluation.
      rounds: rounds of asking and training; the training budget is split evenly over them.
      pool_size: candidate pairs sampled from the policy (0: three times `num_labels`).
      selection: "disagreement" (after round 0, ask about the pairs the ensemble disagrees on most) or "random".
      labeler: "simulated" or "web" (people in the labeling app).
      store: the feedback store ('' keeps the run's own `feedback.sqlite`); pass the label server's to share one.
      label_timeout: with "web", the longest wait for each round's answers (seconds).
      temperature: the simulated labeler's Bradley-Terry temperature (0: always agrees with the gold ordering).
      max_new_tokens: the sampling budget per response.
      gold_check_pairs: pairs sampled from the task's held-out evaluation prompts on which each round's ensemble is
        checked against the gold ordering ("active/round_K_gold_check_accuracy"): a measurement with a thousand
        pairs where the held-out labels are few; never used for training or choosing (0 turns it off).
      reward: the reward training of each round (`RewardConfig`; `output_dir`, `train`, `eval`, `task` and
        `init_from` are set per round). Its `ensemble_size` must be at least 2 for "disagreement". Six passes over
        the answers by default: on 510 answered reviews pairs, 2 passes reached 0.704 gold-check accuracy, 6 passes
        0.759 and 12 passes 0.737 (the plain trainer's 2 suit its larger label sets).
      seed: seeds sampling, the random choices, the labeler and training.
    """

    output_dir: str
    policy: str
    task: str = "reviews"
    num_labels: int = 600
    eval_fraction: float = 0.15
    rounds: int = 3
    pool_size: int = 0
    selection: str = "disagreement"
    labeler: str = "simulated"
    store: str = ""
    label_timeout: float = 3600.0
    temperature: float = 0.5
    max_new_tokens: int = sampling.MAX_NEW_TOKENS
    gold_check_pairs: int = 1000
    reward: trainer.RewardConfig = trainer.RewardConfig(
        output_dir="-", train="-", ensemble_size=3, epochs=6.0, patience=0
    )
    seed: int = 0

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require(bool(self.policy), "`policy` is required.", policy=self.policy)
        configs.require_positive(num_labels=self.num_labels, rounds=self.rounds)
        configs.require_non_negative(
            gold_check_pairs=self.gold_check_pairs,
            pool_size=self.pool_size,
            label_timeout=self.label_timeout,
            temperature=self.temperature,
        )
        configs.require(
            0 < self.eval_fraction < 1, "`eval_fraction` must be in (0, 1).", eval_fraction=self.eval_fraction
        )
        configs.require_choice("selection", self.selection, SELECTIONS)
        configs.require_choice("labeler", self.labeler, collect.LABELERS)
        configs.require(
            self.selection == "random" or self.reward.ensemble_size >= 2,
            "Choosing pairs by disagreement needs a reward ensemble of at least 2 members.",
            ensemble_size=self.reward.ensemble_size,
        )
        num_eval = self.num_eval()
        configs.require(
            self.num_labels - num_eval >= self.rounds,
            "The training budget must give every round at least one pair.",
            num_labels=self.num_labels,
            rounds=self.rounds,
        )
        configs.require(
            self.pool_size == 0 or self.pool_size >= self.num_labels,
            "`pool_size` must be at least `num_labels`.",
            pool_size=self.pool_size,
            num_labels=self.num_labels,
        )

    def num_eval(self):
        return max(1, int(round(self.num_labels * self.eval_fraction)))

    def round_budgets(self):
        """Training pairs asked in each round."""
        train = self.num_labels - self.num_eval()
        return [train // self.rounds + (1 if index < train % self.rounds else 0) for index in range(self.rounds)]


def sample_pool(config):
    """The candidate pairs (prompts, firsts, seconds), sampled once and kept in pool.json; pairs with an empty
    response are left out (counted in the file)."""
    path = training.RunPaths(config.output_dir).pool_path
    saved = files.read_json(path)
    if saved is not None:
        return saved

    task = tasks.get_task(config.task)
    size = config.pool_size or 3 * config.num_labels
    causal_lm, tokenizer = policy_lib.load_policy(config.policy, dropout=0.0)
    prompts = [record.prompt for record in task.training_prompts(size)]
    sampling = collect.CollectConfig(
        output_dir=config.output_dir, policy=config.policy, max_new_tokens=config.max_new_tokens, seed=config.seed
    )
    firsts, seconds = collect.sample_pairs(causal_lm, tokenizer, prompts, sampling)
    *pairs, left_out = collect.drop_unusable_pairs(prompts, firsts, seconds)
    pool = {**dict(zip(PAIR_KEYS, pairs)), **left_out}
    if config.gold_check_pairs:
        check_prompts = [record.prompt for record in task.evaluation_prompts(config.gold_check_pairs)]
        check_firsts, check_seconds = collect.sample_pairs(
            causal_lm, tokenizer, check_prompts, dataclasses.replace(sampling, seed=config.seed + 1)
        )
        *check, _ = collect.drop_unusable_pairs(check_prompts, check_firsts, check_seconds)
        pool["gold_check"] = dict(zip(PAIR_KEYS, check))
    if len(pool["prompts"]) < config.num_labels:
        raise configs.UserInputError(
            f"The policy gave {len(pool['prompts'])} usable pairs, fewer than the label budget. Received: "
            f"num_labels={config.num_labels}, pool_size={size} ({left_out[collect.EMPTY_LEFT_OUT]} pairs had an "
            f"empty response, {left_out[collect.IDENTICAL_LEFT_OUT]} two identical ones)"
        )
    files.atomic_write_json(path, pool)
    return pool


def score_pairs(model, tokenizer, prompts, firsts, seconds, pipeline):
    """The ensemble's mean scores [n, 2] and its disagreement [n] about each pair (order kept)."""

    pairs = [records.Comparison(*pair) for pair in zip(prompts, firsts, seconds)]
    scoring = dataclasses.replace(pipeline, repeat=False, shuffle_buffer=0, drop_remainder=False)
    dataset_fn = pipelines.preference_dataset_fn(pipelines.TextSource(pairs, "comparison"), scoring, tokenizer)

    @tf.function
    def score(batch):
        members = model.member_scores({"token_ids": batch["token_ids"], "padding_mask": batch["padding_mask"]})
        return tf.reduce_mean(members, axis=0), ensemble.disagreement(members[:, :, 0], members[:, :, 1])

    means, spreads = zip(*[(m.numpy(), d.numpy()) for m, d in (score(batch) for batch in dataset_fn(None))])
    means, spreads = np.concatenate(means), np.concatenate(spreads)
    if len(spreads) != len(pairs):
        raise RuntimeError(f"Scored {len(spreads)} pairs, expected {len(pairs)}.")
    return means, spreads


def gold_check_accuracy(model, tokenizer, check, gold_score, pipeline):
    """How often the ensemble orders the gold-check pairs as the task's gold scorer does (gold ties left out)."""
    means, _ = score_pairs(model, tokenizer, check["prompts"], check["firsts"], check["seconds"], pipeline)
    gold_first = np.asarray(gold_score(check["prompts"], check["firsts"]))
    gold_second = np.asarray(gold_score(check["prompts"], check["seconds"]))
    decided = gold_first != gold_second
    agree = (means[:, 0] > means[:, 1]) == (gold_first > gold_second)
    return float(np.mean(agree[decided])) if decided.any() else float("nan")


class _Asker:
    """Asks about pool pairs through one `LabelingRound` of the run: which were asked, asking, answering, export."""

    def __init__(self, config, pool, store):
        self.config = config
        self.pool = pool
        self.questions = labeling_round.LabelingRound(
            store, os.path.abspath(config.output_dir), "comparison", config.labeler, config.label_timeout
        )
        self.task = tasks.get_task(config.task)
        self.labeler_name = collect.labeler_name(config)

    def asked(self):
        """{pool index: item} of every item this run has put into the store."""
        return {item.metadata["pool_index"]: item for item in self.questions.items()}

    def ask(self, round_index, split, indices, priorities):
        prompts, firsts, seconds = ([self.pool[key][i] for i in indices] for key in PAIR_KEYS)
        golds = self.task.gold_score(prompts, firsts), self.task.gold_score(prompts, seconds)
        self.questions.ask(
            [
                Item(
                    "comparison",
                    (first, second),
                    prompt=prompt,
                    source=self.questions.source,
                    # The gold verdict is for the labeling app's agreement-with-gold only, never for training.
                    metadata={
                        "pool_index": int(index),
                        "round": round_index,
                        "split": split,
                        "disagreement": float(priority),
                        "gold_preferred": gold_verdict(gold_first, gold_second),
                    },
                    priority=float(priority),
                )
                for index, prompt, first, second, gold_first, gold_second, priority in zip(
                    indices, prompts, firsts, seconds, *golds, priorities
                )
            ]
        )

    def answer(self, round_index):
        """Gets every item of the run answered (the simulated labeler now, or people within the timeout); returns
        how many are still unanswered."""
        if self.questions.people_answer:
            return self.questions.wait_for_people(describe=f"Round {round_index}: ")
        items = self.questions.open_items()
        # Seeded per round, so that a resumed run's answers are the uninterrupted run's.
        labeler = BradleyTerryLabeler(
            self.task.gold_score, temperature=self.config.temperature, seed=[self.config.seed, round_index]
        )
        labels = labeler.compare(
            [item.prompt for item in items],
            [item.candidates[0] for item in items],
            [item.candidates[1] for item in items],
        )
        self.questions.answer(self.labeler_name, [item.id for item in items], [label_to_choice(x) for x in labels])
        return 0

    def export(self, directory):
        """Writes the answered pairs so far as train.jsonl and eval.jsonl in `directory`; returns their counts."""
        splits = {item.id: item.metadata["split"] for item in self.questions.items()}
        exported = {"train": [], "eval": []}
        for record in self.questions.records(splits):  # the store's labels are read once per round
            exported[splits[record_item_id(record)]].append(record)
        paths = training.RunPaths(directory)
        reader.write_jsonl(paths.train_records_path, exported["train"])
        reader.write_jsonl(paths.eval_records_path, exported["eval"])
        return {split: len(split_records) for split, split_records in exported.items()}


def train_active(config):
    """Runs every round; returns the final metrics (also in `output_dir/metrics.json`)."""
    run_directory = training.RunDirectory(config.output_dir)
    run_directory.write_config(config)
    writer = run_directory.summary_writer()
    pool = sample_pool(config)
    store = FeedbackStore(config.store or run_directory.feedback_store_path)
    asker = _Asker(config, pool, store)
    order = np.random.default_rng(config.seed).permutation(len(pool["prompts"]))
    budgets = config.round_budgets()
    model = tokenizer = None
    history = {}
    for round_index, budget in enumerate(budgets):
        _ask_round(config, asker, pool, order, round_index, budget, model, tokenizer, history)
        unanswered = asker.answer(round_index)
        round_dir = run_directory.round_dir(round_index)
        os.makedirs(round_dir, exist_ok=True)
        counts = asker.export(round_dir)
        if counts["train"] == 0 or counts["eval"] == 0:
            raise configs.UserInputError(
                f"Round {round_index} has no answered {'training' if counts['train'] == 0 else 'held-out'} pairs to "
                f"train on (answers are read from {store.path}; {unanswered} items still wait). Received: "
                f"label_timeout={config.label_timeout}"
            )
        logging.info(
            "Round %d: training the reward ensemble on %d answered pairs (%d held out, %d unanswered).",
            round_index,
            counts["train"],
            counts["eval"],
            unanswered,
        )
        final, model, tokenizer = _train_round(config, round_dir, pool, asker.task)
        history[f"active/round_{round_index}_train_pairs"] = counts["train"]
        history[f"active/round_{round_index}_unanswered"] = unanswered
        _summarize_round(writer, round_index, counts, final, history)
    store.close()
    last = training.RunPaths(run_directory.round_dir(len(budgets) - 1)).child("reward")
    if config.reward.export:
        export.write_directory(
            run_directory.export_dir("reward"),
            lambda temporary: shutil.copytree(training.RunPaths(last).export_dir("reward"), temporary),
        )
    final = {name: value for name, value in final.items() if isinstance(value, (int, float))}
    final.update(history)
    final["active/labels_used"] = counts["train"] + counts["eval"]
    final["active/rounds"] = len(budgets)
    run_directory.update_metrics(final)
    return final


def _ask_round(config, asker, pool, order, round_index, budget, model, tokenizer, history):
    """Asks round `round_index`'s questions unless a resumed run asked them already: round 0 the held-out share and
    a first training share at random, later rounds the pairs the ensemble disagrees on most (or random ones)."""
    asked = asker.asked()
    if any(item.metadata["round"] == round_index for item in asked.values()):
        return
    if round_index == 0:
        num_eval = config.num_eval()
        asker.ask(0, "eval", order[:num_eval], np.zeros(num_eval))
        asker.ask(0, "train", order[num_eval : num_eval + budget], np.zeros(budget))
        return
    candidates = [int(i) for i in order if int(i) not in asked]
    if config.selection == "random":
        chosen, priorities = candidates[:budget], np.zeros(budget)
    else:
        _, scores = score_pairs(
            model,
            tokenizer,
            *([pool[key][i] for i in candidates] for key in PAIR_KEYS),
            config.reward.pipeline,
        )
        top = np.argsort(-scores, kind="stable")[:budget]
        chosen, priorities = [candidates[i] for i in top], scores[top]
        history[f"active/round_{round_index}_pool_disagreement"] = float(np.mean(scores))
        history[f"active/round_{round_index}_asked_disagreement"] = float(np.mean(priorities))
    asker.ask(round_index, "train", chosen, priorities)


def _train_round(config, round_dir, pool, task):
    """(final metrics, model, tokenizer) of the round's reward ensemble, trained from the policy's backbone on every
    answer so far, with its gold-check accuracy."""
    paths = training.RunPaths(round_dir)
    reward_config = dataclasses.replace(
        config.reward,
        output_dir=paths.child("reward"),
        train=paths.train_records_path,
        eval=paths.eval_records_path,
        task=config.task,
        init_from=config.policy,
        loop=dataclasses.replace(config.reward.loop, seed=config.seed),
        pipeline=dataclasses.replace(config.reward.pipeline, seed=config.seed),
    )
    final, model, tokenizer = trainer.fit_reward(reward_config)
    if "gold_check" in pool:
        final["reward/gold_check_accuracy"] = gold_check_accuracy(
            model, tokenizer, pool["gold_check"], task.gold_score, config.reward.pipeline
        )
    return final, model, tokenizer


def _summarize_round(writer, round_index, counts, final, history):
    """The round's figures into `history` (active/round_K_...) and TensorBoard."""
    with writer.as_default(step=round_index):
        tf.summary.scalar("active/train_pairs", counts["train"])
        for name in (
            "reward/eval_accuracy",
            "reward/eval_accuracy_vs_gold",
            "reward/eval_disagreement",
            "reward/gold_check_accuracy",
        ):
            if name in final:
                history[f"active/round_{round_index}_{name.split('/')[1]}"] = final[name]
                tf.summary.scalar(name, final[name])
    writer.flush()
