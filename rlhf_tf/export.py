"""Every servable object leaves through this module as a SavedModel (README, "SavedModels for serving").

- `export_policy`: `serving_default(prompt: string [None]) -> {"response": string [None]}` with tokenization, the
  KV-cached decoding loop (XLA) and detokenization inside the graph.
- `export_reward`: `serving_default(prompt: string [None], response: string [None]) -> {"score": float32 [None]}`,
  tokenization and the truncation rule inside the graph, scores normalised as the model was.
- `export_best_of_n`: the policy signature; n samples per prompt scored by a reward SavedModel held inside, the best
  returned.
The SavedModels load with `tf.saved_model.load` in a process that imports TensorFlow (and tensorflow_text where
WordPiece ops are used) and nothing of rlhf-tf or keras-hub.
"""

import os

import tensorflow as tf

from rlhf_tf.data import pipelines
from rlhf_tf.models import sampling


class PolicyServer(tf.Module):
    """The exported policy: prompts in, sampled responses out."""

    def __init__(self, causal_lm, tokenizer, sampling_config, max_prompt_tokens):
        super().__init__(name="policy")
        self.causal_lm = causal_lm
        self.keras_tokenizer = tokenizer.tokenizer
        self._tokenizer = tokenizer
        self._sampler = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, sampling_config)
        self._max_prompt_tokens = max_prompt_tokens

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")])
    def serve(self, prompt):

        ids, mask, _ = pipelines.tokenize_prompts(
            self._tokenizer, prompt, self._max_prompt_tokens, (self._max_prompt_tokens,)
        )
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
        out = self._sampler._generate(ids, mask, seed)
        return {"response": self._tokenizer.detokenize(out["token_ids"], out["mask"])}


def export_policy(causal_lm, tokenizer, path, sampling_config=None, max_prompt_tokens=32):
    """Writes the policy SavedModel to `path` (replacing it atomically); returns the path."""
    sampling_config = sampling_config or sampling.SamplingConfig()
    server = PolicyServer(causal_lm, tokenizer, sampling_config, max_prompt_tokens)
    return _save(server, path, {"serving_default": server.serve})


class RewardServer(tf.Module):
    """The exported reward model: (prompt, response) strings in; out `score`, normalised (mean 0, std 1 over the
    run's held-out responses: what RL reads), and `raw_score`, the model's own output, on the scale it was trained
    on (for a pairwise model sigmoid(raw_a - raw_b) is the probability that a is preferred: calibration is measured
    on it)."""

    def __init__(self, reward_model, tokenizer, seq_len, max_prompt_tokens):
        super().__init__(name="reward")
        self.reward_model = reward_model
        self.keras_tokenizer = tokenizer.tokenizer
        self._tokenizer = tokenizer
        self._seq_len = seq_len
        self._max_prompt_tokens = max_prompt_tokens

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([None], tf.string, name="response"),
        ]
    )
    def serve(self, prompt, response):

        sequences, _, _ = pipelines.join_prompt_and_response(
            self._tokenizer.tokenize(prompt),
            self._tokenizer.tokenize(response),
            self._seq_len,
            self._max_prompt_tokens,
            self._tokenizer.end_id,
        )
        shape = tf.stack([sequences.nrows(), tf.constant(self._seq_len, tf.int64)])
        token_ids = sequences.to_tensor(default_value=self._tokenizer.pad_id, shape=shape)
        padding_mask = tf.sequence_mask(sequences.row_lengths(), self._seq_len)
        scores = self.reward_model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)
        return {
            "score": tf.cast(self.reward_model.normalized(scores), tf.float32),
            "raw_score": tf.cast(scores, tf.float32),
        }


def export_reward(reward_model, tokenizer, path, seq_len=128, max_prompt_tokens=64):
    """Writes the reward SavedModel: serving_default(prompt, response) -> score (normalised), raw_score (float32)."""
    server = RewardServer(reward_model, tokenizer, seq_len, max_prompt_tokens)
    return _save(server, path, {"serving_default": server.serve})


class BestOfNServer(tf.Module):
    """The exported best-of-n policy: prompts in, the reward model's favourite of n samples out."""

    def __init__(self, causal_lm, tokenizer, reward_path, n, sampling_config, max_prompt_tokens):
        super().__init__(name="best_of_n")
        self.causal_lm = causal_lm
        self.keras_tokenizer = tokenizer.tokenizer
        self.reward = tf.saved_model.load(reward_path)
        self._tokenizer = tokenizer
        self._sampler = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, sampling_config)
        self._n = n
        self._max_prompt_tokens = max_prompt_tokens

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")])
    def serve(self, prompt):
        repeated = tf.repeat(prompt, self._n)

        ids, mask, _ = pipelines.tokenize_prompts(
            self._tokenizer, repeated, self._max_prompt_tokens, (self._max_prompt_tokens,)
        )
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
        out = self._sampler._generate(ids, mask, seed)
        responses = self._tokenizer.detokenize(out["token_ids"], out["mask"])
        scores = self.reward.signatures["serving_default"](prompt=repeated, response=responses)["score"]
        best = tf.argmax(tf.reshape(scores, [-1, self._n]), axis=1, output_type=tf.int32)
        rows = tf.range(tf.shape(prompt)[0]) * self._n + best
        return {"response": tf.gather(responses, rows)}


def export_best_of_n(causal_lm, tokenizer, reward_path, path, n, sampling_config=None, max_prompt_tokens=32):
    """Writes a best-of-n policy SavedModel (the reward SavedModel at `reward_path` inside it); returns the path."""
    server = BestOfNServer(
        causal_lm, tokenizer, reward_path, n, sampling_config or sampling.SamplingConfig(), max_prompt_tokens
    )
    return _save(server, path, {"serving_default": server.serve})


def _save(module, path, signatures):
    # Serving graphs only: the gradient functions of the model's custom-gradient ops (transformer.dense) stay out, so
    # the SavedModel holds no op a serving binary might lack.
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    return write_directory(
        path, lambda temporary: tf.saved_model.save(module, temporary, signatures=signatures, options=options)
    )


def write_directory(path, write):
    """Calls `write(temporary_path)` to write a directory, then puts it at `path` in place of any older one, so a
    kill leaves either the old export or the new one, never half of one. Returns `path`."""
    path = os.fspath(path)
    temporary = f"{path}.tmp"
    if tf.io.gfile.exists(temporary):
        tf.io.gfile.rmtree(temporary)
    write(temporary)
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)
    tf.io.gfile.rename(temporary, path)
    return path
