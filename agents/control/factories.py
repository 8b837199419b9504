"""Control agents as thin factories over TF-Agents: PPO (actor-critic), REINFORCE (policy gradient), DQN
(Q-learning), SAC (continuous actions) and behavioural cloning.

Each factory returns a `ControlAgent`: the TF-Agents agent, its replay buffer, a `DynamicStepDriver` that collects
with the agent's collect policy into that buffer (the one buffer is also where preference segments are cut from:
two `add_batch` observers on one driver hang, STACK.md), and a compiled `train(reward)` that trains on the
buffer's experience with the environment's reward replaced by `reward` (a function over whole trajectory batches,
run inside the compiled step). TF-Agents networks are tf_keras (STACK.md); so are their optimizers.

- on-policy (PPO, REINFORCE): each iteration collects `num_envs x steps_per_env` steps, trains on all of them
  (PPO: `num_epochs` full-batch epochs, TF-Agents' own clipping and GAE), then clears the buffer;
- off-policy (DQN, SAC): each iteration collects `num_envs x steps_per_env` steps into a replay buffer and runs
  `train_steps` gradient steps inside one `tf.function` on minibatches sampled from it, relabelled with the current
  learned reward (so old experience is always scored by the newest reward model).
"""

import dataclasses

import tensorflow as tf
import tf_keras
from tf_agents.agents.ddpg import critic_network
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import batched_py_environment, tf_py_environment
from tf_agents.metrics import tf_metrics
from tf_agents.networks import actor_distribution_network, q_network, value_network
from tf_agents.policies import greedy_policy, random_tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.utils import common

from rlhf_tf import configs

AGENTS = ("ppo", "reinforce", "dqn", "sac")


@dataclasses.dataclass(frozen=True)
class AgentHyperparameters:
    """Settings of the TF-Agents agent; `defaults(agent, env)` gives tested ones per agent and environment.

    Attributes:
      num_envs: environments stepped together (one batched TF environment).
      steps_per_env: environment steps each environment takes per iteration.
      hidden_sizes: widths of the policy, value, Q and critic networks.
      learning_rate: Adam's learning rate (every network of the agent).
      discount: the agent's gamma.
      num_epochs: PPO's full-batch epochs per iteration.
      entropy: PPO/REINFORCE entropy bonus.
      gradient_clipping: PPO's global-norm clipping (over actor and value gradients together; 0 turns it off).
      normalize_rewards: PPO divides rewards by a running std (TF-Agents' normaliser: no centring, clipped at 10; a
        constant reward has std 0 and is clipped to 10 every step).
      train_steps: DQN/SAC gradient steps per iteration.
      batch_size: DQN/SAC minibatch size.
      replay_capacity: DQN/SAC replay buffer size (steps, all environments together).
      initial_steps: DQN/SAC random-policy steps collected before training.
      target_update_period: DQN target network update period, in train calls; SAC's is 1 with `tau`.
      tau: the soft target update rate: SAC's every train call, DQN's every `target_update_period` (1 copies).
      epsilon_start, epsilon_end, epsilon_fraction: DQN's epsilon-greedy schedule, annealed over the first
        `epsilon_fraction` of the run.
      final_learning_rate: the learning rate at the end of the run as a share of `learning_rate` (1 keeps it
        constant); it decays linearly from `decay_from` (a share of the run's gradient steps) to the end.
      decay_from: where the learning-rate decay starts.
      reward_scale: DQN's rewards are multiplied by this in its TD targets (TF-Agents' `reward_scale_factor`).
      n_step: DQN's TD targets sum this many rewards before bootstrapping (TF-Agents' `n_step_update`); samples
        that would sum across an episode boundary get weight 0.
    """

    num_envs: int = 16
    steps_per_env: int = 128
    hidden_sizes: tuple = (64, 64)
    learning_rate: float = 1e-3
    discount: float = 0.99
    num_epochs: int = 10
    entropy: float = 0.0
    normalize_rewards: bool = True
    gradient_clipping: float = 0.5
    train_steps: int = 16
    batch_size: int = 64
    replay_capacity: int = 50_000
    initial_steps: int = 1000
    target_update_period: int = 100
    tau: float = 0.005
    epsilon_start: float = 1.0
    epsilon_end: float = 0.02
    epsilon_fraction: float = 0.3
    final_learning_rate: float = 1.0
    decay_from: float = 0.0
    reward_scale: float = 1.0
    n_step: int = 1

    def __post_init__(self):
        configs.require_positive(
            num_envs=self.num_envs,
            steps_per_env=self.steps_per_env,
            learning_rate=self.learning_rate,
            num_epochs=self.num_epochs,
            train_steps=self.train_steps,
            batch_size=self.batch_size,
            replay_capacity=self.replay_capacity,
            target_update_period=self.target_update_period,
            n_step=self.n_step,
        )
        configs.require(0 < self.discount <= 1, "`discount` must be in (0, 1].", discount=self.discount)


