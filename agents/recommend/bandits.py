"""TF-Agents contextual bandits over per-arm features, and the slate policy built on them.

An agent sees a visit's context and its candidates' features (`rlhf_tf.envs.recommend.RecommendEnvironment`) and
picks one candidate; the environment pays the learned reward (or, for the oracle, the hidden satisfaction).
Training is TF-Agents' own: a `DynamicStepDriver` fills a replay buffer with `steps_per_loop` steps, the agent trains
on everything gathered, the buffer is cleared (as TF-Agents' bandit trainer does).

Agents (`AGENTS`):
- "neural-epsilon-greedy": a reward network (a global tower, an arm tower and a common tower), epsilon-greedy;
- "neural-lin-ucb": the same network's last layer as the features of LinUCB (exploration by confidence);
- "lin-ucb" and "lin-ts": linear in the concatenated context and arm features, by upper confidence or Thompson
  sampling.

The slate policy ranks a visit's candidates by the agent's greedy predicted reward (`predicted_rewards`: the
reward network for the epsilon-greedy agent, `predicted_rewards_mean` policy info for the others) and shows the
top k: the single-item bandit's estimate drives the list, as in a two-stage recommender.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from tf_agents.bandits.agents import (
    lin_ucb_agent,
    linear_thompson_sampling_agent,
    neural_epsilon_greedy_agent,
    neural_linucb_agent,
)
from tf_agents.bandits.networks import global_and_arm_feature_network
from tf_agents.bandits.policies import policy_utilities
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import tf_py_environment
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import time_step as ts

from rlhf_tf import configs

AGENTS = ("neural-epsilon-greedy", "neural-lin-ucb", "lin-ucb", "lin-ts")
PREDICTED = policy_utilities.InfoFields.PREDICTED_REWARDS_MEAN


@dataclasses.dataclass(frozen=True)
class BanditHyperparameters:
    """Attributes:
    steps: driver steps of online training (each `batch_size` visits).
    batch_size: visits per driver step.
    steps_per_loop: driver steps gathered before each training pass.
    epsilon: exploration of the epsilon-greedy agent.
    alpha: exploration of the UCB agents (confidence width).
    learning_rate: Adam's, for the neural agents.
    layers: the common tower's widths (the global and arm towers have the first width).
    train_epochs: passes over each gathered batch (neural agents).
    """

    steps: int = 400
    batch_size: int = 16
    steps_per_loop: int = 4
    epsilon: float = 0.1
    alpha: float = 0.5
    learning_rate: float = 3e-3
    layers: tuple = (64, 32)
    train_epochs: int = 4

    def __post_init__(self):
        configs.require(self.steps >= self.steps_per_loop >= 1, "Need steps >= steps_per_loop >= 1.", steps=self.steps)
        configs.require(self.batch_size >= 1, "`batch_size` must be >= 1.", batch_size=self.batch_size)
        configs.require(0.0 <= self.epsilon <= 1.0, "`epsilon` must be in [0, 1].", epsilon=self.epsilon)
        configs.require(bool(self.layers), "Give the network at least one layer.", layers=self.layers)


def make_agent(name, time_step_spec, action_spec, hp):
    """A TF-Agents bandit agent accepting per-arm features (see the module docstring), emitting predicted rewards."""
    configs.require(name in AGENTS, f"Agents are {list(AGENTS)}.", agent=name)
    observation_spec = time_step_spec.observation
    info = (PREDICTED,)
    if name in ("lin-ucb", "lin-ts"):
        cls = (
            lin_ucb_agent.LinearUCBAgent
            if name == "lin-ucb"
            else linear_thompson_sampling_agent.LinearThompsonSamplingAgent
        )
        kwargs = {"alpha": hp.alpha} if name == "lin-ucb" else {}
        return cls(
            time_step_spec,
            action_spec,
            accepts_per_arm_features=True,
            emit_policy_info=info,
            dtype=tf.float32,
            **kwargs,
        )
    width = hp.layers[0]
    network = global_and_arm_feature_network.create_feed_forward_common_tower_network(
        observation_spec,
        global_layers=(width,),
        arm_layers=(width,),
        common_layers=hp.layers,
        # NeuralLinUCB's network is an encoder whose output LinUCB reads; the epsilon-greedy one predicts the reward.
        output_dim=1 if name == "neural-epsilon-greedy" else hp.layers[-1],
    )
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=hp.learning_rate)
    if name == "neural-epsilon-greedy":
        return neural_epsilon_greedy_agent.NeuralEpsilonGreedyAgent(
            time_step_spec,
            action_spec,
            reward_network=network,
            optimizer=optimizer,
            epsilon=hp.epsilon,
            accepts_per_arm_features=True,
            emit_policy_info=info,
        )
    return neural_linucb_agent.NeuralLinUCBAgent(
        time_step_spec,
        action_spec,
        encoding_network=network,
        encoding_network_num_train_steps=hp.steps // hp.steps_per_loop // 2,
        encoding_dim=hp.layers[-1],
        optimizer=optimizer,
        alpha=hp.alpha,
        accepts_per_arm_features=True,
        emit_policy_info=info,
    )


class BanditTrainer:
    """Online training of `agent` in a py `environment` through a TF-Agents driver and replay buffer.

    `train(loops)` runs that many loops of (collect `steps_per_loop` driver steps, train, clear); `loops_done`
    counts them (it is checkpointed with the agent by the caller's `checkpoint_objects`).
    """

    def __init__(self, agent, environment, hp):
        self.agent, self.hp = agent, hp
        self.environment = tf_py_environment.TFPyEnvironment(environment)
        self.replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            agent.policy.trajectory_spec, batch_size=self.environment.batch_size, max_length=hp.steps_per_loop
        )
        self._collected = []
        self.driver = dynamic_step_driver.DynamicStepDriver(
            self.environment,
            agent.collect_policy,
            num_steps=hp.steps_per_loop * self.environment.batch_size,
            observers=[self.replay_buffer.add_batch, self._observe],
        )
        self.loops_done = tf.Variable(0, dtype=tf.int64, trainable=False)

    def _observe(self, trajectory):
        self._collected.append(trajectory.reward)

    def checkpoint_objects(self):
        return {"agent": self.agent, "loops_done": self.loops_done}

    @property
    def total_loops(self):
        return self.hp.steps // self.hp.steps_per_loop

    def train(self, loops=None):
        """Runs `loops` loops (default: the rest of `hp.steps`); returns the mean collected reward per loop."""
        remaining = self.total_loops - int(self.loops_done.numpy())
        loops = remaining if loops is None else min(loops, remaining)
        means = []
        for _ in range(loops):
            self._collected = []
            self.driver.run()
            experience = self.replay_buffer.gather_all()
            for _ in range(self.hp.train_epochs if self.agent.name.startswith("neural") else 1):
                self.agent.train(experience)
            self.replay_buffer.clear()
            self.loops_done.assign_add(1)
            means.append(float(np.mean([r.numpy().mean() for r in self._collected])))
        return means


def predicted_rewards(agent, observations, batch_size=512):
    """[visits, candidates] the greedy policy's predicted reward of every candidate (`observations`: per-arm numpy).

    The epsilon-greedy agent's scores come from its reward network: in TF-Agents 0.19 its greedy policy's
    `predicted_rewards_mean` info holds uninitialised values for some batches (seen: ~4e37 in rows the network scores
    near 0.3), while the actions it takes are right. The other agents' info is read as TF-Agents emits it."""
    count = len(observations["global"])
    rows = []
    network = getattr(agent, "_reward_network", None) if agent.name.startswith("neural_epsilon") else None
    for start in range(0, count, batch_size):
        part = {name: tf.constant(values[start : start + batch_size]) for name, values in observations.items()}
        if network is not None:
            rows.append(network(part, training=False)[0].numpy())
            continue
        step = ts.restart(part, batch_size=len(part["global"]))
        rows.append(agent.policy.action(step).info.predicted_rewards_mean.numpy())
    return np.concatenate(rows)


def top_k(scores, k):
    """[visits, k] indices of the k highest scores of each row, best first (ties: lower index first)."""
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
