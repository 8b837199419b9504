"""Fixtures shared by the learner tests: toy rollouts from byte prompts through the TF-Agents bridge."""

import pytest
import tensorflow as tf

from rlhf_tf.agents.language import bridge
from rlhf_tf.data import pipelines, records
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.models import sampling


def make_collector(policy_lm, reward_fn, batch, samples_per_prompt=1, prompt=8, response=8, seed=3):
    """A RolloutCollector over 64 byte prompts ("p0:" ...), `samples_per_prompt` consecutive rows per prompt."""
    tokenizer = resolve_tokenizer("byte")
    k = samples_per_prompt
    config = pipelines.PipelineConfig(
        seq_len=prompt + 1, max_prompt_tokens=prompt, batch_size=batch // k, buckets=(prompt,), shuffle_buffer=64
    )
    prompts = [records.Prompt(f"p{i}:") for i in range(64)]
    batches = pipelines.prompt_dataset_fn(pipelines.TextSource(prompts, "prompt"), config, tokenizer)(None)
    if k > 1:
        batches = batches.map(lambda b: {name: tf.repeat(b[name], k, axis=0) for name in ("token_ids", "padding_mask")})
    environment = bridge.TextBanditEnvironment(batches, reward_fn, batch, prompt, response, tokenizer.vocabulary_size)
    policy = bridge.LanguagePolicy(
        policy_lm,
        tokenizer.end_id,
        tokenizer.pad_id,
        sampling.SamplingConfig(max_new_tokens=response),
        tokenizer.vocabulary_size,
        prompt,
        seed=seed,
    )
    return bridge.RolloutCollector(environment, policy)


@pytest.fixture
def toy_collector():
    return make_collector
