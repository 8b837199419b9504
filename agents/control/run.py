"""Control from human preferences: a TF-Agents agent trained on a reward learned from segment comparisons
(Christiano et al. 2017), or on the environment's reward, or on an adversarial reward learned from demonstrations.

One run (`train_control`, `rlhf-tf control`) is a loop of iterations on the shared training loop (checkpoints,
resume, TensorBoard, progress):
1. the driver collects experience with the agent's collect policy (true rewards stored, never shown to the agent);
2. when the label schedule says so, segments are cut from that experience, pairs are chosen (at random or by
   ensemble disagreement), asked through the feedback store and answered (the simulated teacher, or people), and
   the reward ensemble is refitted to every label so far and renormalised;
3. the agent trains on its experience relabelled with the learned reward.
The final greedy policy is evaluated on the true reward (`control/true_return_mean`, episodes of the environment's
own length), plotted, and exported with TF-Agents' PolicySaver to `export/policy`.

Preference runs use the fixed horizon by default (`rlhf_tf.envs.control`): without it the episode length itself
leaks the reward. `reward="constant"` with `fixed_horizon=False` shows that leak.
"""

import logging
import time

import numpy as np
import tensorflow as tf

from rlhf_tf import configs, training
from rlhf_tf.agents.control import demonstrations as demonstrations_lib
from rlhf_tf.agents.control import evaluation
from rlhf_tf.agents.control import factories as control_agents
from rlhf_tf.agents.control import preference_loop as preferences
from rlhf_tf.agents.control.config import ControlConfig, label_target, resolve, time_limit
from rlhf_tf.envs import control as control_envs
from rlhf_tf.feedback import labelers as labelers_lib
from rlhf_tf.reward import adversarial as irl
from rlhf_tf.reward import segment_preference

__all__ = ["ControlConfig", "ControlRun", "train_control"]


def train_control(config):
    """Runs a control run (see the module docstring); returns the final metrics (also in metrics.json)."""
    return ControlRun(config).run()