_DEFAULTS = {
    # PPO keeps its learning rate: holding it while labels arrive and then decaying it to 5% (as DQN does) was tried
    # on CartPole from 1000 labels: seed 1 fell from 500 to 158.2 (its policy had dropped during labelling, and the
    # decayed rate left it there).
    "ppo": dict(num_envs=8, steps_per_env=64, learning_rate=1e-3, num_epochs=10),
    "reinforce": dict(num_envs=16, steps_per_env=200, learning_rate=3e-3),
    # DQN: 256 steps collected, then 128 gradient steps, epsilon annealed over the first 16% (the rl-baselines3-zoo
    # CartPole settings, in TF-Agents' units); the learning rate holds while labels arrive (the first half) and then
    # falls to 5%. Three changes from the zoo make late collapses rarer (issue 24; tuned on seeds 100-103, swept on
    # 0-9 by benchmarks/control_seeds.py: 8 of 10 at 450, from 6). The learned reward is all but constant over live
    # states (1.3 a step, -0.8 in the failed state on seed 102), so Q-values only grow, and a target copied every 128
    # steps let them overshoot (seed 100: mean live Q 864 before its policy fell, where measured live rewards of
    # 0.9-1.6 a step put the fixed point at 90-160): the target is copied every 512. Copies that rare propagate
    # values one step per copy, so the greedy policy saw only ~100 steps ahead and let the cart drift off the track
    # (the failed evaluations we looked at all ended at the edge, |x| = 2.4): 3-step returns see three times as far
    # per copy. And the buffer holds the whole run (100k), so failures stay in it. The two seeds in ten that still
    # fail drift off the track too.
    "dqn": dict(
        num_envs=4,
        steps_per_env=64,
        hidden_sizes=(256, 256),
        learning_rate=2.3e-3,
        final_learning_rate=0.05,
        decay_from=0.5,
        train_steps=128,
        batch_size=64,
        replay_capacity=100_000,
        target_update_period=512,
        tau=1.0,
        n_step=3,
        epsilon_end=0.04,
        epsilon_fraction=0.16,
    ),
    "sac": dict(
        num_envs=1,
        steps_per_env=50,
        hidden_sizes=(256, 256),
        learning_rate=3e-4,
        train_steps=50,
        batch_size=256,
        initial_steps=1000,
    ),
}


def defaults(agent, reward="true"):
    """Tested settings for `agent`. A learned preference reward is already normalised (unit std over the labelled
    segments), so PPO's own reward normaliser is off for it: rescaling again by the running std of the agent's
    recent rewards, which shrinks once the agent is good, blew up the value targets and undid solved runs."""
    configs.require(agent in AGENTS, f"`agent` must be one of {list(AGENTS)}.", agent=agent)
    settings = dict(_DEFAULTS[agent])
    if reward == "preferences":
        settings["normalize_rewards"] = False
    return AgentHyperparameters(**settings)


