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

import dataclasses
import json
import logging
import math
import os
import time

import gym
import numpy as np
import tensorflow as tf
from tf_agents.policies import policy_saver

from rlhf_tf import configs, files, plots, training
from rlhf_tf import export as export_lib
from rlhf_tf.agents.control import factories as control_agents
from rlhf_tf.agents.control import preference_loop as preferences
from rlhf_tf.envs import control as control_envs
from rlhf_tf.errors import UserInputError
from rlhf_tf.feedback import labelers as labelers_lib
from rlhf_tf.reward import adversarial as irl
from rlhf_tf.reward import segment_preference

DEMONSTRATIONS_FILE = "demonstrations.jsonl"
REWARDS = ("preferences", "true", "adversarial", "constant")
LABELERS = ("simulated", "web")
PAIR_SELECTIONS = ("disagreement", "random")

# Per environment: the training horizon, segment length, and environment steps per agent (tested budgets).
ENVIRONMENTS = {
    "CartPole-v1": dict(
        horizon=200,
        segment_length=25,
        # The adversarial reward moves with the policy and learns more slowly: GAIL from 20 demonstrations reached
        # 500 / 500 / 500 (seeds 0-2) in 480k steps, 500 / 500 / 301 in 240k.
        env_steps={"ppo": 240_000, "reinforce": 320_000, "dqn": 100_000, "ppo/adversarial": 480_000},
    ),
    "Pendulum-v1": dict(horizon=200, segment_length=50, env_steps={"sac": 12_000, "ppo": 400_000}),
    "Acrobot-v1": dict(horizon=200, segment_length=25, env_steps={"ppo": 200_000, "dqn": 60_000}),
    "MountainCar-v0": dict(horizon=200, segment_length=25, env_steps={"ppo": 400_000, "dqn": 100_000}),
}


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    """A control run. Zero means "the environment's and agent's default" for the numeric settings marked so.

    Attributes:
      output_dir: the run directory.
      env: a gym id (CartPole-v1, Pendulum-v1, Acrobot-v1, MountainCar-v0, or any suite_gym id).
      agent: "ppo", "reinforce", "dqn" or "sac".
      reward: "preferences" (learned from labels), "true" (the environment's reward: the baseline), "adversarial"
        (GAIL-style, learned from `demonstrations`), or "constant" (1 every step: shows the termination leak).
      num_labels: the label budget of a preference run.
      labeler: "simulated" (the B-Pref teacher over the true reward answers at once) or "web" (people answer in
        the labeling app, `rlhf-tf label-server --store=...`, over the same store: pass `store` to share one).
        Either way the same items go into the store at the same points of the run; only who answers differs.
      label_timeout: with labeler "web", the longest wait for a round's answers (seconds); training then goes on
        with the labels that came, and later answers join later rounds.
      store: a feedback store (SQLite) shared with people; empty keeps the run's own `feedback.sqlite`.
      pair_selection: "disagreement" (the ensemble's most disputed of 10x candidates) or "random".
      segment_length: steps per segment (0: the environment's default).
      horizon: steps per training episode (0: the environment's default for preference runs).
      fixed_horizon: fixed-length training episodes with one absorbing failed state (the default; see module doc).
      eval_horizon: steps per evaluation episode (0: the environment's own time limit).
      env_steps: environment steps of training (0: the default for this environment, agent and reward).
      initial_label_fraction: share of the labels asked before the agent trains (on its initial policy's segments).
      label_until: share of the run by which the whole label budget has been asked (labels spread evenly).
      ensemble_size: reward models in the ensemble.
      reward_fit_steps: Bradley-Terry steps after each label round (3x after the first). A round happens at every
        iteration where the schedule says labels are due.
      teacher_beta: the simulated teacher's rationality (inf: always prefers the higher true return).
      teacher_mistake_rate: the simulated teacher's error rate.
      teacher_equal_threshold: the simulated teacher answers "equal" when the true returns differ by less (the
        rational teacher does not flip a coin between equally good segments; a coin flip teaches noise).
      demonstrations: JSONL of demonstration episodes ({"observations": [[...]], "actions": [...]} per line):
        behavioural-cloning pretraining, and the expert data of the adversarial reward.
      bc_steps: behavioural-cloning steps when demonstrations are given (0 skips pretraining).
      eval_episodes: episodes of the final (and periodic) evaluation.
      eval_every: iterations between evaluations during training (0: only at the end).
      agent_hp: the TF-Agents agent's settings (`control_agents.defaults(agent, reward)` when None).
      record_demonstrations: after training, write this many episodes of the final greedy policy (true reward
        recorded) to `demonstrations.jsonl` in the run directory: expert data for BC and the adversarial reward.
      seed: seeds everything (environments, networks, teacher, pair choice).
      progress: show the progress bar.
    """

    output_dir: str = ""
    env: str = "CartPole-v1"
    agent: str = "ppo"
    reward: str = "preferences"
    num_labels: int = 1000
    labeler: str = "simulated"
    label_timeout: float = 600.0
    store: str = ""
    pair_selection: str = "disagreement"
    segment_length: int = 0
    horizon: int = 0
    fixed_horizon: bool = True
    eval_horizon: int = 0
    env_steps: int = 0
    initial_label_fraction: float = 0.25
    label_until: float = 0.5
    ensemble_size: int = 3
    reward_fit_steps: int = 200
    teacher_beta: float = math.inf
    teacher_mistake_rate: float = 0.0
    teacher_equal_threshold: float = 1e-6
    demonstrations: str = ""
    bc_steps: int = 2000
    eval_episodes: int = 10
    eval_every: int = 0
    agent_hp: control_agents.AgentHyperparameters = None
    record_demonstrations: int = 0
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        configs.require(bool(self.output_dir), "`output_dir` is required.", output_dir=self.output_dir)
        configs.require(
            self.agent in control_agents.AGENTS,
            f"`agent` must be one of {list(control_agents.AGENTS)}.",
            agent=self.agent,
        )
        configs.require(self.reward in REWARDS, f"`reward` must be one of {list(REWARDS)}.", reward=self.reward)
        configs.require(self.labeler in LABELERS, f"`labeler` must be one of {list(LABELERS)}.", labeler=self.labeler)
        configs.require(
            self.pair_selection in PAIR_SELECTIONS,
            f"`pair_selection` must be one of {list(PAIR_SELECTIONS)}.",
            pair_selection=self.pair_selection,
        )
        configs.require_non_negative(
            num_labels=self.num_labels,
            segment_length=self.segment_length,
            horizon=self.horizon,
            eval_horizon=self.eval_horizon,
            env_steps=self.env_steps,
            bc_steps=self.bc_steps,
            eval_every=self.eval_every,
            seed=self.seed,
        )
        configs.require_positive(
            ensemble_size=self.ensemble_size, reward_fit_steps=self.reward_fit_steps, eval_episodes=self.eval_episodes
        )
        configs.require(
            self.reward != "preferences" or self.num_labels >= 2,
            "A preference run needs a label budget of at least 2.",
            num_labels=self.num_labels,
        )
        configs.require(
            self.reward != "adversarial" or bool(self.demonstrations),
            "The adversarial reward learns from demonstrations: pass `demonstrations`.",
            demonstrations=self.demonstrations,
        )
        configs.require(
            0 <= self.initial_label_fraction <= 1,
            "`initial_label_fraction` must be in [0, 1].",
            initial_label_fraction=self.initial_label_fraction,
        )
        configs.require(0 < self.label_until <= 1, "`label_until` must be in (0, 1].", label_until=self.label_until)
        if self.agent_hp is None:
            object.__setattr__(self, "agent_hp", control_agents.defaults(self.agent, self.reward))
        elif isinstance(self.agent_hp, dict):
            object.__setattr__(self, "agent_hp", control_agents.AgentHyperparameters(**self.agent_hp))


