"""Control environments through TF-Agents' `suite_gym`, with a fixed horizon.

Why a fixed horizon (Christiano et al. 2017): when an episode ends as soon as the agent fails, the episode's length
carries reward information by itself. On CartPole any positive constant reward then "solves" the task (living
longer collects more of it), and a centred learned reward teaches the agent to fall at once. `FixedHorizon` removes
the leak: every episode lasts exactly `horizon` steps; after a failure the agent stays in one absorbing "failed"
observation (all zeros but a last feature set to 1) with true reward 0 until the horizon. A single failed state
matters: freezing the last real observation instead lets an agent exploit a learned reward by choosing how to fall.

Observations gain one feature: 0 while the wrapped episode runs, 1 in the failed state.
"""

import gym
import numpy as np
from tf_agents.environments import suite_gym, wrappers
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from rlhf_tf import configs


class FixedHorizon(wrappers.PyEnvironmentBaseWrapper):
    """Episodes of exactly `horizon` steps; an early end becomes an absorbing failed state with reward 0.

    Args:
      env: a (non-batched) PyEnvironment with a rank-1 observation (suite_gym environments).
      horizon: steps per episode.
    """

    def __init__(self, env, horizon):
        super().__init__(env, handle_auto_reset=True)
        configs.require_positive(horizon=horizon)
        self.horizon = int(horizon)
        spec = env.observation_spec()
        configs.require(
            len(spec.shape) == 1, "FixedHorizon needs rank-1 observations.", observation_shape=tuple(spec.shape)
        )
        size = spec.shape[0]
        low = np.broadcast_to(getattr(spec, "minimum", -np.inf), (size,)).astype(spec.dtype)
        high = np.broadcast_to(getattr(spec, "maximum", np.inf), (size,)).astype(spec.dtype)
        self._observation_spec = array_spec.BoundedArraySpec(
            (size + 1,),
            spec.dtype,
            minimum=np.minimum(np.append(low, 0), 0).astype(spec.dtype),
            maximum=np.maximum(np.append(high, 1), 0).astype(spec.dtype),
            name=spec.name,
        )
        self.failed_observation = np.zeros(size + 1, spec.dtype)
        self.failed_observation[-1] = 1
        self._steps = 0
        self._failed = False
        self.failures = 0  # episodes that ended early, since construction

    def observation_spec(self):
        return self._observation_spec

    def _augment(self, observation):
        return np.append(observation, 0).astype(self._observation_spec.dtype)

    def _reset(self):
        self._steps, self._failed = 0, False
        first = self._env.reset()
        return ts.restart(self._augment(first.observation))

    def _step(self, action):
        self._steps += 1
        if self._failed:
            observation, reward = self.failed_observation, np.float32(0.0)
        else:
            inner = self._env.step(action)
            reward = np.float32(inner.reward)
            if inner.is_last() and self._steps < self.horizon:
                self._failed = True
                self.failures += 1
            observation = self.failed_observation if self._failed else self._augment(inner.observation)
        if self._steps >= self.horizon:
            return ts.truncation(observation, reward)
        return ts.transition(observation, reward)


def load(env_name, horizon=None, fixed_horizon=True, seed=None):
    """A gym environment as a TF-Agents PyEnvironment.

    Args:
      env_name: a gym id ("CartPole-v1", "Pendulum-v1", "MountainCar-v0", "Acrobot-v1", ...).
      horizon: steps per episode (default: the environment's own time limit).
      fixed_horizon: wrap in `FixedHorizon` (the default for preference runs); False keeps the environment's own
        episode ends.
      seed: seeds the environment's random number generator (initial states); None leaves it to gym, which draws
        from the operating system (runs are then not repeatable).
    """

    limit = horizon or gym.spec(env_name).max_episode_steps
    env = suite_gym.load(env_name, max_episode_steps=limit)
    if seed is not None:
        env.gym.reset(seed=int(seed))  # gym 0.23 seeds through reset; later resets go on from this generator
    return FixedHorizon(env, limit) if fixed_horizon else env
