"""Tiny problems and fakes shared by tests, benchmarks and notebooks. Production code never imports this."""

import contextlib
import re
import threading

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from rlhf_tf import training
from rlhf_tf.feedback import labeling_app
from rlhf_tf.feedback import store as store_lib


def regression_data(num_examples=512, features=8, seed=0):
    """A noisy linear-plus-sine target: float32 arrays `x` [num_examples, features] and `y` [num_examples, 1]."""
    generator = np.random.default_rng(seed)
    x = generator.normal(size=(num_examples, features)).astype(np.float32)
    weights = generator.normal(size=(features, 1)).astype(np.float32)
    y = x @ weights + 0.5 * np.sin(2.0 * x[:, :1]) + 0.05 * generator.normal(size=(num_examples, 1))
    return x, y.astype(np.float32)


def regression_dataset_fn(x, y, global_batch_size, shuffle_seed=1):
    """A deterministic, endless, sharded and per-replica-batched dataset function over (x, y)."""

    def dataset_fn(input_context):
        dataset = tf.data.Dataset.from_tensor_slices({"x": x, "y": y})
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
        dataset = training.shard_for_input_pipeline(dataset.repeat(), input_context)
        batch_size = training.per_replica_batch_size(global_batch_size, input_context)
        return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def regression_model(features=8, hidden=32, dropout=0.0):
    """A small Keras 3 MLP, `[batch, features] -> [batch, 1]`."""
    layers = [keras.Input((features,)), keras.layers.Dense(hidden, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers += [keras.layers.Dense(hidden, activation="relu"), keras.layers.Dense(1)]
    return keras.Sequential(layers)


def regression_loss_fn(model):
    """Mean squared error as a replica share, for `GradientStep`."""

    def loss_fn(batch):
        errors = model(batch["x"], training=True) - batch["y"]
        loss = training.global_mean(tf.square(errors))
        return loss, {"abs_error": training.global_mean(tf.abs(errors))}

    return loss_fn


def train_regression(
    output_dir,
    loop_config,
    strategy=None,
    global_batch_size=32,
    learning_rate=1e-2,
    clip_norm=None,
    jit_compile=False,
    dropout=0.0,
    data_seed=0,
    shuffle_seed=1,
):
    """Trains `regression_model` on `regression_data` with the shared loop; returns (model, metrics, loop)."""
    loop = training.TrainLoop(loop_config, output_dir, strategy=strategy, metrics_prefix="regression")
    x, y = regression_data(seed=data_seed)
    with loop.strategy.scope():
        model = regression_model(features=x.shape[1], dropout=dropout)
        optimizer = keras.optimizers.Adam(learning_rate)
        optimizer.build(model.trainable_variables)
    step = training.GradientStep(
        regression_loss_fn(model), model.trainable_variables, optimizer, clip_norm=clip_norm, jit_compile=jit_compile
    )

    def evaluate(step_number):
        errors = model(x, training=False) - y
        return {"regression/eval_mse": float(np.mean(np.square(errors)))}

    metrics = loop.run(
        step,
        regression_dataset_fn(x, y, global_batch_size, shuffle_seed=shuffle_seed),
        checkpoint={"model": model, "optimizer": optimizer},
        evaluate=evaluate,
    )
    return model, metrics, loop


def tiny_gpt2_preset(directory):
    """Saves a 1-layer GPT-2 causal LM with a 6-token BPE vocabulary as a local keras-hub preset; returns its path.

    Stands in for the hub presets users pass by name, which cannot be downloaded here.
    """

    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "Ġ": 3, "ab": 4, "Ġa": 5}
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=["a b", "Ġ a"])
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer=tokenizer, sequence_length=8)
    keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=preprocessor).save_to_preset(str(directory))
    return str(directory)


def tiny_causal_lm(vocabulary_size, seed=0, hidden_dim=16, num_layers=1, max_sequence_length=32):
    """A 1-layer keras-hub GPT-2 causal LM without dropout or preprocessor, seeded (tests and notebooks)."""

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=max_sequence_length,
        dropout=0.0,
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def sign_in(client, token):
    """Signs a Flask test client of the labeling app in as a person does: the login link, then its button."""
    link = client.get(f"/login?token={token}")
    nonce = re.search(r'name="nonce" value="([^"]+)"', link.get_data(as_text=True))
    if nonce is None:
        return link  # an unknown token: the 401 page
    return client.post("/login", data={"token": token, "nonce": nonce.group(1)})


def answer_form(page):
    """The hidden fields an item page's answer form posts: the item, the CSRF token, when it was shown, the ticket."""
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page))
    return {name: hidden[name] for name in ("item_id", "csrf", "shown_at", "ticket")}


@contextlib.contextmanager
def person_answering_by_gold(store_path, name="ann"):
    """A scripted person labelling through the labeling app's HTTP interface while the block runs: they answer
    every item shown to them as its producer's gold verdict says (`metadata["gold_preferred"]`: 0 left, 1 right,
    None a tie). Yields a dict whose "answered" count is final once the block exits."""

    with store_lib.FeedbackStore(store_path) as store:
        token = store.add_labeler(name)
    stop = threading.Event()
    state = {"answered": 0, "errors": []}

    def answer():
        client = labeling_app.create_app(store_path).test_client()
        sign_in(client, token)
        while not stop.is_set():
            page = client.get("/").get_data(as_text=True)
            found = re.search(r'name="item_id" value="(\d+)"', page)
            if not found:
                stop.wait(0.05)
                continue
            with store_lib.FeedbackStore(store_path) as store:
                gold = store.item(int(found.group(1))).metadata["gold_preferred"]
            choice = "tie" if gold is None else ("left", "right")[gold]
            response = client.post("/answer", data={**answer_form(page), "choice": choice})
            if response.status_code != 302:
                state["errors"].append(response.get_data(as_text=True))
            state["answered"] += 1

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=30)
    if state["errors"]:
        raise AssertionError(f"The labeling app refused answers: {state['errors'][:3]}")