def resolve(config):
    """Fills the environment's and agent's defaults into the zero-valued settings."""
    known = ENVIRONMENTS.get(config.env, {})
    changes = {}
    if not config.segment_length:
        changes["segment_length"] = known.get("segment_length", 25)
    if not config.horizon:
        changes["horizon"] = known.get("horizon", 0)
    if not config.env_steps:
        budgets = known.get("env_steps", {})
        steps = budgets.get(f"{config.agent}/{config.reward}", budgets.get(config.agent))
        configs.require(
            steps is not None,
            f"No tested step budget for {config.agent} on {config.env}: pass `env_steps`.",
            env=config.env,
            agent=config.agent,
        )
        changes["env_steps"] = steps
    return dataclasses.replace(config, **changes)


def label_target(config, iteration, iterations):
    """Labels that should have been asked by the end of `iteration` (0-based): the initial share at once, then
    evenly over the first `label_until` of the run."""
    if config.reward != "preferences":
        return 0
    initial = math.ceil(config.num_labels * config.initial_label_fraction)
    spread_over = max(1, int(round(config.label_until * iterations)))
    share = min(1.0, (iteration + 1) / spread_over)
    return max(2, min(config.num_labels, initial + int(round((config.num_labels - initial) * share))))


def load_demonstrations(path):
    """Demonstration episodes from JSONL: {"observations": [[float, ...], ...], "actions": [...]} per line.

    Returns {"observations": [N, D], "actions": [N, ...], "steps": [N] (each pair's step within its episode),
    "episodes": count} of (observation, action) pairs. Bad lines stop with the file, line and field named.
    """
    observations, actions, episodes = [], [], 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserInputError(f"{where}: not valid JSON ({error.msg}).") from None
            for field in ("observations", "actions"):
                if not isinstance(record.get(field), list) or not record[field]:
                    raise UserInputError(f"{where}, field `{field}`: must be a non-empty list.")
            episode_observations = np.asarray(record["observations"], dtype=np.float32)
            episode_actions = np.asarray(record["actions"])
            if episode_observations.ndim != 2 or len(episode_observations) != len(episode_actions):
                raise UserInputError(
                    f"{where}, field `observations`: must be [steps, features] with one row per action "
                    f"(got shape {list(episode_observations.shape)} for {len(episode_actions)} actions)."
                )
            if not np.all(np.isfinite(episode_observations)):
                raise UserInputError(f"{where}, field `observations`: must be finite numbers.")
            observations.append(episode_observations)
            actions.append(episode_actions)
            episodes += 1
    configs.require(episodes > 0, "The demonstrations file holds no episode.", path=path)
    return {
        "observations": np.concatenate(observations),
        "actions": np.concatenate(actions),
        "steps": np.concatenate([np.arange(len(episode)) for episode in actions]),
        "episodes": episodes,
    }


