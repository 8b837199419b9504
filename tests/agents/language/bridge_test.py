import numpy as np
import tensorflow as tf

from rlhf_tf import testing
from rlhf_tf.agents.language import bridge
from rlhf_tf.data import pipelines, records
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.models import sampling

BATCH, PROMPT, RESPONSE = 4, 8, 6


def _setup():
    tokenizer = resolve_tokenizer("byte")
    causal_lm = testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=0)
    config = pipelines.PipelineConfig(
        seq_len=PROMPT + 1, max_prompt_tokens=PROMPT, batch_size=BATCH, buckets=(PROMPT,), shuffle_buffer=0
    )
    prompts = [records.Prompt(f"p{i}: ") for i in range(16)]
    batches = pipelines.prompt_dataset_fn(pipelines.TextSource(prompts, "prompt"), config, tokenizer)(None)
    return tokenizer, causal_lm, batches


def test_driver_collects_rollouts_with_sampling_logprobs_and_batched_rewards():
    tokenizer, causal_lm, batches = _setup()

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        # Reward = number of 'a' bytes (97) in the response.
        return tf.reduce_sum(tf.cast(tf.logical_and(tf.equal(response_ids, 97), response_mask), tf.float32), axis=1)

    environment = bridge.TextBanditEnvironment(batches, reward_fn, BATCH, PROMPT, RESPONSE, tokenizer.vocabulary_size)
    policy = bridge.LanguagePolicy(
        causal_lm,
        tokenizer.end_id,
        tokenizer.pad_id,
        sampling.SamplingConfig(max_new_tokens=RESPONSE),
        tokenizer.vocabulary_size,
        PROMPT,
        seed=1,
    )
    tracked = {id(variable) for variable in policy.variables()}
    assert causal_lm.weights and all(id(weight.value) in tracked for weight in causal_lm.weights)
    collector = bridge.RolloutCollector(environment, policy)
    first = collector.collect()
    second = collector.collect()
    assert first["response_ids"].shape == (BATCH, RESPONSE) and first["prompt_ids"].shape == (BATCH, PROMPT)
    expected = np.sum((first["response_ids"].numpy() == 97) & first["response_mask"].numpy(), axis=1)
    np.testing.assert_array_equal(first["reward"].numpy(), expected)
    logprobs, _ = sampling.response_logprobs(
        causal_lm.backbone, first["prompt_ids"], first["prompt_mask"], first["response_ids"], first["response_mask"]
    )
    assert np.abs(logprobs.numpy() - first["logprobs"].numpy()).max() < sampling.LOGPROB_TOLERANCE
    # The environment moved on to the next prompts, and the policy to new samples.
    assert not np.array_equal(first["prompt_ids"].numpy(), second["prompt_ids"].numpy())


def test_text_reward_scores_detokenized_strings():
    tokenizer, causal_lm, batches = _setup()
    seen = []

    def score_texts(prompts, responses):
        seen.extend(prompts)
        return [float(len(response)) for response in responses]

    reward_fn = bridge.text_reward(score_texts, tokenizer)
    batch = next(iter(batches))
    response_ids = tf.constant([[97, 98, 256, 0, 0, 0]] * BATCH, tf.int32)
    response_mask = tf.constant([[True, True, True, False, False, False]] * BATCH)
    rewards = reward_fn(batch["token_ids"], batch["padding_mask"], response_ids, response_mask)
    np.testing.assert_array_equal(rewards.numpy(), [2.0] * BATCH)
    assert seen[0] == "p0: "  # str, decoded