def batched_environment(make_env, count):
    """`count` Python environments `make_env(index)` stepped together as one TF environment (in this process)."""
    return tf_py_environment.TFPyEnvironment(
        batched_py_environment.BatchedPyEnvironment([make_env(index) for index in range(count)], multithreading=False)
    )


class ControlAgent:
    """A TF-Agents agent with its collection and training machinery (see the module docstring).

    Attributes:
      agent: the TF-Agents agent.
      policy: the greedy policy evaluated and exported.
      replay_buffer: the buffer the driver fills; segments are cut from it.
      steps_per_iteration: environment steps collected per `collect()`.
    """

    def __init__(self, kind, agent, environment, hyperparameters, total_iterations, greedy=None):
        self.kind = kind
        self.agent = agent
        self.environment = environment
        self.hp = hyperparameters
        self.policy = greedy or agent.policy
        self.steps_per_iteration = hyperparameters.num_envs * hyperparameters.steps_per_env
        self.on_policy = kind in ("ppo", "reinforce")
        max_length = (
            hyperparameters.steps_per_env + 1
            if self.on_policy
            else max(hyperparameters.replay_capacity // hyperparameters.num_envs, hyperparameters.steps_per_env)
        )
        self.replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            agent.collect_data_spec, batch_size=environment.batch_size, max_length=max_length
        )
        # True returns of finished training episodes (the environment's reward: what a person would judge).
        self.returns = tf_metrics.AverageReturnMetric(batch_size=environment.batch_size, buffer_size=20)
        self.episodes = tf_metrics.NumberOfEpisodes()
        observers = [self.replay_buffer.add_batch, self.returns, self.episodes]
        self.driver = dynamic_step_driver.DynamicStepDriver(
            environment, agent.collect_policy, observers=observers, num_steps=self.steps_per_iteration
        )
        self._collect = common.function(self.driver.run)
        self.total_iterations = total_iterations
        self._train_fns = {}
        if not self.on_policy and hyperparameters.initial_steps:
            self._random_driver = dynamic_step_driver.DynamicStepDriver(
                environment,
                random_tf_policy.RandomTFPolicy(environment.time_step_spec(), environment.action_spec()),
                observers=[self.replay_buffer.add_batch],
                num_steps=hyperparameters.initial_steps,
            )
        self._time_step = None

    def checkpoint_objects(self):
        return {
            "agent": self.agent,
            "replay_buffer": self.replay_buffer,
            "train_returns": self.returns,
            "train_episodes": self.episodes,
        }

    def warm_up(self):
        """Off-policy agents fill the replay buffer with random-policy steps first (skipped when resumed)."""
        if not self.on_policy and self.hp.initial_steps and int(self.replay_buffer.num_frames()) == 0:
            common.function(self._random_driver.run)()

    def collect(self):
        self._time_step, _ = self._collect(self._time_step)

    def train(self, reward, iteration):
        """Trains on the collected experience with `reward(trajectory) -> trajectory` applied; returns the loss."""
        if self.kind == "dqn":
            progress = min(1.0, iteration / max(1.0, self.hp.epsilon_fraction * self.total_iterations))
            self._epsilon.assign(self.hp.epsilon_start + progress * (self.hp.epsilon_end - self.hp.epsilon_start))
        if self.on_policy:
            experience = self.replay_buffer.gather_all()
            loss = self._train_function(reward)(experience)
            self.replay_buffer.clear()
            return float(loss)
        return float(self._train_function(reward)(tf.constant(self.hp.train_steps)))

    def _train_function(self, reward):
        key = id(reward)
        if key not in self._train_fns:
            if self.on_policy:

                def train(experience):
                    return self.agent.train(reward(experience)).loss

            else:

                def train(steps):
                    # Minibatches are drawn inside the train step, in sequence with collection: a prefetching
                    # dataset would sample the buffer while the driver writes to it, and what it drew would
                    # depend on thread timing (an evaluation between iterations changed a run's outcome).
                    total = tf.constant(0.0)
                    frames = self.hp.n_step + 1 if self.kind == "dqn" else 2
                    for _ in tf.range(steps):
                        experience, _ = self.replay_buffer.get_next(
                            sample_batch_size=self.hp.batch_size, num_steps=frames
                        )
                        weights = within_one_episode(experience) if frames > 2 else None
                        total += self.agent.train(reward(experience), weights=weights).loss
                    return total / tf.cast(steps, tf.float32)

            self._train_fns[key] = common.function(train, autograph=True)
        return self._train_fns[key]