def evaluate(policy, environment, episodes_horizon, action=None):
    """Runs the greedy `policy` for one episode in each environment of the batch; returns the true returns.

    Episodes end at the environment's end (or the fixed horizon); rewards after an environment's first end are not
    counted. `action`: the policy's action function already wrapped in `tf.function` (a run evaluating many times
    passes one, traced once); by default one is made for this call.
    """
    action = action or tf.function(policy.action)
    time_step = environment.reset()
    batch = environment.batch_size
    returns = np.zeros(batch, np.float64)
    done = np.zeros(batch, bool)
    state = policy.get_initial_state(batch)
    for _ in range(episodes_horizon):
        step = action(time_step, state)
        state = step.state
        time_step = environment.step(step.action)
        returns += np.where(done, 0.0, time_step.reward.numpy())
        done |= time_step.is_last().numpy()
        if done.all():
            break
    return returns


def record_demonstrations(policy, make_env, episodes, horizon, path, fixed_horizon=False):
    """Writes `episodes` episodes of `policy` as demonstration JSONL (see `load_demonstrations`); returns returns.

    With `fixed_horizon` an episode's record ends where the environment's own episode ended: the absorbing failed
    steps that pad it to the horizon are the wrapper's, not the demonstrator's (kept, they would teach an
    adversarial reward that the failed state is expert-like).
    """
    environment = control_agents.batched_environment(make_env, episodes)
    action = tf.function(policy.action)
    time_step = environment.reset()
    state = policy.get_initial_state(episodes)
    observations = [[] for _ in range(episodes)]
    actions = [[] for _ in range(episodes)]
    returns = np.zeros(episodes)
    done = np.zeros(episodes, bool)
    for _ in range(horizon):
        step = action(time_step, state)
        state = step.state
        if fixed_horizon:
            done |= time_step.observation.numpy()[:, -1] == 1  # the failed state's flag (FixedHorizon)
        for index in np.flatnonzero(~done):
            observations[index].append(time_step.observation.numpy()[index].tolist())
            actions[index].append(step.action.numpy()[index].tolist())
        time_step = environment.step(step.action)
        returns += np.where(done, 0.0, time_step.reward.numpy())
        done |= time_step.is_last().numpy()
        if done.all():
            break
    lines = [json.dumps({"observations": o, "actions": a}) for o, a in zip(observations, actions)]
    files.atomic_write_text(path, "\n".join(lines) + "\n")
    return returns


