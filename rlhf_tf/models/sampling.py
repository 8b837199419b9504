"""Batched sampling for RL: KV-cached decoding compiled with XLA, returning the sampling log-probs from the same pass.

Prompts come left-padded ([batch, prompt_length] with a mask), so every row's last prompt token sits in the last
column and real tokens start at position 0. Each step samples from softmax(logits / temperature), optionally
restricted to the top-k tokens and to the smallest set whose probability reaches top-p, and records the log-prob
of the sampled token under that same distribution. Rows stop at the end token (which is kept, and masked in); the
loop exits early once every row has ended. RL wants an unbiased sampler: temperature 1, no top-k, no top-p; then the
returned log-probs equal a teacher-forced pass over the same sequences (`response_logprobs`) to float tolerance
(`LOGPROB_TOLERANCE`, tested).
"""

import dataclasses

import tensorflow as tf
from absl import logging
from tensorflow.compiler.tf2xla.python import xla

from rlhf_tf import configs
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import families, lora, passes, transformer

# Max abs difference between sampling log-probs and a teacher-forced pass in float32 (XLA vs graph kernels and a
# different summation order in the cached attention).
LOGPROB_TOLERANCE = 1e-3


# The response and prompt budgets every sampling command starts from, set here once (tokens; a response's budget
# includes its end token, and a prompt keeps its last this many tokens).
MAX_NEW_TOKENS = 48
MAX_PROMPT_TOKENS = 32


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How responses are sampled.

    Attributes:
      max_new_tokens: the most tokens a response gets (the end token included).
      temperature: logits are divided by it (> 0).
      top_k: sample among the k most likely tokens (0: all).
      top_p: sample among the most likely tokens whose probability adds up to top_p (1.0: all).
      stop_at_end: stop a row at the end token; False makes every row produce max_new_tokens (benchmarks).
      jit_compile: compile the whole decoding loop with XLA.
    """

    max_new_tokens: int = MAX_NEW_TOKENS
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    stop_at_end: bool = True
    jit_compile: bool = True

    def __post_init__(self):
        configs.require_positive(max_new_tokens=self.max_new_tokens, temperature=self.temperature)
        configs.require_non_negative(top_k=self.top_k)
        configs.require(0 < self.top_p <= 1, "`top_p` must be in (0, 1].", top_p=self.top_p)


def filter_logits(logits, temperature, top_k=0, top_p=1.0):
    """Temperature, top-k and top-p applied to [batch, vocabulary] logits (excluded tokens get -inf)."""
    logits = logits / temperature
    if top_k:
        kth = tf.math.top_k(logits, k=top_k).values[:, -1:]
        logits = tf.where(logits < kth, tf.cast(-float("inf"), logits.dtype), logits)
    if top_p < 1.0:
        sorted_logits = tf.sort(logits, direction="DESCENDING", axis=-1)
        cumulative = tf.cumsum(tf.nn.softmax(sorted_logits, axis=-1), axis=-1, exclusive=True)
        # The smallest logit still inside the nucleus: everything below it is cut.
        cutoff = tf.reduce_min(
            tf.where(cumulative < top_p, sorted_logits, sorted_logits[:, :1]), axis=-1, keepdims=True
        )
        logits = tf.where(logits < cutoff, tf.cast(-float("inf"), logits.dtype), logits)
    return logits


class Sampler:
    """Samples responses from a keras-hub causal LM.

    Families with fast passes (`families.FAST_FAMILIES`) decode through `transformer`'s cached pass over left-padded
    prompts; any other keras-hub `CausalLM` decodes through its own `call_with_cache`, with each row's prompt moved
    to the start of the buffer (keras-hub's own layout, so positions are right for every family) and each row's
    response read back from where its prompt ends. Both return the same things.

    Args:
      model: a `keras_hub.models.CausalLM` (or, for fast families, its backbone). Its variables are read at every
        call, so training updates show.
      end_id, pad_id: the tokenizer's end and padding ids.
      config: a `SamplingConfig`.
      adapters: False samples from a LoRA model's frozen base (its adapters off; the reference policy).
      rows: (offset, total) when this sampler draws rows offset.. of a global batch of `total` rows split over
        workers: each row then gets the very tokens one process sampling the whole batch would draw (the stateless
        draw is made over the global batch's shape, the other workers' rows filled with zero logits), so a
        multi-worker run samples what a single process does. None: the batch is the whole batch.

    Example:
    ```python
    sampler = Sampler(policy, tokenizer.end_id, tokenizer.pad_id, SamplingConfig(max_new_tokens=48))
    out = sampler.generate(batch["token_ids"], batch["padding_mask"], seed=[0, 7])
    out["token_ids"], out["mask"], out["logprobs"]  # each [batch, max_new_tokens]
    ```
    """

    def __init__(self, model, end_id, pad_id, config=None, adapters=True, rows=None):
        self.rows = rows
        backbone = getattr(model, "backbone", model)
        self.backbone = backbone
        self.causal_lm = model if backbone is not model else None
        self.end_id = int(end_id)
        self.pad_id = int(pad_id)
        self.config = config = config or SamplingConfig()
        if families.supports(backbone):
            graph = self._generate_graph
        elif self.causal_lm is None:
            raise UserInputError(
                f"{type(backbone).__name__} has no fast sampler: give the Sampler its causal LM (it decodes through "
                "the model's own call_with_cache)."
            )
        else:
            passes.note_generic(backbone)
            # Measured once per model object (a structural property), not at every Sampler built for it.
            if not hasattr(self.causal_lm, "_rlhf_cache_matches"):
                self.causal_lm._rlhf_cache_matches = cache_matches_full_call(self.causal_lm)
            self._cached = self.causal_lm._rlhf_cache_matches
            graph = self._generate_generic_graph
        if not adapters:  # sample from a LoRA model's frozen base
            graph = lora.base_function(graph, backbone)
        self._generate = tf.function(graph, jit_compile=config.jit_compile)

    def generate(self, prompt_ids, prompt_mask, seed):
        """Samples for left-padded prompts; returns {"token_ids", "mask", "logprobs"}, each [batch, max_new_tokens]."""
        prompt_ids = tf.convert_to_tensor(prompt_ids, tf.int32)
        families.check_positions(
            self.backbone,
            prompt_ids.shape[1] + self.config.max_new_tokens,
            f"{prompt_ids.shape[1]} prompt tokens plus max_new_tokens={self.config.max_new_tokens}",
            type(self.backbone).__name__,
        )
        return self._generate(
            prompt_ids,
            tf.convert_to_tensor(prompt_mask, tf.bool),
            tf.convert_to_tensor(seed, tf.int32),
        )

    def _sample(self, logits, seed, step):
        """(token, log-prob) [batch] drawn from the filtered distribution."""
        config = self.config
        filtered = filter_logits(tf.cast(logits, tf.float32), config.temperature, config.top_k, config.top_p)
        step_seed = tf.random.experimental.stateless_fold_in(seed, step)
        if self.rows is None:
            token = tf.cast(tf.random.stateless_categorical(filtered, 1, step_seed)[:, 0], tf.int32)
        else:
            offset, total = self.rows
            local = tf.shape(filtered)[0]
            padded = tf.pad(filtered, [[offset, total - offset - local], [0, 0]])
            drawn = tf.random.stateless_categorical(padded, 1, step_seed)[:, 0]
            token = tf.cast(drawn[offset : offset + local], tf.int32)
        return token, tf.gather(tf.nn.log_softmax(filtered, axis=-1), token, batch_dims=1)

    def _generate_graph(self, prompt_ids, prompt_mask, seed):
        config = self.config
        weights = families.read_weights(self.backbone)
        batch = tf.shape(prompt_ids)[0]
        prompt_length = tf.shape(prompt_ids)[1]
        steps = config.max_new_tokens
        last_hidden, caches = transformer.prompt_pass(weights, prompt_ids, prompt_mask, prompt_length + steps)
        lengths = tf.reduce_sum(tf.cast(prompt_mask, tf.int32), axis=1)
        key_mask = tf.concat([prompt_mask, tf.zeros([batch, steps], tf.bool)], axis=1)
        next_logits = transformer.logits(weights, last_hidden)

        def body(step, next_logits, caches, key_mask, done, tokens, logprobs, masks):
            token, logprob = self._sample(next_logits, seed, step)
            live = tf.logical_not(done)
            token = tf.where(live, token, self.pad_id)
            logprob = tf.where(live, logprob, 0.0)
            tokens = xla.dynamic_update_slice(tokens, token[:, None], [0, step])
            logprobs = xla.dynamic_update_slice(logprobs, logprob[:, None], [0, step])
            masks = xla.dynamic_update_slice(masks, live[:, None], [0, step])
            if config.stop_at_end:
                done = tf.logical_or(done, tf.equal(token, self.end_id))
            key_mask = xla.dynamic_update_slice(key_mask, live[:, None], [0, prompt_length + step])
            hidden, caches = transformer.decode_step(
                weights, token, lengths + step, caches, prompt_length + step, key_mask
            )
            return step + 1, transformer.logits(weights, hidden), caches, key_mask, done, tokens, logprobs, masks

        def condition(step, next_logits, caches, key_mask, done, tokens, logprobs, masks):
            return tf.logical_and(step < steps, tf.logical_not(tf.reduce_all(done)))

        initial = (
            tf.constant(0),
            next_logits,
            caches,
            key_mask,
            tf.zeros([batch], tf.bool),
            tf.fill([batch, steps], tf.constant(self.pad_id, tf.int32)),
            tf.zeros([batch, steps], tf.float32),
            tf.zeros([batch, steps], tf.bool),
        )
        _, _, _, _, _, tokens, logprobs, masks = tf.while_loop(condition, body, initial, maximum_iterations=steps)
        return {"token_ids": tokens, "mask": masks, "logprobs": logprobs}

    def _generate_generic_graph(self, prompt_ids, prompt_mask, seed):
        """keras-hub's decoding layout: a [batch, prompt + steps] buffer holding each prompt from index 0; every
        step runs `call_with_cache` on one column and fills the next, keeping prompt tokens where a row's prompt is
        longer, so the loop starts at the shortest prompt. Row r's response step s sits at its length + s. A model
        whose cached call disagrees with its full call (`cache_matches_full_call`) runs the full call every step.
        """
        config, causal_lm = self.config, self.causal_lm
        batch, prompt_length = tf.shape(prompt_ids)[0], tf.shape(prompt_ids)[1]
        steps = config.max_new_tokens
        lengths = tf.reduce_sum(tf.cast(prompt_mask, tf.int32), axis=1)
        packed = passes.shift_left(prompt_ids, passes.first_real(prompt_mask), self.pad_id)
        buffer = tf.concat([packed, tf.fill([batch, steps], tf.constant(self.pad_id, tf.int32))], axis=1)
        cache = causal_lm._build_cache(buffer)[1] if self._cached else tf.zeros([])
        columns = tf.range(steps)[None]

        def next_logits(index, buffer, cache):
            if self._cached:
                previous = tf.gather(buffer, index - 1, axis=1)
                logits, _, cache = causal_lm.call_with_cache(previous[:, None], cache, index - 1)
                return logits[:, -1], cache
            seen = tf.broadcast_to(tf.range(tf.shape(buffer)[1])[None] < index, tf.shape(buffer))
            hidden = self.backbone({"token_ids": buffer, "padding_mask": seen})
            return self.backbone.token_embedding(tf.gather(hidden, index - 1, axis=1), reverse=True), cache

        def body(index, buffer, cache, done, tokens, logprobs, masks):
            logits, cache = next_logits(index, buffer, cache)
            token, logprob = self._sample(logits, seed, index)
            step = index - lengths
            live = tf.logical_and(step >= 0, tf.logical_not(done))
            live = tf.logical_and(live, step < steps)
            token = tf.where(live, token, self.pad_id)
            in_prompt = step < 0
            buffer = xla.dynamic_update_slice(
                buffer, tf.where(in_prompt, tf.gather(buffer, index, axis=1), token)[:, None], [0, index]
            )
            here = tf.logical_and(tf.equal(columns, step[:, None]), live[:, None])
            tokens = tf.where(here, token[:, None], tokens)
            logprobs = tf.where(here, logprob[:, None], logprobs)
            masks = tf.logical_or(masks, here)
            if config.stop_at_end:
                done = tf.logical_or(done, tf.logical_and(live, tf.equal(token, self.end_id)))
            return index + 1, buffer, cache, done, tokens, logprobs, masks

        def condition(index, buffer, cache, done, tokens, logprobs, masks):
            finished = tf.logical_or(done, index - lengths >= steps)
            return tf.logical_and(index < prompt_length + steps, tf.logical_not(tf.reduce_all(finished)))

        initial = (
            tf.maximum(tf.reduce_min(lengths), 1),
            buffer,
            cache,
            tf.zeros([batch], tf.bool),
            tf.fill([batch, steps], tf.constant(self.pad_id, tf.int32)),
            tf.zeros([batch, steps], tf.float32),
            tf.zeros([batch, steps], tf.bool),
        )
        _, _, _, _, tokens, logprobs, masks = tf.while_loop(condition, body, initial)
        return {"token_ids": tokens, "mask": masks, "logprobs": logprobs}


# keras-hub causal LMs whose cached call is known to disagree with their full call (keras-hub 0.32's GPT-NeoX
# rotates cached queries as if at position 0). A fresh model's small weights can hide the difference from the
# numerical check below, so these decode through the full call whatever it measures (tested on trained-size
# weights in tests/models/families_test.py).
CACHE_DISAGREES = ("GPTNeoXCausalLM",)


def cache_matches_full_call(causal_lm, length=8, tolerance=1e-4):
    """Whether `causal_lm`'s cached decoding (`call_with_cache`, one token at a time) gives the logits of its full
    call (max difference within `tolerance` x the logits' scale). Where it does not, the generic sampler decodes
    with the full call: slower, but it samples from the model the learners train."""
    vocabulary = int(causal_lm.backbone.vocabulary_size)
    ids = tf.random.stateless_uniform([1, length], [7, 7], 0, min(vocabulary, 1000), tf.int32)
    full = causal_lm.backbone({"token_ids": ids, "padding_mask": tf.ones_like(ids, tf.bool)})
    full = tf.cast(causal_lm.backbone.token_embedding(full, reverse=True), tf.float32)
    _, cache = causal_lm._build_cache(ids)
    stepped = []
    for index in range(length):
        logits, _, cache = causal_lm.call_with_cache(ids[:, index : index + 1], cache, index)
        stepped.append(logits[:, 0])
    difference = float(tf.reduce_max(tf.abs(tf.cast(tf.stack(stepped, 1), tf.float32) - full)))
    matches = difference <= tolerance * max(1.0, float(tf.reduce_max(tf.abs(full))))
    matches = matches and type(causal_lm).__name__ not in CACHE_DISAGREES
    if not matches:
        logging.warning(
            "%s's cached call disagrees with its full call (max logit difference %.3g here); sampling runs the full "
            "call at every step instead.",
            type(causal_lm).__name__,
            difference,
        )
    return matches


def teacher_forced(
    backbone, prompt_ids, prompt_mask, response_ids, response_mask, temperature=1.0, value_head=None, model_passes=None
):
    """One teacher-forced pass over left-padded prompts and their responses.

    Returns {"logprobs", "entropy"} [batch, response_length] (and "values" when a `ValueHead` is given: the value
    of the state each response token is chosen in, read from the same hidden states), zero where the mask is off.
    Differentiable with respect to the backbone's (and the head's) variables. `model_passes` (from `passes.read`) picks
    the pass and its dtype; by default the backbone's own.
    """
    model = model_passes or passes.read(backbone)
    response_mask = tf.cast(response_mask, tf.bool)
    ids = tf.concat([prompt_ids, response_ids], axis=1)
    mask = tf.concat([tf.cast(prompt_mask, tf.bool), response_mask], axis=1)
    hidden = model.hidden(ids, mask)
    prompt_length = tf.shape(prompt_ids)[1]
    response_length = tf.shape(response_ids)[1]
    predicting = hidden[:, prompt_length - 1 : prompt_length - 1 + response_length]
    log_probabilities = tf.nn.log_softmax(tf.cast(model.logits(predicting), tf.float32) / temperature, axis=-1)
    token_logprobs = tf.gather(log_probabilities, response_ids, batch_dims=2)
    entropy = -tf.reduce_sum(tf.exp(log_probabilities) * log_probabilities, axis=-1)
    zeros = tf.zeros_like(token_logprobs)
    outputs = {
        "logprobs": tf.where(response_mask, token_logprobs, zeros),
        "entropy": tf.where(response_mask, entropy, zeros),
    }
    if value_head is not None:
        outputs["values"] = tf.where(response_mask, tf.cast(value_head(predicting), tf.float32), zeros)
    return outputs


def response_logprobs(backbone, prompt_ids, prompt_mask, response_ids, response_mask, temperature=1.0):
    """Teacher-forced per-token (log-probs, entropies) of responses after left-padded prompts (see
    `teacher_forced`)."""
    outputs = teacher_forced(backbone, prompt_ids, prompt_mask, response_ids, response_mask, temperature)
    return outputs["logprobs"], outputs["entropy"]
