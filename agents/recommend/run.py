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

Every round's reward model and the agent are checkpointed (`ckpt/`); the labels are kept in `labels/round-N.npz`;
a rerun resumes after the last finished round.
"""

import dataclasses
import io
import logging
import os
import time

import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_py_environment
from tf_agents.policies import epsilon_greedy_policy, policy_saver

from rlhf_tf import configs, files, training
from rlhf_tf import export as export_lib
from rlhf_tf.agents.recommend import bandits, feedback
from rlhf_tf.envs import recommend
from rlhf_tf.reward import item_reward

FEEDBACK = item_reward.KINDS


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
        return feedback.slate_choices(self.world, visits, shown, other, rng)

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
            path = os.path.join(self.label_dir, f"round-{round_number}.npz")
            if round_number < state["rounds_done"]:
                parts.append(_load(path))
                continue
            if round_number == state["rounds_done"] and manager.latest_checkpoint and round_number:
                checkpoint.restore(manager.latest_checkpoint)
            examples = self._labels(round_number, model if round_number else None, agent if round_number else None)
            _save(path, examples)
            parts.append(examples)
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
            state = {"rounds_done": round_number + 1, "rounds": state["rounds"] + [round_metrics]}
            files.atomic_write_json(self.state_path, state)
        return self._finish(agent, model, evaluation, state)

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

    def _oracle(self, evaluation):
        """The same agent trained with the same steps on the hidden satisfaction."""
        environment = self._environment(
            lambda visits, actions: recommend.true_reward(self.world, visits, actions), seed=self.config.seed + 1
        )
        agent = self._agent(environment)
        bandits.BanditTrainer(agent, environment, self.config.bandit).train()
        return self._judge(agent, evaluation, prefix="oracle/")

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
        if config.oracle:
            metrics.update(self._oracle(evaluation))
            gain = metrics["oracle/satisfaction"] - metrics["random/satisfaction"]
            metrics["learned/share_of_oracle_gain"] = (
                metrics["learned/satisfaction"] - metrics["random/satisfaction"]
            ) / gain
        export_policy(agent.policy, self.paths.export_dir("policy"))
        metrics["seconds"] = time.perf_counter() - self.started
        files.atomic_write_json(self.paths.metrics_path, metrics)
        return metrics


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


def _save(path, examples):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **examples)
    files.atomic_write_bytes(path, buffer.getvalue())


def _load(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
