"""tf.data pipelines that keep the accelerator fed: one per use, all sharing the same steps.

    source (JSONL records, TFRecord shards or TFDS) -> shard per input pipeline -> seeded shuffle -> repeat
    -> batch -> parse (TFRecord) -> tokenize (keras-hub, vectorised over the batch) -> truncate -> pad to a bucket
    -> prefetch

Truncation rule (counted, never a crash): a sequence is prompt tokens, response tokens and the end token, at most
`seq_len` in all. When it does not fit, the prompt keeps its last tokens (cut from the left) down to
`max_prompt_tokens`, and then the response keeps its first tokens (cut from the right); a cut response gets no end
token, so models never learn that a cut-off text ended. Every batch carries a `truncated` flag per sequence.

Padding: each batch is padded to the smallest of a few bucket lengths that holds its longest sequence, so XLA
compiles a handful of shapes, not one per batch. Batches have a fixed batch dimension (`drop_remainder`).

Each `*_dataset_fn` returns `input_context -> tf.data.Dataset` for `strategy.distribute_datasets_from_function`
(and for `TrainLoop.run`); call it with None for a single-device dataset.
"""

import dataclasses

import tensorflow as tf

from rlhf_tf import configs
from rlhf_tf.data import records, sources, tfrecord
from rlhf_tf.data.tokenizers import resolve_tokenizer
from rlhf_tf.errors import UserInputError
from rlhf_tf.training import distribution


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Shapes and order of the batches a pipeline delivers.

    Attributes:
      seq_len: maximum tokens per sequence (prompt + response + end token); the largest bucket.
      max_prompt_tokens: when a sequence overflows, the prompt is cut from the left down to this many tokens
        before the response is cut. For prompt pipelines, the prompt length limit.
      batch_size: the global batch size (pairs, rankings, ratings, demonstrations or prompts per step).
      buckets: lengths that batches are padded to; () picks quarters of `seq_len` rounded up to multiples of 8.
      max_responses: responses per ranking (K); rankings with fewer are padded (see `response_present`), longer
        ones keep their best `max_responses` (counted as truncated).
      shuffle_buffer: elements in the shuffle buffer (0 turns shuffling off).
      seed: the shuffle seed (a fixed seed gives the same order on every run, which exact resume needs).
      repeat: cycle through the data forever (training) or once (evaluation).
      drop_remainder: drop a last partial batch so every batch has the same size.
      prompt_padding: "left" (prompts end at the same column, as generation wants) or "right".
    """

    seq_len: int = 128
    max_prompt_tokens: int = 64
    batch_size: int = 64
    buckets: tuple = ()
    max_responses: int = 4
    shuffle_buffer: int = 10_000
    seed: int = 0
    repeat: bool = True
    drop_remainder: bool = True
    prompt_padding: str = "left"

    def __post_init__(self):
        configs.require_positive(
            seq_len=self.seq_len, batch_size=self.batch_size, max_prompt_tokens=self.max_prompt_tokens
        )
        configs.require(
            self.max_prompt_tokens < self.seq_len,
            "`max_prompt_tokens` must be smaller than `seq_len` so that a response always has room.",
            max_prompt_tokens=self.max_prompt_tokens,
            seq_len=self.seq_len,
        )
        configs.require(self.max_responses >= 2, "`max_responses` must be >= 2.", max_responses=self.max_responses)
        configs.require_non_negative(shuffle_buffer=self.shuffle_buffer)
        configs.require_choice("prompt_padding", self.prompt_padding, ("left", "right"))
        buckets = tuple(self.buckets)
        configs.require(
            all(isinstance(b, int) and 0 < b <= self.seq_len for b in buckets)
            and list(buckets) == sorted(set(buckets)),
            "`buckets` must be increasing lengths no larger than `seq_len`.",
            buckets=self.buckets,
            seq_len=self.seq_len,
        )

    def bucket_lengths(self, limit=None):
        limit = limit or self.seq_len
        if self.buckets:
            lengths = [b for b in self.buckets if b < limit] + [limit]
        else:
            lengths = sorted({min(limit, -(-limit * part // 4 // 8) * 8) for part in (1, 2, 3, 4)})
        return tuple(lengths)


# ----------------------------------------------------------------------------------------------------------------
# Sources: batches of raw fields.

# The string and numeric fields each record kind contributes to a batch.
_FIELDS = {
    "comparison": {
        "prompt": tf.string,
        "chosen": tf.string,
        "rejected": tf.string,
        "margin": tf.float32,
        "tie": tf.int64,
    },
    "rating": {"prompt": tf.string, "response": tf.string, "score": tf.float32},
    "demonstration": {"prompt": tf.string, "completion": tf.string},
    "prompt": {"prompt": tf.string},
}


def _columns(items, kind, max_responses):
    if kind == "ranking":
        responses = [list(record.responses[:max_responses]) for record in items]
        return {
            "prompt": tf.constant([record.prompt for record in items]),
            "responses": tf.ragged.constant(responses, dtype=tf.string),
            "cut": tf.constant([len(record.responses) > max_responses for record in items]),
        }
    columns = {}
    for name, dtype in _FIELDS[kind].items():
        values = [getattr(record, name) for record in items]
        columns[name] = tf.constant([int(v) for v in values] if dtype == tf.int64 else values, dtype=dtype)
    return columns


class TextSource:
    """Where a pipeline's records come from: a list of records, or a data spec read lazily (TFRecord shards).

    Args:
      data: a list of records, or a data spec (`sources` module docstring). JSONL and TFDS specs are read into
        memory with full validation; TFRecord shards stream from disk.
      kind: the record kind the pipeline needs.
      format, skip_bad_records, output_dir: as in `sources.load_records`.
    """

    def __init__(self, data, kind, format=None, skip_bad_records=False, output_dir=None, tfds_data_dir=None):
        self.kind = kind
        self.files = None
        self.records = None
        self.stats = {}
        if isinstance(data, (list, tuple)) and data and not isinstance(data[0], str):
            self.records = list(data)
        elif not sources.is_tfds(str(data)) and tfrecord.is_tfrecord(data):
            self.files = tfrecord.resolve_files(data)
            found = tfrecord.peek_kind(self.files)
            if found != kind:
                raise UserInputError(f"This pipeline needs {kind} records; the shards hold {found}. Received: {data}")
        else:
            self.records, self.stats = sources.load_records(
                data, format, skip_bad_records, output_dir, kind=kind, tfds_data_dir=tfds_data_dir
            )
        if self.records is not None:
            wrong = {record.kind for record in self.records} - {kind}
            if wrong:
                raise UserInputError(f"This pipeline needs {kind} records. Received: {sorted(wrong)}")

    def batches(self, input_context, batch_size, config):
        """A dataset of dict batches of raw fields, sharded, shuffled, repeated and batched."""
        seed = config.seed
        if self.files is not None:
            files = tf.data.Dataset.from_tensor_slices(self.files)
            num_pipelines = input_context.num_input_pipelines if input_context else 1
            shard_files = len(self.files) >= num_pipelines
            if shard_files:
                files = distribution.shard_for_input_pipeline(files, input_context)
            compression = tfrecord.compression_of(self.files[0])
            dataset = files.interleave(
                lambda path: tf.data.TFRecordDataset(path, compression_type=compression),
                cycle_length=max(1, min(4, len(self.files))),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            if not shard_files:
                dataset = distribution.shard_for_input_pipeline(dataset, input_context)
        else:
            dataset = tf.data.Dataset.from_tensor_slices(_columns(self.records, self.kind, config.max_responses))
        if config.shuffle_buffer:
            dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if config.repeat:
            dataset = dataset.repeat()
        if self.files is None:
            # In-memory records: every host shuffles the same way and takes every n-th example of the stream, so
            # the hosts' batches together are exactly the global batch one process would draw (streamed shards are
            # split by file above instead: each host reads only its own).
            dataset = distribution.shard_for_input_pipeline(dataset, input_context)
        dataset = dataset.batch(batch_size, drop_remainder=config.drop_remainder)
        if self.files is not None:
            kind, max_responses = self.kind, config.max_responses
            dataset = dataset.map(
                lambda serialized: _parse(serialized, kind, max_responses), num_parallel_calls=tf.data.AUTOTUNE
            )
        return dataset


def _parse(serialized, kind, max_responses):
    parsed = tfrecord.parse_batch(serialized, kind)
    if kind == "ranking":
        responses = parsed["responses"]
        parsed["cut"] = responses.row_lengths() > max_responses
        parsed["responses"] = responses[:, :max_responses]
    return parsed


# ----------------------------------------------------------------------------------------------------------------
# Ragged sequence assembly.


def _ragged_slice(sequences, offsets, lengths):
    """Row i of the result is sequences[i][offsets[i] : offsets[i] + lengths[i]]."""
    starts = sequences.row_starts() + offsets
    indices = tf.ragged.range(starts, starts + lengths)
    return tf.RaggedTensor.from_row_lengths(tf.gather(sequences.values, indices.values), lengths)


def join_prompt_and_response(prompts, responses, seq_len, max_prompt_tokens, end_id):
    """Truncates by the module's rule and joins prompt + response + end token.

    Args:
      prompts, responses: ragged [n, (tokens)] int32.

    Returns:
      (sequences ragged [n, (<= seq_len)], response_mask ragged bool (response and end tokens), truncated [n] bool).
    """
    prompt_lengths = prompts.row_lengths()
    response_lengths = responses.row_lengths()
    seq_len = tf.constant(seq_len, tf.int64)
    overflows = prompt_lengths + response_lengths + 1 > seq_len
    prompt_keep = tf.where(
        overflows,
        tf.minimum(prompt_lengths, tf.maximum(tf.cast(max_prompt_tokens, tf.int64), seq_len - 1 - response_lengths)),
        prompt_lengths,
    )
    complete = prompt_keep + response_lengths + 1 <= seq_len
    response_keep = tf.where(complete, response_lengths, seq_len - prompt_keep)
    prompt_part = _ragged_slice(prompts, prompt_lengths - prompt_keep, prompt_keep)
    response_part = _ragged_slice(responses, tf.zeros_like(response_keep), response_keep)
    end_lengths = tf.cast(complete, tf.int64)
    end_part = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(end_lengths)], tf.constant(end_id, tf.int32)), end_lengths
    )
    sequences = tf.concat([prompt_part, response_part, end_part], axis=1)
    response_mask = tf.concat(
        [tf.zeros_like(prompt_part, tf.bool), tf.ones_like(response_part, tf.bool), tf.ones_like(end_part, tf.bool)],
        axis=1,
    )
    truncated = tf.logical_or(prompt_keep < prompt_lengths, tf.logical_not(complete))
    return sequences, response_mask, truncated


def _bucket_length(lengths, buckets):
    buckets = tf.constant(buckets, tf.int64)
    longest = tf.reduce_max(tf.concat([lengths, [1]], axis=0))
    return tf.gather(buckets, tf.argmax(tf.cast(buckets >= longest, tf.int32)))


def pad_to_bucket(sequences, buckets, pad_id, extra=(), padding_side="right"):
    """Pads ragged rows to the smallest bucket holding the longest; returns (ids, padding_mask, extras padded)."""
    length = _bucket_length(sequences.row_lengths(), buckets)
    if padding_side == "left":
        sequences = _reverse_rows(sequences)
        extra = tuple(_reverse_rows(values) for values in extra)
    shape = tf.stack([sequences.nrows(), length])
    ids = sequences.to_tensor(default_value=pad_id, shape=shape)
    mask = tf.sequence_mask(sequences.row_lengths(), length)
    padded = tuple(values.to_tensor(shape=shape) for values in extra)
    if padding_side == "left":
        ids, mask = tf.reverse(ids, [1]), tf.reverse(mask, [1])
        padded = tuple(tf.reverse(values, [1]) for values in padded)
    return ids, mask, padded


def _reverse_rows(sequences):
    starts = sequences.row_starts()
    lengths = sequences.row_lengths()
    positions = tf.ragged.range(lengths)
    reversed_indices = tf.expand_dims(starts + lengths - 1, 1) - positions
    return tf.RaggedTensor.from_row_lengths(tf.gather(sequences.values, reversed_indices.values), lengths)


# ----------------------------------------------------------------------------------------------------------------
# The pipelines.


def _assemble(tokenizer, config, prompts, responses):
    sequences, response_mask, truncated = join_prompt_and_response(
        tokenizer.tokenize(prompts),
        tokenizer.tokenize(responses),
        config.seq_len,
        config.max_prompt_tokens,
        tokenizer.end_id,
    )
    ids, mask, (response_mask,) = pad_to_bucket(sequences, config.bucket_lengths(), tokenizer.pad_id, (response_mask,))
    return ids, mask, response_mask, truncated


def _dataset_fn(source, config, transform):
    def dataset_fn(input_context=None):
        batch_size = distribution.per_replica_batch_size(config.batch_size, input_context)
        dataset = source.batches(input_context, batch_size, config)
        return dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def preference_dataset_fn(source, config, tokenizer="byte"):
    """Comparisons or rankings as [batch, K, length] (K = 2 for pairs, best first) for reward training.

    Each batch: `token_ids` int32 [batch, K, length], `padding_mask` bool, `response_mask` bool (response and end
    tokens), `truncated` bool [batch, K], `response_present` bool [batch, K] (rankings with fewer than K responses),
    `tie` float32 [batch] (1 where the pair is a tie: learn probability 0.5), `margin` float32 [batch].
    """
    tokenizer = resolve_tokenizer(tokenizer)
    if source.kind == "comparison":
        num_responses = 2
    elif source.kind == "ranking":
        num_responses = config.max_responses
    else:
        raise UserInputError(f"Preference pipelines read comparison or ranking records. Received: {source.kind}")

    def transform(batch):
        prompts = batch["prompt"]
        if source.kind == "comparison":
            responses = tf.RaggedTensor.from_tensor(tf.stack([batch["chosen"], batch["rejected"]], axis=1))
            tie, margin = tf.cast(batch["tie"], tf.float32), batch["margin"]
            cut = tf.zeros_like(prompts, tf.bool)
        else:
            responses = batch["responses"]
            tie = margin = tf.zeros_like(prompts, tf.float32)
            cut = batch["cut"]
        counts = responses.row_lengths()
        flat_prompts = tf.repeat(prompts, counts)
        ids, mask, response_mask, truncated = _assemble(tokenizer, config, flat_prompts, responses.values)
        rows = tf.shape(prompts, out_type=tf.int64)[0]

        def regroup(flat, default):
            grouped = tf.RaggedTensor.from_row_lengths(flat, counts)
            shape = tf.concat([[rows, num_responses], tf.shape(flat, out_type=tf.int64)[1:]], axis=0)
            return grouped.to_tensor(default_value=default, shape=shape)

        present = tf.sequence_mask(counts, num_responses)
        return {
            "token_ids": regroup(ids, tokenizer.pad_id),
            "padding_mask": regroup(mask, False),
            "response_mask": regroup(response_mask, False),
            "truncated": tf.logical_or(regroup(truncated, False), tf.logical_and(present, cut[:, None])),
            "response_present": present,
            "tie": tie,
            "margin": margin,
        }

    return _dataset_fn(source, config, transform)


def rating_dataset_fn(source, config, tokenizer="byte"):
    """Ratings as `token_ids` [batch, length], `padding_mask`, `response_mask`, `truncated` [batch], `score`."""
    tokenizer = resolve_tokenizer(tokenizer)

    def transform(batch):
        ids, mask, response_mask, truncated = _assemble(tokenizer, config, batch["prompt"], batch["response"])
        return {
            "token_ids": ids,
            "padding_mask": mask,
            "response_mask": response_mask,
            "truncated": truncated,
            "score": batch["score"],
        }

    return _dataset_fn(source, config, transform)


def demonstration_dataset_fn(source, config, tokenizer="byte"):
    """Demonstrations for SFT: `token_ids`, `padding_mask`, `loss_mask` (completion and end tokens only, so the
    prompt is never learned), `truncated`."""
    tokenizer = resolve_tokenizer(tokenizer)

    def transform(batch):
        ids, mask, loss_mask, truncated = _assemble(tokenizer, config, batch["prompt"], batch["completion"])
        return {"token_ids": ids, "padding_mask": mask, "loss_mask": loss_mask, "truncated": truncated}

    return _dataset_fn(source, config, transform)


def prompt_dataset_fn(source, config, tokenizer="byte"):
    """Prompts for RL: `token_ids` [batch, length] padded on `config.prompt_padding`'s side (left by default),
    `padding_mask`, `truncated` (prompts longer than `max_prompt_tokens` keep their end), and `prompt` strings."""
    tokenizer = resolve_tokenizer(tokenizer)
    buckets = config.bucket_lengths(limit=config.max_prompt_tokens)

    def transform(batch):
        ids, mask, truncated = tokenize_prompts(
            tokenizer, batch["prompt"], config.max_prompt_tokens, buckets, config.prompt_padding
        )
        return {"token_ids": ids, "padding_mask": mask, "truncated": truncated, "prompt": batch["prompt"]}

    return _dataset_fn(source, config, transform)


def tokenize_prompts(tokenizer, prompts, max_prompt_tokens, buckets, padding_side="left"):
    """[batch] prompt strings -> (ids, padding_mask, truncated): each prompt keeps its last `max_prompt_tokens`
    tokens and the batch is padded to the smallest bucket holding it. Graph-only; the exported policy uses it too."""
    tokens = tokenizer.tokenize(prompts)
    lengths = tokens.row_lengths()
    keep = tf.minimum(lengths, max_prompt_tokens)
    tokens = _ragged_slice(tokens, lengths - keep, keep)
    ids, mask, _ = pad_to_bucket(tokens, buckets, tokenizer.pad_id, padding_side=padding_side)
    return ids, mask, keep < lengths


def prompt_batches(prompts, tokenizer, max_prompt_tokens, batch_size):
    """A finite, unshuffled dataset of left-padded prompt batches of fixed length `max_prompt_tokens`, for
    sampling from a policy (the last batch may be smaller)."""
    config = PipelineConfig(
        seq_len=max_prompt_tokens + 1,
        max_prompt_tokens=max_prompt_tokens,
        batch_size=batch_size,
        buckets=(max_prompt_tokens,),
        shuffle_buffer=0,
        repeat=False,
        drop_remainder=False,
    )
    source = TextSource([records.Prompt(prompt) for prompt in prompts], "prompt")
    return prompt_dataset_fn(source, config, tokenizer)(None)
