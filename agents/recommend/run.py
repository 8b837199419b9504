"""Recommendation from human feedback (`rlhf-tf recommend`): a TF-Agents bandit trained online against a reward
learned from people's clicks, ratings or choices between lists, with the learned reward refitted as new feedback
arrives, judged on the population's hidden satisfaction.

One run, in rounds (`rounds`, the label budget `num_labels` split evenly):
1. lists are shown and people answer: in round 0 the behaviour policy's lists (popularity with exploration); later,
   the current agent's slate against the behaviour's, the pairs the reward ensemble disagrees on most (slates), or
   the agent's slates with exploration (clicks, ratings);
2. the reward model (`rlhf_tf.reward.item_reward`) is fitted to every label so far, until its held-out loss stops
   improving, and normalised over the logged candidates;
3. the agent trains online for its share of steps through a TF-Agents driver in `RecommendEnvironment`, paid by the
   learned reward.
Then the agent's slate policy (top `slate_size` of its predicted rewards), the same agent trained with the same steps
on the hidden satisfaction (the oracle agent), popularity and random lists are evaluated on `eval_visits` held-out
visits: true satisfaction of the list (position-discounted, as people weigh it), click-through, coverage of the
catalogue, genre diversity within a list, and regret against the best list for the (hidden) user;
`learned/share_of_oracle_gain` = (learned - random) / (oracle - random) on true satisfaction (satisfaction is not
positive, so a plain ratio would mean nothing). The greedy policy is exported with TF-Agents' PolicySaver to
`export/policy`.

Off-policy evaluation, before deployment (`off_policy_logs` > 0): the behaviour policy's logs of fresh visits (its
top item, the propensity mu(a | x) it gave it, whether the person clicked it and the 1-5 rating they gave it;
`off_policy/logs.jsonl`, or a user's `off_policy_file`) give IPS, SNIPS and doubly robust estimates, with 95%
intervals, of the click-through and the mean rating of each policy's top item (the learned agent's, the oracle
agent's or uniform random when there is no oracle, and popularity's), set beside its online value: the expected
click and rating of its top item over as many other fresh visits. The doubly robust estimate's q(x, a) is fitted to
the logs (`item_reward`: a naive click model, a rating regression), cross-fitted on two halves. The table is
`off_policy/table.md`; the figures are `off_policy/<signal>/<policy>/<estimator>` (with `_low`, `_high`,
`_covers_online`) in the metrics.

Every round's reward model and the agent are checkpointed (`ckpt/`); the labels are kept in `labels/round-N.jsonl`
(`logged`: the format of `feedback_file`, which replaces round 0's simulated labels with people's); a rerun resumes
after the last finished round. Bad lines of a user's file stop the run naming file, line and field, or with
`skip_bad_records` are copied with their reasons to `rejected_records.jsonl` and counted (`rejected/<kind>`).
"""

import dataclasses
import json
import logging
import os
import time

import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_py_environment
from tf_agents.policies import epsilon_greedy_policy, policy_saver

from rlhf_tf import configs, files, plots, training
from rlhf_tf import export as export_lib
from rlhf_tf.agents.recommend import bandits, feedback, logged, off_policy
from rlhf_tf.data import reader
from rlhf_tf.envs import recommend
from rlhf_tf.feedback import labelers as labelers_lib
from rlhf_tf.feedback import labeling_round
from rlhf_tf.feedback import store as store_lib
from rlhf_tf.reward import item_reward

FEEDBACK = item_reward.KINDS
ESTIMATORS = ("ips", "snips", "dr")


