import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf import errors, training
from rlhf_tf.data import pipelines, records, tfrecord
from rlhf_tf.data.tokenizers import resolve_tokenizer

END = 256


def _ids(text):
    return list(text.encode("utf-8"))


def _join(prompt, response, seq_len, max_prompt):
    prompts = tf.ragged.constant([_ids(prompt)], dtype=tf.int32, row_splits_dtype=tf.int64)
    responses = tf.ragged.constant([_ids(response)], dtype=tf.int32, row_splits_dtype=tf.int64)
    sequences, response_mask, truncated = pipelines.join_prompt_and_response(
        prompts, responses, seq_len, max_prompt, END
    )
    return sequences[0].numpy().tolist(), response_mask[0].numpy().tolist(), bool(truncated[0])


def test_truncation_cuts_prompt_from_the_left_then_response_from_the_right():
    # Fits: prompt + response + end.
    assert _join("abc", "xy", 8, 2) == (_ids("abc") + _ids("xy") + [END], [False] * 3 + [True] * 3, False)
    # Overflow by the prompt: the prompt keeps its end, the response stays whole with its end token.
    assert _join("abcdefgh", "xy", 6, 2)[0] == _ids("fgh") + _ids("xy") + [END]
    # Overflow by the response: the prompt goes down to max_prompt_tokens, the response keeps its start, no end.
    sequence, mask, truncated = _join("abcdefgh", "uvwxyz", 6, 2)
    assert sequence == _ids("gh") + _ids("uvwx") and truncated
    assert mask == [False, False, True, True, True, True]
    # A short prompt is never cut to make room.
    assert _join("ab", "uvwxyz", 6, 4)[0] == _ids("ab") + _ids("uvwx")


def _comparisons(count):
    return [
        records.Comparison(
            f"Review {i}:", "good " * (i % 7 + 1), "bad " * (i % 3 + 1), margin=float(i % 2), tie=i % 5 == 0
        )
        for i in range(count)
    ]


def test_preference_batches_have_fixed_buckets_masks_ties_and_margins():
    config = pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=8, batch_size=8, shuffle_buffer=0, repeat=False)
    data = _comparisons(40)
    batches = list(pipelines.preference_dataset_fn(pipelines.TextSource(data, "comparison"), config)(None))
    assert len(batches) == 5
    for batch in batches:
        length = batch["token_ids"].shape[-1]
        assert batch["token_ids"].shape[:2] == (8, 2) and length in config.bucket_lengths() == (8, 16, 24, 32)
        lengths = batch["padding_mask"].numpy().sum(-1)
        ids = batch["token_ids"].numpy()
        for row in range(8):
            for k in range(2):
                n = lengths[row, k]
                assert (ids[row, k, n:] == 0).all() and ids[row, k, n - 1] in (END, *range(256))
    first = batches[0]
    decoded = resolve_tokenizer().detokenize(first["token_ids"][:, 0], first["padding_mask"][:, 0]).numpy()
    assert decoded[1] == b"Review 1:good good "
    np.testing.assert_array_equal(first["tie"].numpy(), [1, 0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(first["margin"].numpy(), [0, 1, 0, 1, 0, 1, 0, 1])


def test_truncated_sequences_are_flagged_not_dropped():
    data = [records.Comparison("p" * 50, "r" * 50, "s")] * 4
    config = pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=8, batch_size=4, shuffle_buffer=0)
    batch = next(iter(pipelines.preference_dataset_fn(pipelines.TextSource(data, "comparison"), config)(None)))
    assert batch["token_ids"].shape == (4, 2, 32)
    np.testing.assert_array_equal(batch["truncated"].numpy(), [[True, True]] * 4)


def test_seeded_shuffle_is_reproducible_and_seed_dependent():
    data = _comparisons(64)

    def first_prompts(seed):
        config = pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=8, batch_size=8, shuffle_buffer=64, seed=seed)
        dataset = pipelines.preference_dataset_fn(pipelines.TextSource(data, "comparison"), config)(None)
        return [batch["token_ids"].numpy().tobytes() for batch in dataset.take(4)]

    assert first_prompts(1) == first_prompts(1)
    assert first_prompts(1) != first_prompts(2)


