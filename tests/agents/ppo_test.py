import numpy as np
import tensorflow as tf

from rlhf_tf import testing
from rlhf_tf.agents import bridge, ppo
from rlhf_tf.data import pipelines, records
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.models import sampling

BATCH, PROMPT, RESPONSE = 32, 8, 8
TARGET = ord("a")


def _policy(tokenizer, seed):
    return testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=seed, hidden_dim=32)


def test_ppo_raises_a_toy_reward_and_keeps_kl_bounded():
    tokenizer = resolve_tokenizer("byte")
    policy_lm, reference_lm = _policy(tokenizer, 0), _policy(tokenizer, 0)
    config = pipelines.PipelineConfig(
        seq_len=PROMPT + 1, max_prompt_tokens=PROMPT, batch_size=BATCH, buckets=(PROMPT,), shuffle_buffer=64
    )
    prompts = [records.Prompt(f"p{i}:") for i in range(64)]
    batches = pipelines.prompt_dataset_fn(pipelines.TextSource(prompts, "prompt"), config, tokenizer)(None)

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        hits = tf.logical_and(tf.equal(response_ids, TARGET), response_mask)
        return tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)

    environment = bridge.TextBanditEnvironment(batches, reward_fn, BATCH, PROMPT, RESPONSE, tokenizer.vocabulary_size)
    sampling_config = sampling.SamplingConfig(max_new_tokens=RESPONSE)
    policy = bridge.LanguagePolicy(
        policy_lm, tokenizer.end_id, tokenizer.pad_id, sampling_config, tokenizer.vocabulary_size, PROMPT, seed=3
    )
    collector = bridge.RolloutCollector(environment, policy)
    learner = ppo.PPOLearner(
        policy_lm,
        reference_lm,
        tokenizer.end_id,
        ppo.PPOHyperparameters(learning_rate=3e-3, minibatch_size=8, kl_coef=0.01, missing_end_penalty=0.0),
    )
    before = [w.numpy().copy() for w in policy_lm.trainable_weights]
    history = []
    for iteration in range(12):
        metrics = learner.update(collector.collect(), iteration)
        assert all(np.isfinite(value) for value in metrics.values()), metrics
        history.append(metrics)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, policy_lm.trainable_weights))
    # An untrained byte model samples 'a' about once in 257 tokens: a score near 0.03 per 8-token response.
    early = np.mean([m["score"] for m in history[:2]])
    late = np.mean([m["score"] for m in history[-3:]])
    assert late > max(1.0, 5 * early), (early, late)
    assert history[-1]["kl"] > 0 and 0 <= history[-1]["clip_fraction"] <= 1