@dataclasses.dataclass(frozen=True)
class RecommendConfig:
    """Attributes:
    output_dir: the run directory.
    feedback: "slates", "ratings" or "clicks".
    click_model: "examination" (models position bias and popularity's pull) or "naive" (clicks only).
    agent: one of `bandits.AGENTS`.
    num_labels: the label budget (slate choices, ratings, or lists of clicks), over all rounds.
    rounds: rounds of labels, reward refits and agent training.
    num_candidates, slate_size: candidates per visit, items per list.
    world_seed: the catalogue and population (the task); seed: labels, training and evaluation draws.
    eval_visits: held-out visits every policy is judged on.
    behaviour_temperature, behaviour_epsilon: the logging policy (`feedback.behaviour_probabilities`).
    oracle: also train the same agent on the hidden satisfaction (the reference the learned reward is judged by).
    off_policy_logs: behaviour-policy logs for off-policy evaluation (module docstring); 0 for none.
    feedback_file: a JSONL file of people's answers of the `feedback` kind (`logged`), round 0's labels instead of
      simulated ones (later rounds ask the simulated people).
    off_policy_file: a JSONL file of a logging policy's logs (`logged`, with propensities) to estimate from instead
      of simulated logs.
    skip_bad_records: skip bad lines of those files (copied with their reasons to rejected_records.jsonl) instead of
      stopping at the first.
    labeler: "simulated" (the population answers at once) or "web": people compare the two lists of each slate
      question in the labeling app (`rlhf-tf label-server --store=...`) while the run waits (slates feedback).
    store: the feedback store shared with the labeling app (default `<output_dir>/feedback.sqlite`).
    label_timeout: with "web", the longest wait for a round's answers (seconds); training goes on with what came.
    bandit: the agent's `bandits.BanditHyperparameters` (its steps are spread over the rounds).
    reward: the reward model's `item_reward.ItemRewardConfig` (its kind, click model and seed are set from here).
    """

    output_dir: str = "runs/recommend"
    feedback: str = "slates"
    click_model: str = "examination"
    agent: str = "neural-epsilon-greedy"
    num_labels: int = 2000
    rounds: int = 4
    num_candidates: int = 20
    slate_size: int = 5
    world_seed: int = 0
    seed: int = 0
    eval_visits: int = 2000
    behaviour_temperature: float = 0.3
    behaviour_epsilon: float = 0.2
    oracle: bool = True
    off_policy_logs: int = 10000
    feedback_file: str = ""
    off_policy_file: str = ""
    skip_bad_records: bool = False
    labeler: str = "simulated"
    store: str = ""
    label_timeout: float = 3600.0
    bandit: bandits.BanditHyperparameters = bandits.BanditHyperparameters()
    reward: item_reward.ItemRewardConfig = item_reward.ItemRewardConfig()

    def __post_init__(self):
        configs.require(self.feedback in FEEDBACK, f"Feedback kinds are {list(FEEDBACK)}.", feedback=self.feedback)
        configs.require(self.agent in bandits.AGENTS, f"Agents are {list(bandits.AGENTS)}.", agent=self.agent)
        configs.require(self.rounds >= 1, "`rounds` must be >= 1.", rounds=self.rounds)
        configs.require(
            self.num_labels >= 10 * self.rounds, "Give at least 10 labels a round.", num_labels=self.num_labels
        )
        configs.require(
            2 <= self.slate_size <= self.num_candidates,
            "Need 2 <= slate_size <= num_candidates.",
            slate_size=self.slate_size,
            num_candidates=self.num_candidates,
        )
        configs.require(self.eval_visits >= 1, "`eval_visits` must be >= 1.", eval_visits=self.eval_visits)
        configs.require(
            self.labeler in labeling_round.LABELERS,
            f"Labelers are {list(labeling_round.LABELERS)}.",
            labeler=self.labeler,
        )
        configs.require(
            self.labeler == "simulated" or self.feedback == "slates",
            "People answer slate comparisons in the labeling app; bring clicks and ratings with `feedback_file`.",
            labeler=self.labeler,
            feedback=self.feedback,
        )
        configs.require(
            self.off_policy_logs == 0 or self.off_policy_logs >= 100,
            "`off_policy_logs` must be 0 (none) or >= 100.",
            off_policy_logs=self.off_policy_logs,
        )


def train_recommender(config):
    """Runs a recommendation run (module docstring); returns its metrics (also in metrics.json)."""
    return RecommendRun(config).run()