class ControlRun:
    """One control run: environments, agent, reward (learned from preferences, adversarial, or the true one) and
    the shared training loop; `run()` trains, evaluates, plots and exports.

    Args:
      config: a `ControlConfig` (zero-valued settings take the environment's tested defaults).
    """

    def __init__(self, config):
        self.config = config = resolve(config)
        self.started = time.perf_counter()
        hp = config.agent_hp
        self.iterations = max(1, config.env_steps // (hp.num_envs * hp.steps_per_env))
        loop_config = training.LoopConfig(
            steps=self.iterations,
            log_every=max(1, min(10, self.iterations // 20 or 1)),
            checkpoint_every=max(1, self.iterations // 5),
            eval_every=config.eval_every,
            seed=config.seed,
            progress=config.progress,
            deterministic=config.deterministic,
        )
        self.loop = training.TrainLoop(loop_config, config.output_dir, run_config=config, metrics_prefix="control")
        self.loop.shown_metrics = ("true_return_train", "labels_used", "reward_accuracy")
        self.fixed = config.fixed_horizon
        self.environment = control_agents.batched_environment(self._make_train_env, hp.num_envs)
        self.eval_horizon = config.eval_horizon or time_limit(config.env)
        self.agent = control_agents.make_agent(config.agent, self.environment, hp, self.iterations)
        self.observation_size = self.environment.observation_spec().shape[0]
        action_spec = self.environment.action_spec()
        self.num_actions = int(action_spec.maximum - action_spec.minimum + 1) if action_spec.dtype.is_integer else 0
        self.action_size = 1 if self.num_actions else int(np.prod(action_spec.shape))
        self.checkpoint = dict(self.agent.checkpoint_objects())
        self.learned, self.teacher, self.rounds = self._preference_reward()
        self.demonstrations = self._demonstrations()
        self.adversarial = self._adversarial_reward()
        self.state = {"last_label_id": 0, "round": 0, "label_ids": []}
        self._restore_labels_and_clone()

    # Every environment has its own seed, from the run's: training, evaluation and recording never share one.
    def _make_train_env(self, index):
        config = self.config
        seed = config.seed * 10_000 + index
        return control_envs.load(config.env, horizon=config.horizon or None, fixed_horizon=self.fixed, seed=seed)

    def _make_eval_env(self, index, offset=5_000):
        config = self.config
        seed = config.seed * 10_000 + offset + index
        return control_envs.load(config.env, horizon=config.eval_horizon or None, fixed_horizon=self.fixed, seed=seed)

    def _preference_reward(self):
        """(learned reward, simulated teacher or None, label rounds) of a preference run, else Nones."""
        config = self.config
        if config.reward != "preferences":
            return None, None, None
        learned = segment_preference.PreferenceReward(
            self.observation_size,
            self.num_actions,
            config.segment_length,
            capacity=config.num_labels,
            action_size=self.action_size,
            ensemble_size=config.ensemble_size,
            uncertainty_penalty=config.reward_uncertainty_penalty,
            seed=config.seed,
        )
        teacher = None
        if config.labeler == "simulated":
            teacher = labelers_lib.SegmentTeacher(
                beta=config.teacher_beta,
                mistake_rate=config.teacher_mistake_rate,
                equal_threshold=config.teacher_equal_threshold,
                seed=config.seed,
            )
        rounds = preferences.LabelRounds(
            config.output_dir, teacher=teacher, store_path=config.store, env_name=config.env, fixed_horizon=self.fixed
        )
        self.checkpoint.update(learned.checkpoint_objects())
        return learned, teacher, rounds

    def _demonstrations(self):
        if not self.config.demonstrations:
            return None
        demonstrations = demonstrations_lib.load_demonstrations(self.config.demonstrations)
        configs.require(
            demonstrations["observations"].shape[1] == self.observation_size,
            "The demonstrations' observations do not match the environment's (with the fixed horizon, observations "
            "carry one extra last feature, 0 while the episode runs).",
            demonstration_features=demonstrations["observations"].shape[1],
            environment_features=self.observation_size,
        )
        return demonstrations

    def _adversarial_reward(self):
        config, demonstrations = self.config, self.demonstrations
        if config.reward != "adversarial":
            return None
        expert, absorbing = demonstrations, None
        if self.fixed:
            # The demonstrator never reaches the fixed horizon's failed state: it is always among the agent's
            # samples. And the expert's occupancy is matched over the horizon the agent trains on: later steps
            # (a 500-step demonstrator drifts along the track) rewarded drifting the agent could not yet do.
            absorbing = np.zeros(self.observation_size, np.float32)
            absorbing[-1] = 1
            if config.horizon:
                keep = demonstrations["steps"] < config.horizon
                expert = {key: demonstrations[key][keep] for key in ("observations", "actions")}
        adversarial = irl.AdversarialReward(
            self.observation_size,
            self.num_actions,
            expert,
            action_size=self.action_size,
            absorbing_observation=absorbing,
            seed=config.seed,
        )
        self.checkpoint.update(adversarial.checkpoint_objects())
        return adversarial

    def _restore_labels_and_clone(self):
        """Labels live in the store and segments on disk: the label arrays are rebuilt before the checkpoint restores
        the ensemble (the arrays are not part of it). A fresh run with demonstrations starts with behavioural
        cloning."""
        config = self.config
        resuming = tf.train.latest_checkpoint(self.loop.run_directory.checkpoint_dir) is not None
        if self.learned is not None:
            self.state["last_label_id"], rows, self.state["label_ids"] = self.rounds.labels()
            self.learned.add_labels(rows)
            self.state["round"] = len(self.rounds.rounds_done())
        if not resuming and self.demonstrations is not None and config.bc_steps:
            bc_loss = demonstrations_lib.behavioral_cloning(
                self.agent, self.demonstrations, config.bc_steps, seed=config.seed
            )
            logging.info("Behavioural cloning: %d steps, final loss %.4f.", config.bc_steps, bc_loss)

    def _ask(self, iteration):
        """Asks the round's new questions when the label schedule says so; returns {"disagreement": ...} or {}."""
        config, rounds, state = self.config, self.rounds, self.state
        target = label_target(config, iteration, self.iterations)
        asked = rounds.asked_count()
        if target <= asked:
            return {}
        need = target - asked
        segments = preferences.sample_segments(self.agent.replay_buffer, max(64, 2 * need), config.segment_length)
        if len(segments["rewards"]) < 2:
            return {}
        pairs, spread = preferences.choose_pairs(
            segments,
            need,
            config.pair_selection,
            self.learned if self.learned.num_labels else None,
            np.random.default_rng([config.seed, iteration]),
        )
        rounds.ask(segments, pairs, spread, state["round"])
        state["round"] += 1
        return {"disagreement": float(np.mean(spread))}

    def label_round(self, iteration):
        """Asks, has the questions answered, reads every new answer back and refits the learned reward."""
        config, rounds, state, learned = self.config, self.rounds, self.state, self.learned
        metrics = self._ask(iteration)
        if self.teacher is not None:
            rounds.answer_pending()
        else:
            rounds.wait_for_answers(config.label_timeout, report=lambda waiting: _report_waiting(waiting, rounds))
        withdrawn = rounds.withdrawn(state["label_ids"]) if self.teacher is None else 0  # only people undo
        if withdrawn:
            # Labels this run trained on were undone in the labeling app: rebuild from what the store holds now.
            logging.info("%d labels were withdrawn in the labeling app; relearning from the store's labels.", withdrawn)
            learned.clear_labels()
            state["last_label_id"], rows, state["label_ids"] = rounds.labels()
        else:
            state["last_label_id"], rows, ids = rounds.labels(state["last_label_id"])
            state["label_ids"] += ids
        if rows:
            learned.add_labels(rows)
            first_fit = learned.num_labels == len(rows)
            metrics["reward_loss"] = learned.fit(config.reward_fit_steps * (3 if first_fit else 1))
            learned.set_normalization()
            metrics["reward_accuracy"] = learned.accuracy()
        return metrics

    def iteration(self, step):
        """One iteration: collect, label (preference runs), refit the discriminator (adversarial runs), train."""
        agent = self.agent
        if step == 0 or int(agent.replay_buffer.num_frames()) == 0:
            agent.warm_up()
        agent.collect()
        metrics = {}
        if self.learned is not None:
            metrics.update(self.label_round(step))
            metrics["labels_used"] = float(self.learned.num_labels)
        if self.adversarial is not None:
            metrics["discriminator_loss"] = self.adversarial.fit(agent.replay_buffer)
        if self.learned is None or self.learned.num_labels:
            metrics["agent_loss"] = agent.train(self.reward_fn, step)
        metrics["true_return_train"] = float(agent.returns.result())
        metrics["env_steps"] = float((step + 1) * agent.steps_per_iteration)
        return metrics

    def evaluate(self, step):
        del step
        # Fresh environments each time: every evaluation starts from the same initial states, so evaluating during
        # training leaves the final evaluation as it would be without.
        environment = control_agents.batched_environment(self._make_eval_env, self.config.eval_episodes)
        returns = evaluation.evaluate(self.agent.policy, environment, self.eval_horizon, self.greedy_action)
        return {
            "control/true_return_mean": float(np.mean(returns)),
            "control/true_return_std": float(np.std(returns)),
            "control/true_return_min": float(np.min(returns)),
        }

    def run(self):
        """Trains (or resumes), then evaluates, plots and exports; returns the final metrics."""
        config = self.config
        self.reward_fn = _reward_function(config.reward, self.learned, self.adversarial)
        self.greedy_action = tf.function(self.agent.policy.action)
        description = f"control {config.agent} on {config.env}"
        metrics = self.loop.run_iterations(
            self.iteration, self.checkpoint, evaluate=self.evaluate, description=description
        )
        metrics["control/labels_used"] = float(self.learned.num_labels) if self.learned is not None else 0.0
        metrics["control/env_steps"] = float(self.iterations * self.agent.steps_per_iteration)
        metrics["control/fixed_horizon"] = float(self.fixed)
        metrics["control/seconds"] = time.perf_counter() - self.started
        if self.rounds is not None:
            self.rounds.close()
        run_directory = self.loop.run_directory
        if run_directory.chief:
            evaluation.export_policy(
                self.agent.policy, run_directory.export_dir("policy"), self.agent.agent.train_step_counter
            )
            evaluation.plot_learning_curves(run_directory, config.horizon or None, self.eval_horizon)
            if config.record_demonstrations:
                returns = demonstrations_lib.record_demonstrations(
                    self.agent.policy,
                    lambda index: self._make_eval_env(index, offset=8_000),
                    config.record_demonstrations,
                    self.eval_horizon,
                    run_directory.demonstrations_path,
                    fixed_horizon=self.fixed,
                )
                metrics["control/demonstrations_return_mean"] = float(np.mean(returns))
        run_directory.update_metrics(metrics)
        return metrics


def _report_waiting(waiting, rounds):
    if waiting:
        logging.info("Waiting for %d answers from the labeling app (store: %s).", waiting, rounds.store.path)


def _reward_function(kind, learned, adversarial):
    if kind == "preferences":
        return learned.relabel
    if kind == "adversarial":
        return adversarial.relabel
    if kind == "constant":
        return lambda trajectory: trajectory._replace(reward=tf.ones_like(trajectory.reward))
    return lambda trajectory: trajectory