def within_one_episode(experience):
    """Weights of sampled sequences [batch, n + 1]: 1 where every transition but the last stays in one episode, 0
    where one crosses an episode boundary (an n-step return would add up rewards of two episodes)."""
    return tf.cast(tf.reduce_all(~experience.is_boundary()[:, :-1], axis=1), tf.float32)


class _HoldThenDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """`peak` until update `start`, then linearly down to `peak * final` at update `end`."""

    def __init__(self, peak, final, start, end):
        self.peak, self.final, self.start, self.end = float(peak), float(final), int(start), max(int(end), 1)

    def __call__(self, step):
        progress = (tf.cast(step, tf.float32) - self.start) / float(max(self.end - self.start, 1))
        return self.peak * (1.0 - (1.0 - self.final) * tf.clip_by_value(progress, 0.0, 1.0))

    def get_config(self):
        return {"peak": self.peak, "final": self.final, "start": self.start, "end": self.end}


def _optimizer(hp, total_steps=1):
    """Adam at `hp.learning_rate`; with `final_learning_rate` < 1, decayed linearly from `decay_from` of
    `total_steps` updates to the end."""
    if hp.final_learning_rate == 1.0:
        return tf_keras.optimizers.Adam(learning_rate=hp.learning_rate)
    schedule = _HoldThenDecay(hp.learning_rate, hp.final_learning_rate, hp.decay_from * total_steps, total_steps)
    return tf_keras.optimizers.Adam(learning_rate=schedule)


def make_agent(kind, environment, hp, total_iterations):
    """A `ControlAgent` of `kind` ("ppo", "reinforce", "dqn", "sac") for a batched TF environment."""
    configs.require(kind in AGENTS, f"`agent` must be one of {list(AGENTS)}.", agent=kind)
    action_spec = environment.action_spec()
    counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="agent_train_step")
    discrete = action_spec.dtype.is_integer
    configs.require(
        discrete or kind in ("ppo", "reinforce", "sac"),
        f"`{kind}` needs discrete actions; this environment's are continuous (use sac or ppo).",
        agent=kind,
    )
    configs.require(
        not discrete or kind != "sac", "`sac` needs continuous actions; use dqn, ppo or reinforce.", agent=kind
    )
    greedy = None
    epsilon = None
    specs = (environment.time_step_spec(), environment.observation_spec(), action_spec)
    if kind == "ppo":
        agent = _ppo_agent(*specs, hp, counter, total_iterations * hp.num_epochs)
    elif kind == "reinforce":
        agent = _reinforce_agent(*specs, hp, counter)
        greedy = greedy_policy.GreedyPolicy(agent.policy)
    elif kind == "dqn":
        agent, epsilon = _dqn_agent(*specs, hp, counter, total_iterations * hp.train_steps)
    else:
        agent = _sac_agent(*specs, hp, counter)
    agent.initialize()
    control_agent = ControlAgent(kind, agent, environment, hp, total_iterations, greedy=greedy)
    control_agent._epsilon = epsilon
    return control_agent