def train_control(config):
    """Runs a control run (see the module docstring); returns the final metrics (also in metrics.json)."""
    config = resolve(config)
    started = time.perf_counter()
    hp = config.agent_hp
    iterations = max(1, config.env_steps // (hp.num_envs * hp.steps_per_env))
    loop_config = training.LoopConfig(
        steps=iterations,
        log_every=max(1, min(10, iterations // 20 or 1)),
        checkpoint_every=max(1, iterations // 5),
        eval_every=config.eval_every,
        seed=config.seed,
        progress=config.progress,
    )
    loop = training.TrainLoop(loop_config, config.output_dir, run_config=config, metrics_prefix="control")
    loop.shown_metrics = ("true_return_train", "labels_used", "reward_accuracy")
    train_horizon = config.horizon or None
    fixed = config.fixed_horizon

    # Every environment has its own seed, from the run's: training, evaluation and recording never share one.
    def make_train_env(index):
        seed = config.seed * 10_000 + index
        return control_envs.load(config.env, horizon=train_horizon, fixed_horizon=fixed, seed=seed)

    def make_eval_env(index, offset=5_000):
        seed = config.seed * 10_000 + offset + index
        return control_envs.load(config.env, horizon=config.eval_horizon or None, fixed_horizon=fixed, seed=seed)

    environment = control_agents.batched_environment(make_train_env, hp.num_envs)
    eval_environment = control_agents.batched_environment(make_eval_env, config.eval_episodes)
    eval_horizon = config.eval_horizon or _time_limit(config.env)
    agent = control_agents.make_agent(config.agent, environment, hp, iterations)
    observation_size = environment.observation_spec().shape[0]
    action_spec = environment.action_spec()
    num_actions = int(action_spec.maximum - action_spec.minimum + 1) if action_spec.dtype.is_integer else 0
    action_size = 1 if num_actions else int(np.prod(action_spec.shape))

    learned = None
    rounds = None
    checkpoint = dict(agent.checkpoint_objects())
    if config.reward == "preferences":
        learned = segment_preference.PreferenceReward(
            observation_size,
            num_actions,
            config.segment_length,
            capacity=config.num_labels,
            action_size=action_size,
            ensemble_size=config.ensemble_size,
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
            config.output_dir, teacher=teacher, store_path=config.store, env_name=config.env, fixed_horizon=fixed
        )
        checkpoint.update(learned.checkpoint_objects())
    adversarial = None
    demonstrations = None
    if config.demonstrations:
        demonstrations = load_demonstrations(config.demonstrations)
        configs.require(
            demonstrations["observations"].shape[1] == observation_size,
            "The demonstrations' observations do not match the environment's (with the fixed horizon, observations "
            "carry one extra last feature, 0 while the episode runs).",
            demonstration_features=demonstrations["observations"].shape[1],
            environment_features=observation_size,
        )
    if config.reward == "adversarial":
        expert, absorbing = demonstrations, None
        if fixed:
            # The demonstrator never reaches the fixed horizon's failed state: it is always among the agent's
            # samples. And the expert's occupancy is matched over the horizon the agent trains on: later steps
            # (a 500-step demonstrator drifts along the track) rewarded drifting the agent could not yet do.
            absorbing = np.zeros(observation_size, np.float32)
            absorbing[-1] = 1
            if config.horizon:
                keep = demonstrations["steps"] < config.horizon
                expert = {key: demonstrations[key][keep] for key in ("observations", "actions")}
        adversarial = irl.AdversarialReward(
            observation_size,
            num_actions,
            expert,
            action_size=action_size,
            absorbing_observation=absorbing,
            seed=config.seed,
        )
        checkpoint.update(adversarial.checkpoint_objects())

    resuming = tf.train.latest_checkpoint(loop.run_directory.checkpoint_dir) is not None
    state = {"last_label_id": 0, "round": 0, "label_ids": []}
    if learned is not None:
        # Labels live in the store and segments on disk: rebuild the label arrays before the checkpoint restores the
        # ensemble (the arrays are not part of it).
        state["last_label_id"], rows, state["label_ids"] = rounds.labels()
        learned.add_labels(rows)
        state["round"] = len(rounds.rounds_done())
    if not resuming and demonstrations is not None and config.bc_steps:
        bc_loss = control_agents.behavioral_cloning(agent, demonstrations, config.bc_steps, seed=config.seed)
        logging.info("Behavioural cloning: %d steps, final loss %.4f.", config.bc_steps, bc_loss)

    reward_fn = _reward_function(config.reward, learned, adversarial)

    def label_round(iteration):
        target = label_target(config, iteration, iterations)
        asked = rounds.asked_count()
        metrics = {}
        if target > asked:
            need = target - asked
            segments = preferences.sample_segments(agent.replay_buffer, max(64, 2 * need), config.segment_length)
            if len(segments["rewards"]) >= 2:
                pairs, spread = preferences.choose_pairs(
                    segments,
                    need,
                    config.pair_selection,
                    learned if learned.num_labels else None,
                    np.random.default_rng([config.seed, iteration]),
                )
                rounds.ask(segments, pairs, spread, state["round"])
                state["round"] += 1
                metrics["disagreement"] = float(np.mean(spread))
        if teacher is not None:
            rounds.answer_pending()
        else:
            rounds.wait_for_answers(config.label_timeout, report=lambda waiting: _report_waiting(waiting, rounds))
        withdrawn = rounds.withdrawn(state["label_ids"]) if teacher is None else 0  # only people undo
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

    def iteration(step):
        if step == 0 or int(agent.replay_buffer.num_frames()) == 0:
            agent.warm_up()
        agent.collect()
        metrics = {}
        if learned is not None:
            metrics.update(label_round(step))
            metrics["labels_used"] = float(learned.num_labels)
        if adversarial is not None:
            metrics["discriminator_loss"] = adversarial.fit(agent.replay_buffer)
        if learned is None or learned.num_labels:
            metrics["agent_loss"] = agent.train(reward_fn, step)
        metrics["true_return_train"] = float(agent.returns.result())
        metrics["env_steps"] = float((step + 1) * agent.steps_per_iteration)
        return metrics

    greedy_action = tf.function(agent.policy.action)

    def evaluate_hook(step):
        returns = evaluate(agent.policy, eval_environment, eval_horizon, greedy_action)
        return {
            "control/true_return_mean": float(np.mean(returns)),
            "control/true_return_std": float(np.std(returns)),
            "control/true_return_min": float(np.min(returns)),
        }

    description = f"control {config.agent} on {config.env}"
    metrics = loop.run_iterations(iteration, checkpoint, evaluate=evaluate_hook, description=description)
    metrics["control/labels_used"] = float(learned.num_labels) if learned is not None else 0.0
    metrics["control/env_steps"] = float(iterations * agent.steps_per_iteration)
    metrics["control/fixed_horizon"] = float(fixed)
    metrics["control/seconds"] = time.perf_counter() - started
    if rounds is not None:
        rounds.close()
    run_directory = loop.run_directory
    if run_directory.chief:
        export_policy(agent.policy, run_directory.export_dir("policy"), agent.agent.train_step_counter)
        plot_learning_curves(run_directory, config.horizon or None, eval_horizon)
        if config.record_demonstrations:
            returns = record_demonstrations(
                agent.policy,
                lambda index: make_eval_env(index, offset=8_000),
                config.record_demonstrations,
                eval_horizon,
                os.path.join(config.output_dir, DEMONSTRATIONS_FILE),
                fixed_horizon=fixed,
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


def _time_limit(env_name):

    return gym.spec(env_name).max_episode_steps or 1000


def export_policy(policy, path, train_step=None):
    """Saves `policy` with TF-Agents' PolicySaver (the CONTRACTS.md control-policy layout), atomically."""

    saver = policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step)
    # `distribution` returns TFP distribution objects, and decoding their TypeSpecs at load time needs
    # tensorflow_probability imported first. The exported policy is greedy, so it is left out: the SavedModel then
    # loads with TensorFlow alone (CONTRACTS.md); the signatures (`action`, `get_initial_state`, `get_train_step`,
    # `get_metadata`) are PolicySaver's.
    delattr(saver._policy, "distribution")
    return export_lib.write_directory(path, saver.save)


def plot_learning_curves(run_directory, train_horizon=None, eval_horizon=None):
    """plots/learning_curves.png: true return (training episodes and evaluations), labels and reward accuracy."""
    scalars = training.read_scalars(run_directory.tensorboard_dir)
    figure, axes = plots.new_figure(columns=2, size=(11, 4))
    steps, returns = plots.series(scalars, "control/true_return_train")
    env_steps = dict(scalars.get("control/env_steps", []))
    train_label = f"training episodes ({train_horizon} steps)" if train_horizon else "training episodes"
    axes[0].plot([env_steps.get(step, step) for step in steps], returns, label=train_label)
    eval_steps, eval_returns = plots.series(scalars, "control/true_return_mean")
    if eval_steps:
        eval_label = f"evaluation, greedy ({eval_horizon} steps)" if eval_horizon else "evaluation, greedy"
        axes[0].plot([env_steps.get(step, step) for step in eval_steps], eval_returns, "o-", label=eval_label)
    axes[0].set_xlabel("environment steps")
    axes[0].set_ylabel("true return")
    axes[0].legend()
    label_steps, labels = plots.series(scalars, "control/labels_used")
    if label_steps:
        axes[1].plot([env_steps.get(step, step) for step in label_steps], labels, label="labels used")
        axes[1].set_ylabel("labels")
        twin = axes[1].twinx()
        accuracy_steps, accuracy = plots.series(scalars, "control/reward_accuracy")
        twin.plot([env_steps.get(step, step) for step in accuracy_steps], accuracy, "g.", label="reward accuracy")
        twin.set_ylabel("reward model accuracy on labels")
    axes[1].set_xlabel("environment steps")
    path = run_directory.plot_path("learning_curves.png")
    return plots.save_png(figure, path)