class RecommendRun:
    def __init__(self, config):
        self.config = config
        self.paths = training.RunDirectory(config.output_dir)
        self.paths.write_config(config)  # config.json: every setting and the seed
        self.world = recommend.make_world(config.world_seed, slate_size=config.slate_size)
        self.reward_config = dataclasses.replace(
            config.reward, kind=config.feedback, click_model=config.click_model, seed=config.seed
        )
        self.label_dir = os.path.join(config.output_dir, "labels")
        os.makedirs(self.label_dir, exist_ok=True)
        self.state_path = os.path.join(config.output_dir, "state.json")
        self.started = time.perf_counter()
        self.rejected = {}

    # Pieces ---------------------------------------------------------------------------------------------------------

    def _environment(self, reward_fn, seed):
        return recommend.RecommendEnvironment(
            self.world, reward_fn, self.config.bandit.batch_size, self.config.num_candidates, seed=seed
        )

    def _agent(self, environment):
        specs = tf_py_environment.TFPyEnvironment(environment)
        return bandits.make_agent(self.config.agent, specs.time_step_spec(), specs.action_spec(), self.config.bandit)

    def _feedback_model(self):
        return item_reward.FeedbackModel(
            self.reward_config,
            num_arm_features=len(recommend.ARM_FEATURE_NAMES),
            slate_size=self.config.slate_size,
            popularity_index=recommend.ARM_FEATURE_NAMES.index("popularity"),
        )

    def _learned_reward(self, model):
        def reward_fn(visits, actions):
            scores = model(visits.observations(self.world)).numpy()
            return scores[np.arange(len(visits)), actions]

        return reward_fn

    def _draw(self, count, stream):
        """Visits from an independent random stream per purpose and round (resume draws the same)."""
        rng = np.random.default_rng([self.config.seed, stream])
        return recommend.draw_visits(self.world, count, rng, self.config.num_candidates), rng

    def _labels(self, round_number, model, agent):
        """The round's examples: lists shown and people's answers (module docstring)."""
        config, k = self.config, self.config.slate_size
        per_round = config.num_labels // config.rounds + (round_number < config.num_labels % config.rounds)
        pool = per_round * (4 if config.feedback == "slates" and round_number else 1)
        if config.feedback == "ratings":
            pool = per_round * 4  # not every list gets a click to rate
        visits, rng = self._draw(pool, 100 + round_number)
        behaviour = feedback.behaviour_probabilities(
            self.world, visits, config.behaviour_temperature, config.behaviour_epsilon
        )
        if round_number == 0 or agent is None:
            shown = feedback.sample_lists(behaviour, k, rng)
        else:
            shown = self._exploring_slates(agent, visits, rng)
        if config.feedback == "clicks":
            return feedback.clicks(self.world, visits, shown, rng)
        if config.feedback == "ratings":
            return feedback.ratings(self.world, visits, shown, rng, per_round)
        # The other list is drawn uniformly: behaviour lists are mostly the same popular items, and pairs of them
        # teach little about the rest of the catalogue (measured: the learned reward's own ranking, seeds 100-101).
        # (A second draw of the agent's exploring list instead, for finer distinctions among the lists it would
        # show, was worse: 0.925 / 0.717 / 0.838 of the oracle's gain against 0.918 / 0.945 / 0.975, seeds 100-102.)
        other = feedback.sample_lists(np.full_like(behaviour, 1.0 / behaviour.shape[1]), k, rng)
        if round_number and model is not None:
            observations = visits.observations(self.world)
            spread = model.disagreement(
                observations["global"],
                np.take_along_axis(observations["per_arm"], shown[:, :, None], axis=1),
                np.take_along_axis(observations["per_arm"], other[:, :, None], axis=1),
            ).numpy()
            keep = np.sort(np.argsort(-spread, kind="stable")[:per_round])
            visits, shown, other = visits.subset(keep), shown[keep], other[keep]
        if config.labeler == "web":
            return self._people_choose(round_number, visits, shown, other)
        return feedback.slate_choices(self.world, visits, shown, other, rng)

    def _people_choose(self, round_number, visits, shown, other):
        """Slate-comparison items for people in the labeling app (the two lists of each question side by side, for
        the described visitor); waits for their answers and returns them as records (ties and skips left out)."""
        config, world = self.config, self.world
        first = np.take_along_axis(visits.candidates, shown, axis=1)
        second = np.take_along_axis(visits.candidates, other, axis=1)
        store = store_lib.FeedbackStore(config.store or self.paths.feedback_store_path)
        try:
            questions = labeling_round.LabelingRound(
                store, os.path.abspath(config.output_dir), "slate_comparison", "web", config.label_timeout
            )
            if not any(item.metadata.get("round") == round_number for item in questions.items()):  # not on resume
                questions.ask(
                    [
                        store_lib.Item(
                            kind="slate_comparison",
                            candidates=tuple(
                                "\n".join(recommend.describe_item(world, item) for item in items) for items in (a, b)
                            ),
                            prompt=recommend.describe_visit(visit) + " Which list would they rather get?",
                            source=questions.source,
                            metadata={
                                "round": round_number,
                                "record": logged.to_json({"visit": visit, "first": a, "second": b}),
                                # The hidden satisfaction's verdict: the app's agreement with gold (never trained on).
                                "gold_preferred": labelers_lib.gold_verdict(
                                    recommend.slate_value(world, visit, a), recommend.slate_value(world, visit, b)
                                ),
                            },
                        )
                        for visit, a, b in zip(visits.visits, first, second)
                    ]
                )
            questions.wait_for_people(describe=f"recommend round {round_number}: ")
            _, answers = questions.answers()
        finally:
            store.close()
        parse = logged.parser("slates", world, config.slate_size, config.num_candidates)
        return [
            parse({**item.metadata["record"], "preferred": ("first", "second")[int(target)]})
            for item, _, target in answers
            if item.metadata["round"] == round_number and target in (0.0, 1.0)
        ]

    def _exploring_slates(self, agent, visits, rng):
        """The agent's slates with exploration: candidates drawn by a softmax of its predicted rewards."""
        scores = bandits.predicted_rewards(agent, visits.observations(self.world))
        scores = (scores - scores.mean(axis=1, keepdims=True)) / (scores.std(axis=1, keepdims=True) + 1e-6)
        probabilities = np.exp(2.0 * scores)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return feedback.sample_lists(probabilities, self.config.slate_size, rng)

    # The run ---------------------------------------------------------------------------------------------------------

    def run(self):
        config = self.config
        training.seed_everything(config.seed)
        state = (
            files.read_json(self.state_path) if os.path.exists(self.state_path) else {"rounds_done": 0, "rounds": []}
        )
        model = self._feedback_model()
        environment = self._environment(self._learned_reward(model), seed=config.seed)
        agent = self._agent(environment)
        trainer = bandits.BanditTrainer(agent, environment, config.bandit)
        checkpoint = tf.train.Checkpoint(model=model, **trainer.checkpoint_objects())
        manager = tf.train.CheckpointManager(checkpoint, self.paths.checkpoint_dir, max_to_keep=1)
        parts = []
        evaluation = self._evaluation_visits()
        for round_number in range(config.rounds):
            path = os.path.join(self.label_dir, f"round-{round_number}.jsonl")
            if round_number < state["rounds_done"]:
                parts.append(self._read_labels(path))
                continue
            if round_number == state["rounds_done"] and manager.latest_checkpoint and round_number:
                checkpoint.restore(manager.latest_checkpoint)
            if round_number == 0 and config.feedback_file:
                records = self._read_file(config.feedback_file, config.feedback)
            else:
                records = self._labels(round_number, model if round_number else None, agent if round_number else None)
            logged.write(path, records)
            parts.append(logged.examples(self.world, config.feedback, records))
            model = self._refit(model, feedback.concatenate(parts), round_number)
            trainer.train(trainer.total_loops * (round_number + 1) // config.rounds - int(trainer.loops_done.numpy()))
            round_metrics = {
                "round": round_number,
                "labels": int(sum(len(part["global"]) for part in parts)),
                **{f"reward/{name}": value for name, value in self.last_fit.items() if name != "curve"},
                **self._judge(agent, evaluation, prefix="learned/"),
                # The learned reward's own ranking (what a perfectly trained agent on it would show).
                "reward_greedy/satisfaction": self._list_metrics(
                    bandits.top_k(model(evaluation.observations(self.world)).numpy(), config.slate_size), evaluation
                )["satisfaction"],
                "seconds": time.perf_counter() - self.started,
            }
            logging.info("recommend round %d: %s", round_number, round_metrics)
            manager.save()
            state = {
                "rounds_done": round_number + 1,
                "rounds": state["rounds"] + [round_metrics],
                "rejected": {**state.get("rejected", {}), **self.rejected},
            }
            files.atomic_write_json(self.state_path, state)
        return self._finish(agent, model, evaluation, state)

    def _read_file(self, path, kind):
        """A person's file of `kind` records (`logged`), bad lines raising or, with `skip_bad_records`, copied to
        rejected_records.jsonl beside those of the run's other files (counted in `self.rejected`)."""
        config = self.config
        target = self.paths.rejected_records_path
        rejected = reader.RejectedRecords(f"{target}.{kind}") if config.skip_bad_records else None
        try:
            records, report = logged.read(path, kind, self.world, config.slate_size, config.num_candidates, rejected)
        finally:
            if rejected is not None:
                rejected.close()
        if rejected is not None:
            # Other files' rejected lines stay (a resumed run reads only the files of the rounds left).
            lines = _read_lines(target) if os.path.exists(target) else []
            lines = [line for line in lines if json.loads(line)["file"] != str(path)]
            lines += _read_lines(rejected.path)
            files.atomic_write_text(target, "".join(line + "\n" for line in lines))
            os.remove(rejected.path)
        self.rejected[kind] = report.rejected
        if report.rejected:
            logging.warning("%s: %d bad lines skipped (see %s)", path, report.rejected, target)
        return records

    def _read_labels(self, path):
        records, _ = logged.read(
            path, self.config.feedback, self.world, self.config.slate_size, self.config.num_candidates
        )
        return logged.examples(self.world, self.config.feedback, records)

    def _refit(self, model, examples, round_number):
        """A fresh reward model fitted to every label so far (each round starts from new weights: a refit, not a
        fine-tune, so early rounds' noise is not baked in)."""
        fresh = self._feedback_model()
        config = dataclasses.replace(self.reward_config, seed=self.reward_config.seed + 1000 * round_number)
        self.last_fit = item_reward.train_feedback_model(fresh, examples, config)
        logged, _ = self._draw(1000, 50)
        fresh.normalise_on(logged.observations(self.world))
        # The environment holds `model`: copy the new weights into it.
        model(logged.subset(range(2)).observations(self.world))
        for target, source in zip(model.variables, fresh.variables):
            target.assign(source)
        return model

    def _evaluation_visits(self):
        visits, _ = self._draw(self.config.eval_visits, 7)
        return visits

    def _judge(self, agent, visits, prefix):
        scores = bandits.predicted_rewards(agent, visits.observations(self.world))
        return {
            f"{prefix}{name}": value
            for name, value in self._list_metrics(bandits.top_k(scores, self.config.slate_size), visits).items()
        }

    def _list_metrics(self, lists, visits):
        """True satisfaction and the rest of the list measures (module docstring) of lists [visits, K] of
        candidate positions."""
        satisfaction = visits.satisfaction(self.world)
        discount = self.world.examination[: self.config.slate_size]
        value = (np.take_along_axis(satisfaction, lists, axis=1) * discount).sum(axis=1)
        best = (np.sort(satisfaction, axis=1)[:, ::-1][:, : self.config.slate_size] * discount).sum(axis=1)
        items = np.take_along_axis(visits.candidates, lists, axis=1)
        rng = np.random.default_rng([self.config.seed, 9])
        clicked = np.stack([recommend.clicks(self.world, v, shown, rng) for v, shown in zip(visits.visits, items)])
        genres = self.world.genre[items]
        return {
            "satisfaction": float(value.mean()),
            "click_through": float(clicked.any(axis=1).mean()),
            "coverage": float(len(np.unique(items)) / self.world.num_items),
            "diversity": float(np.mean([len(set(row)) for row in genres]) / self.config.slate_size),
            "regret": float((best - value).mean()),
        }

    def _oracle(self):
        """The same agent trained with the same steps on the hidden satisfaction."""
        environment = self._environment(
            lambda visits, actions: recommend.true_reward(self.world, visits, actions), seed=self.config.seed + 1
        )
        agent = self._agent(environment)
        bandits.BanditTrainer(agent, environment, self.config.bandit).train()
        return agent

    def _off_policy(self, policies):
        """Off-policy estimates of each policy's top-item click-through and rating from the behaviour policy's
        logs, beside its online value (module docstring). `policies`: name -> (observations -> [visits, candidates]
        target probabilities)."""
        config, world = self.config, self.world
        if config.off_policy_file:
            records = self._read_file(config.off_policy_file, "logs")
        else:
            records = self._behaviour_logs()
        path = os.path.join(config.output_dir, "off_policy")
        os.makedirs(path, exist_ok=True)
        logged.write(os.path.join(path, "logs.jsonl"), records)
        logs = recommend.Visits([r["visit"] for r in records], np.stack([r["candidates"] for r in records]))
        actions = np.asarray([r["action"] for r in records])
        propensities = np.asarray([r["propensity"] for r in records])
        logged_signals = {
            signal: np.asarray([r[signal] for r in records], np.float64)
            for signal in ("click", "rating")
            if all(signal in r for r in records)
        }
        observations = logs.observations(world)
        online_visits, _ = self._draw(config.off_policy_logs or 10000, 12)
        online_observations = online_visits.observations(world)
        online_values = {  # [visits, candidates] each candidate's expected signal
            "click": np.stack(
                [recommend.attraction(world, v, c) for v, c in zip(online_visits.visits, online_visits.candidates)]
            ),
            "rating": np.stack(
                [recommend.expected_rating(world, v, c) for v, c in zip(online_visits.visits, online_visits.candidates)]
            ),
        }
        # Each policy's target probabilities on the logs and online, computed once for every signal.
        targets = {name: (fn(observations), fn(online_observations)) for name, fn in policies.items()}
        metrics = {}
        lines = ["| signal | policy | online | IPS [95%] | SNIPS [95%] | DR [95%] |", "|---|---|---|---|---|---|"]
        for signal, rewards in logged_signals.items():
            predicted = self._cross_fitted_predictions(observations, actions, rewards, signal)
            for name, (target, online_target) in targets.items():
                online = float(np.mean(np.sum(online_target * online_values[signal], axis=1)))
                estimates = {
                    "ips": off_policy.ips(target, actions, propensities, rewards),
                    "snips": off_policy.snips(target, actions, propensities, rewards, seed=config.seed),
                    "dr": off_policy.doubly_robust(target, actions, propensities, rewards, predicted),
                }
                prefix = f"off_policy/{signal}/{name}/"
                metrics[prefix + "online"] = online
                cells = []
                for estimator, (value, low, high) in estimates.items():
                    inside = low <= online <= high
                    metrics.update(
                        {
                            prefix + estimator: value,
                            prefix + f"{estimator}_low": low,
                            prefix + f"{estimator}_high": high,
                            prefix + f"{estimator}_covers_online": float(inside),
                        }
                    )
                    cells.append(f"{value:.3f} [{low:.3f}, {high:.3f}]{'' if inside else ' (misses)'}")
                lines.append(f"| {signal} | {name} | {online:.3f} | " + " | ".join(cells) + " |")
        files.atomic_write_text(os.path.join(path, "table.md"), "\n".join(lines) + "\n")
        return metrics

    def _behaviour_logs(self):
        """Log records (`logged`) of the behaviour policy on fresh visits: its top item, the propensity it gave it,
        and the person's click and rating."""
        config, world = self.config, self.world
        visits, rng = self._draw(config.off_policy_logs, 11)
        behaviour = feedback.behaviour_probabilities(
            world, visits, config.behaviour_temperature, config.behaviour_epsilon
        )
        actions = feedback.sample_lists(behaviour, 1, rng)[:, 0]
        items = visits.candidates[np.arange(len(visits)), actions]
        clicks = [recommend.clicks(world, v, [item], rng)[0] for v, item in zip(visits.visits, items)]
        ratings = [recommend.rating(world, v, int(item), rng) for v, item in zip(visits.visits, items)]
        return [
            {
                "visit": visit,
                "candidates": candidates,
                "action": int(action),
                "propensity": float(mu[action]),
                "click": int(click),
                "rating": int(rating),
            }
            for visit, candidates, action, mu, click, rating in zip(
                visits.visits, visits.candidates, actions, behaviour, clicks, ratings
            )
        ]

    def _cross_fitted_predictions(self, observations, actions, rewards, signal):
        """[logs, candidates] q(x, a), the expected signal of candidate a as the top item, for the doubly robust
        estimate: a naive click model (clicks) or a rating regression (ratings) fitted to one half of the logs
        predicts the other half, and the other way round."""
        rows = np.arange(len(actions))
        shown = observations["per_arm"][rows, actions][:, None, :]
        if signal == "click":
            examples = {"global": observations["global"], "slate": shown, "clicks": rewards[:, None].astype(np.float32)}
            kind = "clicks"
        else:
            examples = {"global": observations["global"], "items": shown, "rating": rewards.astype(np.float32)}
            kind = "ratings"
        config = dataclasses.replace(
            self.reward_config, kind=kind, click_model="naive", ensemble_size=1, seed=self.config.seed + 77
        )
        halves = np.random.default_rng([self.config.seed, 13]).permutation(len(rows)) % 2
        predicted = np.zeros(observations["per_arm"].shape[:2])
        for half in (0, 1):
            model = item_reward.FeedbackModel(config, observations["per_arm"].shape[-1], slate_size=1)
            item_reward.train_feedback_model(model, {k: v[halves != half] for k, v in examples.items()}, config)
            held = {
                "global": observations["global"][halves == half],
                "per_arm": observations["per_arm"][halves == half],
            }
            scores = model.member_scores(held)
            mean = tf.reduce_mean(tf.sigmoid(scores) if kind == "clicks" else 3.0 + 2.0 * scores, axis=0)
            predicted[halves == half] = mean.numpy()
        return predicted

    def _finish(self, agent, model, evaluation, state):
        config = self.config
        metrics = dict(state["rounds"][-1])
        rng = np.random.default_rng([config.seed, 8])
        random_lists = np.stack(
            [rng.permutation(config.num_candidates)[: config.slate_size] for _ in range(len(evaluation))]
        )
        metrics.update({f"random/{k}": v for k, v in self._list_metrics(random_lists, evaluation).items()})
        popular = bandits.top_k(self.world.popularity[evaluation.candidates], config.slate_size)
        metrics.update({f"popularity/{k}": v for k, v in self._list_metrics(popular, evaluation).items()})
        oracle = self._oracle() if config.oracle else None
        if oracle is not None:
            metrics.update(self._judge(oracle, evaluation, prefix="oracle/"))
            gain = metrics["oracle/satisfaction"] - metrics["random/satisfaction"]
            metrics["learned/share_of_oracle_gain"] = (
                metrics["learned/satisfaction"] - metrics["random/satisfaction"]
            ) / gain
        if config.off_policy_logs or config.off_policy_file:
            greedy = lambda chosen: lambda observations: np.eye(config.num_candidates)[chosen(observations)]  # noqa: E731
            policies = {"learned": greedy(lambda o: np.argmax(bandits.predicted_rewards(agent, o), axis=1))}
            if oracle is not None:
                policies["oracle"] = greedy(lambda o: np.argmax(bandits.predicted_rewards(oracle, o), axis=1))
            else:
                policies["random"] = lambda o: np.full(o["per_arm"].shape[:2], 1.0 / config.num_candidates)
            popularity = recommend.ARM_FEATURE_NAMES.index("popularity")
            policies["popularity"] = greedy(lambda o: np.argmax(o["per_arm"][..., popularity], axis=1))
            metrics.update(self._off_policy(policies))
        rejected = {**state.get("rejected", {}), **self.rejected}
        metrics.update({f"rejected/{kind}": count for kind, count in rejected.items()})
        self._plot(state, metrics)
        export_policy(agent.policy, self.paths.export_dir("policy"))
        metrics["seconds"] = time.perf_counter() - self.started
        files.atomic_write_json(self.paths.metrics_path, metrics)
        return metrics

    def _plot(self, state, metrics):
        """plots/rounds.png: true satisfaction by labels so far (the agent's lists and the learned reward's own
        ranking) against the oracle, popularity and random; plots/off_policy.png: each estimate with its interval
        beside the online value."""
        directory = self.paths.plots_dir
        os.makedirs(directory, exist_ok=True)
        figure, axes = plots.new_figure()
        labels = [r["labels"] for r in state["rounds"]]
        axes.plot(labels, [r["learned/satisfaction"] for r in state["rounds"]], "o-", label="agent on learned reward")
        axes.plot(
            labels, [r["reward_greedy/satisfaction"] for r in state["rounds"]], "s--", label="learned reward's top 5"
        )
        for name, style in (("oracle", "g:"), ("popularity", "r:"), ("random", "k:")):
            if f"{name}/satisfaction" in metrics:
                axes.axhline(metrics[f"{name}/satisfaction"], linestyle=":", color=style[0], label=name)
        axes.set_xlabel(f"{self.config.feedback} labels")
        axes.set_ylabel("true satisfaction of the list")
        axes.legend(fontsize=8)
        plots.save_png(figure, os.path.join(directory, "rounds.png"))
        signals = [s for s in ("click", "rating") if any(k.startswith(f"off_policy/{s}/") for k in metrics)]
        if not signals:
            return
        figure, axes = plots.new_figure(len(signals), (5 * len(signals), 3.6))
        for ax, signal in zip(np.atleast_1d(axes), signals):
            policies = sorted({k.split("/")[2] for k in metrics if k.startswith(f"off_policy/{signal}/")})
            for row, policy in enumerate(policies):
                prefix = f"off_policy/{signal}/{policy}/"
                for offset, estimator in zip((-0.2, 0.0, 0.2), ESTIMATORS):
                    value, low, high = (metrics[prefix + estimator + end] for end in ("", "_low", "_high"))
                    ax.errorbar(
                        [row + offset],
                        [value],
                        yerr=[[value - low], [high - value]],
                        fmt="o",
                        capsize=3,
                        color=f"C{ESTIMATORS.index(estimator)}",
                        label=estimator.upper() if row == 0 else None,
                    )
                ax.plot(
                    [row - 0.35, row + 0.35],
                    [metrics[prefix + "online"]] * 2,
                    "k-",
                    label="online" if row == 0 else None,
                )
            ax.set_xticks(range(len(policies)), policies)
            ax.set_title(f"top item's {signal}")
            ax.legend(fontsize=8)
        plots.save_png(figure, os.path.join(directory, "off_policy.png"))


def export_policy(policy, path):
    """Saves the greedy policy with TF-Agents' PolicySaver, atomically. Its `action` takes the per-arm observation
    and returns the chosen candidate, and `info.predicted_rewards_mean` every candidate's score (rank them for a
    list). `distribution` is left out so that the SavedModel loads with TensorFlow alone (as for control)."""
    # NeuralEpsilonGreedyAgent's `policy` is its epsilon-greedy one (TF-Agents 0.19); serving shows the greedy choice.
    if isinstance(policy, epsilon_greedy_policy.EpsilonGreedyPolicy):
        policy = policy.wrapped_policy
    saver = policy_saver.PolicySaver(policy, batch_size=None)
    delattr(saver._policy, "distribution")
    return export_lib.write_directory(path, saver.save)


def _read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()