def _ppo_agent(time_step_spec, observation_spec, action_spec, hp, counter, total_updates):
    """PPOClipAgent with GAE (lambda 0.95) and tanh actor and value MLPs (one update per epoch: `total_updates`
    over the run)."""
    actor = actor_distribution_network.ActorDistributionNetwork(
        observation_spec, action_spec, fc_layer_params=hp.hidden_sizes, activation_fn=tf.nn.tanh
    )
    value = value_network.ValueNetwork(observation_spec, fc_layer_params=hp.hidden_sizes, activation_fn=tf.nn.tanh)
    return ppo_clip_agent.PPOClipAgent(
        time_step_spec,
        action_spec,
        optimizer=_optimizer(hp, total_updates),
        actor_net=actor,
        value_net=value,
        importance_ratio_clipping=0.2,
        lambda_value=0.95,
        discount_factor=hp.discount,
        entropy_regularization=hp.entropy,
        num_epochs=hp.num_epochs,
        use_gae=True,
        normalize_observations=False,
        normalize_rewards=hp.normalize_rewards,
        gradient_clipping=hp.gradient_clipping or None,
        train_step_counter=counter,
    )


def _reinforce_agent(time_step_spec, observation_spec, action_spec, hp, counter):
    """ReinforceAgent with a value baseline and normalised returns."""
    actor = actor_distribution_network.ActorDistributionNetwork(
        observation_spec, action_spec, fc_layer_params=hp.hidden_sizes, activation_fn=tf.nn.tanh
    )
    value = value_network.ValueNetwork(observation_spec, fc_layer_params=hp.hidden_sizes, activation_fn=tf.nn.tanh)
    return reinforce_agent.ReinforceAgent(
        time_step_spec,
        action_spec,
        actor_network=actor,
        value_network=value,
        optimizer=_optimizer(hp),
        gamma=hp.discount,
        normalize_returns=True,
        entropy_regularization=hp.entropy or None,
        train_step_counter=counter,
    )


def _dqn_agent(time_step_spec, observation_spec, action_spec, hp, counter, total_updates):
    """(double DQN with a Huber loss, its annealed epsilon variable)."""
    network = q_network.QNetwork(observation_spec, action_spec, fc_layer_params=hp.hidden_sizes)
    epsilon = tf.Variable(hp.epsilon_start, trainable=False, dtype=tf.float32, name="epsilon")
    agent = dqn_agent.DdqnAgent(
        time_step_spec,
        action_spec,
        q_network=network,
        optimizer=_optimizer(hp, total_updates),
        epsilon_greedy=lambda: epsilon,
        target_update_period=hp.target_update_period,
        target_update_tau=hp.tau,
        td_errors_loss_fn=common.element_wise_huber_loss,
        gamma=hp.discount,
        gradient_clipping=10.0,
        reward_scale_factor=hp.reward_scale,
        n_step_update=hp.n_step,
        train_step_counter=counter,
    )
    return agent, epsilon


def _sac_agent(time_step_spec, observation_spec, action_spec, hp, counter):
    """SacAgent for continuous actions (tanh-squashed normal actor, learned temperature)."""
    critic = critic_network.CriticNetwork(
        (observation_spec, action_spec),
        joint_fc_layer_params=hp.hidden_sizes,
        kernel_initializer="glorot_uniform",
        last_kernel_initializer="glorot_uniform",
    )
    actor = actor_distribution_network.ActorDistributionNetwork(
        observation_spec,
        action_spec,
        fc_layer_params=hp.hidden_sizes,
        continuous_projection_net=tanh_normal_projection_network.TanhNormalProjectionNetwork,
    )
    return sac_agent.SacAgent(
        time_step_spec,
        action_spec,
        actor_network=actor,
        critic_network=critic,
        actor_optimizer=_optimizer(hp),
        critic_optimizer=_optimizer(hp),
        alpha_optimizer=_optimizer(hp),
        target_update_tau=hp.tau,
        target_update_period=1,
        td_errors_loss_fn=tf.math.squared_difference,
        gamma=hp.discount,
        train_step_counter=counter,
    )
