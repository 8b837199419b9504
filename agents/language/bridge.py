"""The TF-Agents bridge for language: prompts as a contextual-bandit environment, a keras-hub policy as a TFPolicy.

Each episode is one prompt (the observation: left-padded token ids and mask) and the policy's response (the action:
token ids and a 0/1 mask). The reward is computed for the whole batch at once by a reward function
`(prompt_ids, prompt_mask, response_ids, response_mask) -> [batch] float32`: a reward model, a reward SavedModel or
any Python/TF function over text (`text_reward`). The policy samples with rlhf-tf's XLA sampler and carries the
per-token sampling log-probs in its policy info, so learners need no second pass for the behaviour log-probs.
Rollouts are collected by a TF-Agents `DynamicStepDriver` into a replay buffer; `rollout_batch` turns the
trajectories into the tensors learners use.

This module is the one place on the language side that imports `tf_agents`.
"""

import tensorflow as tf
from tf_agents.bandits.environments import bandit_tf_environment
from tf_agents.drivers import dynamic_step_driver
from tf_agents.policies import tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from rlhf_tf.models import sampling


def specs(prompt_length, response_length, vocabulary_size):
    """(time_step_spec, action_spec, info_spec) of the text bandit."""
    observation_spec = {
        "token_ids": tensor_spec.TensorSpec([prompt_length], tf.int32, name="token_ids"),
        # 0/1 rather than bool: TF-Agents keeps the current time step in variables initialised with 0.
        "padding_mask": tensor_spec.TensorSpec([prompt_length], tf.int32, name="padding_mask"),
    }
    action_spec = {
        "token_ids": tensor_spec.BoundedTensorSpec([response_length], tf.int32, 0, vocabulary_size - 1, "token_ids"),
        "mask": tensor_spec.BoundedTensorSpec([response_length], tf.int32, 0, 1, name="mask"),
    }
    info_spec = {"logprobs": tensor_spec.TensorSpec([response_length], tf.float32, name="logprobs")}
    return ts.time_step_spec(observation_spec), action_spec, info_spec


class TextBanditEnvironment(bandit_tf_environment.BanditTFEnvironment):
    """Batches of prompts; the reward of a response comes from `reward_fn`, computed for the batch at once.

    Args:
      prompt_batches: an iterator (or dataset) of prompt-pipeline batches with fixed shape [batch, prompt_length]
        ("token_ids", "padding_mask").
      reward_fn: `(prompt_ids, prompt_mask, response_ids, response_mask) -> [batch] float32`.
      batch_size, prompt_length, response_length, vocabulary_size: the fixed shapes.
    """

    def __init__(self, prompt_batches, reward_fn, batch_size, prompt_length, response_length, vocabulary_size):
        time_step_spec, action_spec, _ = specs(prompt_length, response_length, vocabulary_size)
        self._iterator = iter(prompt_batches)
        self._reward_fn = reward_fn
        super().__init__(time_step_spec=time_step_spec, action_spec=action_spec, batch_size=batch_size)

    def _observe(self):
        batch = next(self._iterator)
        return {"token_ids": batch["token_ids"], "padding_mask": tf.cast(batch["padding_mask"], tf.int32)}

    def _apply_action(self, action):
        observation = self._time_step_variables.observation
        rewards = self._reward_fn(
            observation["token_ids"],
            tf.cast(observation["padding_mask"], tf.bool),
            action["token_ids"],
            tf.cast(action["mask"], tf.bool),
        )
        return tf.cast(rewards, tf.float32)


