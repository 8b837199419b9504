import numpy as np

from rlhf_tf.envs import control

HORIZON = 60


def _episode(env, rng):
    """(steps, true return, observations) of one random-action episode."""
    time_step = env.reset()
    steps, true_return, observations = 0, 0.0, []
    while not time_step.is_last():
        time_step = env.step(np.array(rng.integers(2), np.int64))
        steps += 1
        true_return += float(time_step.reward)
        observations.append(time_step.observation)
    return steps, true_return, observations


def test_fixed_horizon_keeps_every_episode_to_the_horizon_in_one_failed_state():
    env = control.load("CartPole-v1", horizon=HORIZON)
    assert env.observation_spec().shape == (5,)
    rng = np.random.default_rng(0)
    for _ in range(5):
        steps, true_return, observations = _episode(env, rng)
        assert steps == HORIZON
        failed = [obs for obs in observations if obs[-1] == 1]
        # A random policy falls within 60 steps; the falling step still earns CartPole's reward of 1 and leads into
        # the one absorbing observation, where the true reward is 0 until the horizon.
        assert failed and all(np.array_equal(obs, env.failed_observation) for obs in failed)
        assert true_return == HORIZON - len(failed) + 1
        assert all(obs[-1] == 0 for obs in observations[: -len(failed)])
    assert env.failures == 5


def test_without_the_fixed_horizon_a_constant_reward_leaks_the_true_return():
    """The termination leak: with episode ends kept, the return under a positive constant reward (one per step) is
    the episode's length, which rises with the true return, so a constant reward 'teaches' CartPole. With the fixed
    horizon every episode has the same length: a constant reward pays every policy the same."""
    rng = np.random.default_rng(1)
    kept = control.load("CartPole-v1", horizon=HORIZON, fixed_horizon=False)
    lengths, true_returns, _ = zip(*[_episode(kept, rng) for _ in range(20)])
    assert np.std(lengths) > 0 and np.corrcoef(lengths, true_returns)[0, 1] > 0.99
    fixed = control.load("CartPole-v1", horizon=HORIZON)
    assert {_episode(fixed, rng)[0] for _ in range(20)} == {HORIZON}