def test_tfrecord_and_in_memory_sources_deliver_the_same_batches(tmp_path):
    data = _comparisons(32)
    tfrecord.write_tfrecords(data, str(tmp_path / "pairs"), num_shards=1)
    config = pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=8, batch_size=8, shuffle_buffer=0, repeat=False)
    from_memory = list(pipelines.preference_dataset_fn(pipelines.TextSource(data, "comparison"), config)(None))
    from_disk = list(pipelines.preference_dataset_fn(pipelines.TextSource(str(tmp_path), "comparison"), config)(None))
    for a, b in zip(from_memory, from_disk, strict=True):
        for name in a:
            np.testing.assert_array_equal(a[name].numpy(), b[name].numpy())


def test_rankings_are_best_first_with_padding_for_short_lists():
    data = [records.Ranking("p", ("a", "b")), records.Ranking("p", ("a", "b", "c", "d", "e"))]
    config = pipelines.PipelineConfig(seq_len=16, max_prompt_tokens=4, batch_size=2, max_responses=3, shuffle_buffer=0)
    batch = next(iter(pipelines.preference_dataset_fn(pipelines.TextSource(data, "ranking"), config)(None)))
    assert batch["token_ids"].shape[:2] == (2, 3)
    np.testing.assert_array_equal(batch["response_present"].numpy(), [[True, True, False], [True, True, True]])
    np.testing.assert_array_equal(batch["truncated"].numpy(), [[False, False, False], [True, True, True]])
    assert batch["token_ids"].numpy()[1, 2, 1] == ord("c")


def test_demonstrations_mask_the_prompt_out_of_the_loss():
    data = [records.Demonstration("Q:", " yes")]
    config = pipelines.PipelineConfig(seq_len=16, max_prompt_tokens=4, batch_size=1, shuffle_buffer=0)
    batch = next(iter(pipelines.demonstration_dataset_fn(pipelines.TextSource(data, "demonstration"), config)(None)))
    assert batch["token_ids"].numpy()[0, :7].tolist() == _ids("Q: yes") + [END]
    assert batch["loss_mask"].numpy()[0, :8].tolist() == [False, False, True, True, True, True, True, False]


def test_ratings_and_left_padded_prompts():
    ratings = [records.Rating("p", "fine", 5.0), records.Rating("p", "bad", 1.0)]
    config = pipelines.PipelineConfig(seq_len=16, max_prompt_tokens=4, batch_size=2, shuffle_buffer=0)
    batch = next(iter(pipelines.rating_dataset_fn(pipelines.TextSource(ratings, "rating"), config)(None)))
    assert batch["score"].numpy().tolist() == [5.0, 1.0]
    prompts = [records.Prompt("ab"), records.Prompt("abcdef")]
    batch = next(iter(pipelines.prompt_dataset_fn(pipelines.TextSource(prompts, "prompt"), config)(None)))
    assert batch["token_ids"].numpy().tolist() == [[0, 0, 97, 98], [99, 100, 101, 102]]
    assert batch["truncated"].numpy().tolist() == [False, True]


def test_per_replica_sharding_under_mirrored_strategy_covers_the_global_batch():
    strategy = training.create_strategy("mirrored")
    data = _comparisons(16)
    config = pipelines.PipelineConfig(seq_len=32, max_prompt_tokens=8, batch_size=8, shuffle_buffer=0)
    dataset_fn = pipelines.preference_dataset_fn(pipelines.TextSource(data, "comparison"), config)
    distributed = next(iter(strategy.distribute_datasets_from_function(dataset_fn)))
    parts = strategy.experimental_local_results(distributed["margin"])
    assert [part.shape[0] for part in parts] == [4, 4]
    single = next(iter(dataset_fn(None)))
    np.testing.assert_array_equal(np.concatenate([part.numpy() for part in parts]), single["margin"].numpy())


def test_config_and_kind_errors_are_clear():
    with pytest.raises(errors.UserInputError, match="`max_prompt_tokens` must be smaller than `seq_len`"):
        pipelines.PipelineConfig(seq_len=16, max_prompt_tokens=16)
    with pytest.raises(errors.UserInputError, match="`buckets` must be increasing"):
        pipelines.PipelineConfig(seq_len=16, max_prompt_tokens=4, buckets=(8, 4))
    with pytest.raises(errors.UserInputError, match="needs comparison records"):
        pipelines.TextSource([records.Prompt("p")], "comparison")