class LanguagePolicy(tf_policy.TFPolicy):
    """A keras-hub causal LM as a TF-Agents policy; `info["logprobs"]` holds the sampling log-probs.

    Keras 3 variables are not tracked by tf.Module on their own, so the policy keeps `_tf_vars` (the variables'
    TensorFlow values) to make `variables()`, checkpoints and PolicySaver see them.

    Args:
      causal_lm: the keras-hub model (GPT-2 style).
      end_id, pad_id: the tokenizer's ids.
      sampling_config: a `SamplingConfig` (its max_new_tokens is the response length).
      vocabulary_size: the size of the action id range.
      prompt_length: the fixed prompt length of observations.
      seed: the sampling seed; each call samples with (seed, call count).
      rows: (offset, total): this policy samples rows offset.. of a global batch of `total` (`sampling.Sampler`).
    """

    def __init__(self, causal_lm, end_id, pad_id, sampling_config, vocabulary_size, prompt_length, seed=0, rows=None):
        time_step_spec, action_spec, info_spec = specs(prompt_length, sampling_config.max_new_tokens, vocabulary_size)
        self._causal_lm = causal_lm
        self._tf_vars = [weight.value for weight in causal_lm.weights]
        self._sampler = sampling.Sampler(causal_lm, end_id, pad_id, sampling_config, rows=rows)
        self._seed = seed
        self._calls = tf.Variable(0, dtype=tf.int32, trainable=False, name="sampling_calls")
        super().__init__(time_step_spec, action_spec, info_spec=info_spec, clip=False)

    def _variables(self):
        return self._tf_vars

    def _action(self, time_step, policy_state, seed):
        del seed  # sampling is seeded statelessly from (self._seed, call count) so that reruns repeat exactly
        observation = time_step.observation
        seed_pair = tf.stack([tf.constant(self._seed, tf.int32), self._calls.assign_add(1)])
        out = self._sampler._generate(
            observation["token_ids"], tf.cast(observation["padding_mask"], tf.bool), seed_pair
        )
        action = {"token_ids": out["token_ids"], "mask": tf.cast(out["mask"], tf.int32)}
        return policy_step.PolicyStep(action, policy_state, {"logprobs": out["logprobs"]})

    def _distribution(self, time_step, policy_state):
        raise NotImplementedError("LanguagePolicy samples with its own sampler; use action().")


class RolloutCollector:
    """Collects one batch of (prompt, response, log-probs, reward) per call with a DynamicStepDriver."""

    def __init__(self, environment, policy):
        self.environment = environment
        self.policy = policy
        self.buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            data_spec=policy.trajectory_spec, batch_size=environment.batch_size, max_length=1
        )
        self.driver = dynamic_step_driver.DynamicStepDriver(
            environment, policy, observers=[self.buffer.add_batch], num_steps=environment.batch_size
        )

    def collect(self):
        """Runs the driver for one batch of episodes; returns `rollout_batch` of the trajectories."""
        self.buffer.clear()
        self.driver.run()
        trajectories = self.buffer.gather_all()
        return rollout_batch(tf.nest.map_structure(lambda t: t[:, 0], trajectories))


def rollout_batch(trajectory):
    """A batched bandit `Trajectory` as the learners' dict of [batch, ...] tensors."""
    return {
        "prompt_ids": trajectory.observation["token_ids"],
        "prompt_mask": tf.cast(trajectory.observation["padding_mask"], tf.bool),
        "response_ids": trajectory.action["token_ids"],
        "response_mask": tf.cast(trajectory.action["mask"], tf.bool),
        "logprobs": trajectory.policy_info["logprobs"],
        "reward": trajectory.reward,
    }


def text_reward(score_texts, tokenizer):
    """A reward function over text: `score_texts(prompts, responses) -> [batch]` (Python, e.g. a gold scorer or a
    reward SavedModel's signature wrapped in Python), called with lists of `str` (the detokenized prompts and
    responses) through `tf.py_function`."""

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        prompts = tokenizer.detokenize(prompt_ids, prompt_mask)
        responses = tokenizer.detokenize(response_ids, response_mask)

        def score(prompt_strings, response_strings):
            decode = lambda strings: [text.decode("utf-8", "replace") for text in strings.numpy()]
            return tf.constant(score_texts(decode(prompt_strings), decode(response_strings)), dtype=tf.float32)

        rewards = tf.py_function(score, [prompts, responses], tf.float32)
        rewards.set_shape(prompt_ids.shape[:1])
        return rewards

    return reward_fn
