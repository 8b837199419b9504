"""Demonstrations for control: JSONL episodes read for behavioural cloning and inverse RL, written from a trained
policy (`rlhf-tf control --record_demonstrations=N`), and cloned into an agent's network before RL."""

import json

import numpy as np
import tensorflow as tf
import tf_keras
from tf_agents.agents.behavioral_cloning import behavioral_cloning_agent
from tf_agents.trajectories import trajectory as trajectory_lib
from tf_agents.utils import common

from rlhf_tf import configs, files
from rlhf_tf.agents.control import factories as control_agents
from rlhf_tf.errors import UserInputError


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


def behavioral_cloning(control_agent, demonstrations, steps, batch_size=64, learning_rate=1e-3, seed=0):
    """Pretrains the agent's policy network on demonstrations (maximum likelihood of the demonstrated actions).

    Uses TF-Agents' `BehavioralCloningAgent` over the agent's own actor network (PPO, REINFORCE, SAC) or Q-network
    (DQN, whose greedy action then imitates the demonstrator), so the pretrained weights are the ones RL goes on
    training. `demonstrations`: {"observations": [N, D], "actions": [N, ...]} of (observation, action) pairs.
    Returns the final loss.
    """
    agent = control_agent.agent
    network = next(
        (
            getattr(agent, name)
            for name in ("_actor_net", "_actor_network", "_q_network")  # PPO; REINFORCE and SAC; DQN
            if getattr(agent, name, None) is not None
        ),
        None,
    )
    configs.require(network is not None, "This agent has no network to clone into.", agent=control_agent.kind)
    time_step_spec = control_agent.environment.time_step_spec()
    action_spec = control_agent.environment.action_spec()
    cloning = behavioral_cloning_agent.BehavioralCloningAgent(
        time_step_spec,
        action_spec,
        cloning_network=network,
        optimizer=tf_keras.optimizers.Adam(learning_rate=learning_rate),
    )
    cloning.initialize()
    observations = np.asarray(demonstrations["observations"], np.float32)
    actions = np.asarray(demonstrations["actions"])
    action_dtype = action_spec.dtype.as_numpy_dtype
    rng = np.random.default_rng(seed)

    def batch(index):
        count = len(index)
        return trajectory_lib.Trajectory(
            step_type=tf.ones([count], tf.int32),
            observation=tf.constant(observations[index]),
            action=tf.constant(actions[index].astype(action_dtype)),
            policy_info=(),
            next_step_type=tf.ones([count], tf.int32),
            reward=tf.zeros([count]),
            discount=tf.ones([count]),
        )

    train = common.function(cloning.train)
    loss = float("nan")
    for _ in range(steps):
        loss = float(train(batch(rng.integers(0, len(observations), size=batch_size))).loss)
    return loss
