import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import testing
from rlhf_tf.agents.language import ppo
from rlhf_tf.data.tokenizers import resolve_tokenizer

BATCH, PROMPT, RESPONSE = 32, 8, 8
TARGET = ord("a")


def _policy(tokenizer, seed, positions=32):
    return testing.tiny_causal_lm(tokenizer.vocabulary_size, seed=seed, hidden_dim=32, max_sequence_length=positions)


def test_ppo_raises_a_toy_reward_and_keeps_kl_bounded(toy_collector):
    tokenizer = resolve_tokenizer("byte")
    policy_lm, reference_lm = _policy(tokenizer, 0), _policy(tokenizer, 0)

    def reward_fn(prompt_ids, prompt_mask, response_ids, response_mask):
        hits = tf.logical_and(tf.equal(response_ids, TARGET), response_mask)
        return tf.reduce_sum(tf.cast(hits, tf.float32), axis=1)

    collector = toy_collector(policy_lm, reward_fn, BATCH, prompt=PROMPT, response=RESPONSE)
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


def _rollout(tokenizer, lengths, seed=0, response=RESPONSE):
    rng = np.random.default_rng(seed)
    batch = len(lengths)
    response_mask = np.arange(response)[None, :] < np.asarray(lengths)[:, None]
    return {
        "prompt_ids": tf.constant(rng.integers(3, 200, size=(batch, PROMPT)), tf.int32),
        "prompt_mask": tf.ones((batch, PROMPT), tf.bool),
        "response_ids": tf.constant(np.where(response_mask, rng.integers(3, 200, size=(batch, response)), 0), tf.int32),
        "response_mask": tf.constant(response_mask),
        "logprobs": tf.constant(np.where(response_mask, -2.0, 0.0), tf.float32),
        "reward": tf.constant(rng.normal(size=batch), tf.float32),
    }


def _learner(tokenizer, **changes):
    policy_lm, reference_lm = _policy(tokenizer, 0), _policy(tokenizer, 0)
    settings = dict(learning_rate=1e-3, minibatch_size=4, ppo_epochs=1, jit_compile=False)
    settings.update(changes)
    return ppo.PPOLearner(policy_lm, reference_lm, tokenizer.end_id, ppo.PPOHyperparameters(**settings))


def test_length_penalty_costs_only_the_tokens_beyond_the_target():
    tokenizer = resolve_tokenizer("byte")
    learner = _learner(tokenizer, length_penalty=0.5, length_target=4.0)
    rollout = _rollout(tokenizer, [2, 4, 8, 6])
    scores = learner.scores(rollout).numpy()
    expected = rollout["reward"].numpy() - 0.5 * np.array([0, 0, 4, 2])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_length_target_defaults_to_a_tenth_above_the_first_batch_mean_and_then_stays():
    tokenizer = resolve_tokenizer("byte")
    learner = _learner(tokenizer, length_penalty=1.0)
    learner.scores(_rollout(tokenizer, [2, 4, 6, 8]))
    assert learner.length_target.numpy() == pytest.approx(1.1 * 5.0)
    learner.scores(_rollout(tokenizer, [8, 8, 8, 8]))
    assert learner.length_target.numpy() == pytest.approx(5.5)
    assert "length_target" in learner.checkpoint_objects()


def test_separate_critic_trains_its_own_trunk_and_leaves_the_policy_trunk_to_the_policy_loss():
    tokenizer = resolve_tokenizer("byte")
    learner = _learner(tokenizer, value_model="policy", vf_coef=1.0)
    policy_weights = learner.causal_lm.backbone.get_weights()
    np.testing.assert_array_equal(learner.critic_backbone.get_weights()[0], policy_weights[0])
    critic_before = [w.copy() for w in learner.critic_backbone.get_weights()]
    metrics = learner.update(_rollout(tokenizer, [8, 6, 4, 8, 8, 2, 5, 7]), 0)
    assert np.isfinite(metrics["loss"])
    assert any(not np.allclose(a, b) for a, b in zip(critic_before, learner.critic_backbone.get_weights()))
    assert {id(v) for v in learner.critic_backbone.trainable_variables}.isdisjoint(
        id(v) for v in learner.causal_lm.trainable_variables
    )


def test_bfloat16_passes_stay_close_to_float32():
    tokenizer = resolve_tokenizer("byte")
    rollout = _rollout(tokenizer, [8, 6, 4, 8])
    fp32 = _learner(tokenizer)._forward(rollout)
    bf16 = _learner(tokenizer, compute_dtype="bfloat16")._forward(rollout)
    assert bf16["logprobs"].dtype == tf.float32
    np.testing.assert_allclose(bf16["logprobs"].numpy(), fp32["logprobs"].numpy(), atol=0.05)
    np.testing.assert_allclose(bf16["values"].numpy(), fp32["values"].numpy(), atol=0.05)


def test_mirrored_update_matches_one_device():
    from rlhf_tf import training

    tokenizer = resolve_tokenizer("byte")
    rollout = _rollout(tokenizer, [8, 6, 4, 8, 3, 8, 7, 1])
    single = _learner(tokenizer, minibatch_size=8)
    single.update(rollout, 0)
    strategy = training.create_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        mirrored = _learner(tokenizer, minibatch_size=8)
    mirrored.update(rollout, 0)
    for a, b in zip(single.causal_lm.get_weights(), mirrored.causal_lm.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(single.value_head.get_weights()[0], mirrored.value_head.get_weights()[0], atol=2e-5)


def test_critic_initialised_from_the_reward_model_scores_like_it(tmp_path):
    from rlhf_tf import configs, files, training
    from rlhf_tf.models import policy as policy_lib
    from rlhf_tf.reward import trainer

    tokenizer = resolve_tokenizer("byte")
    # The reward model's pipeline is the default one (128 tokens): the model it starts from numbers that many.
    policy_lib.save_policy(tmp_path / "sft", _policy(tokenizer, 5, positions=128), tokenizer)
    run = tmp_path / "rm"
    reward_config = trainer.RewardConfig(output_dir=str(run), train="unused.jsonl", init_from=str(tmp_path / "sft"))
    model, _ = trainer.build_model(reward_config, "byte")
    model.build()
    model.head.set_weights([np.full((32, 1), 0.05, np.float32), np.array([0.3], np.float32)])
    tf.train.Checkpoint(model=model).write(str(run / "ckpt" / "final-with-normalization"))
    files.atomic_write_json(str(run / "config.json"), configs.to_dict(reward_config))

    backbone, head = ppo.load_value_init(str(run), training.create_strategy("default"))
    learner = ppo.PPOLearner(
        _policy(tokenizer, 0),
        _policy(tokenizer, 0),
        tokenizer.end_id,
        ppo.PPOHyperparameters(value_model="reward", jit_compile=False),
        critic=(backbone, head),
    )
    rollout = _rollout(tokenizer, [8, 8, 8, 8])
    values = learner._forward(rollout)["values"].numpy()
    # The critic's value at the last token equals the reward model's raw score of the whole sequence.
    ids = tf.concat([rollout["prompt_ids"], rollout["response_ids"][:, :-1]], axis=1)
    scores = model({"token_ids": ids, "padding_mask": tf.ones_like(ids, tf.bool)}).numpy()
    np.testing.assert_allclose(values[:, -1], scores, atol=1e-4)
