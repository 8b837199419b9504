import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from rlhf_tf import files, testing, training


def _weights(model):
    return [np.array(weight) for weight in model.weights]


def _assert_same_weights(left, right, atol=1e-6):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)


def test_loop_trains_to_known_loss(tmp_path):
    x, y = testing.regression_data()
    untrained = testing.regression_model()
    untrained_mse = float(np.mean(np.square(untrained(x) - y)))
    config = training.LoopConfig(steps=400, log_every=50, checkpoint_every=200, progress=False)
    _, metrics, _ = testing.train_regression(tmp_path, config)
    assert untrained_mse > 1.0
    assert metrics["regression/eval_mse"] < 0.05
    assert metrics["regression/steps"] == 400
    saved = files.read_json(tmp_path / "metrics.json")
    assert saved["regression/eval_mse"] == pytest.approx(metrics["regression/eval_mse"])
    assert files.read_json(tmp_path / "config.json")["steps"] == 400


def test_tensorboard_has_training_scalars(tmp_path):
    config = training.LoopConfig(steps=100, log_every=25, checkpoint_every=100, progress=False)
    testing.train_regression(tmp_path, config)
    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    accumulator.Reload()
    tags = accumulator.Tags()["tensors"]
    assert "regression/loss" in tags and "regression/eval_mse" in tags
    steps = [event.step for event in accumulator.Tensors("regression/loss")]
    assert steps == [25, 50, 75, 100]


def test_resume_ends_with_the_same_weights(tmp_path):
    # Dropout and shuffling make the run depend on RNG state and input position, which resume must restore.
    kwargs = dict(dropout=0.2)
    full, _, _ = testing.train_regression(
        tmp_path / "full", training.LoopConfig(steps=120, log_every=10, checkpoint_every=50, progress=False), **kwargs
    )
    testing.train_regression(
        tmp_path / "split", training.LoopConfig(steps=70, log_every=10, checkpoint_every=50, progress=False), **kwargs
    )
    resumed, metrics, _ = testing.train_regression(
        tmp_path / "split", training.LoopConfig(steps=120, log_every=10, checkpoint_every=50, progress=False), **kwargs
    )
    assert metrics["regression/steps"] == 120
    _assert_same_weights(_weights(full), _weights(resumed))


def test_interrupt_saves_a_checkpoint_and_resumes(tmp_path):
    config = training.LoopConfig(steps=90, log_every=10, checkpoint_every=1000, eval_every=30, progress=False)
    full, _, _ = testing.train_regression(tmp_path / "full", config)

    loop = training.TrainLoop(config, tmp_path / "interrupted", metrics_prefix="regression")
    x, y = testing.regression_data()
    with loop.strategy.scope():
        import keras

        model = testing.regression_model()
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(model.trainable_variables)

    def evaluate(step):
        if step == 30:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        loop.run(
            training.GradientStep(testing.regression_loss_fn(model), model.trainable_variables, optimizer),
            testing.regression_dataset_fn(x, y, 32),
            checkpoint={"model": model, "optimizer": optimizer},
            evaluate=evaluate,
        )
    assert tf.train.latest_checkpoint(tmp_path / "interrupted" / "ckpt").endswith("ckpt-30")
    resumed, metrics, _ = testing.train_regression(tmp_path / "interrupted", config)
    assert metrics["regression/steps"] == 90
    _assert_same_weights(_weights(full), _weights(resumed))


def test_steps_per_loop_keeps_results_and_event_steps(tmp_path):
    base = training.LoopConfig(steps=50, log_every=10, checkpoint_every=20, progress=False)
    single, single_metrics, _ = testing.train_regression(tmp_path / "one", base)
    import dataclasses

    chunked, chunked_metrics, _ = testing.train_regression(
        tmp_path / "seven", dataclasses.replace(base, steps_per_loop=7)
    )
    _assert_same_weights(_weights(single), _weights(chunked))
    assert sorted(os.listdir(tmp_path / "seven" / "ckpt")) == sorted(os.listdir(tmp_path / "one" / "ckpt"))
    assert chunked_metrics["regression/steps"] == single_metrics["regression/steps"] == 50


def test_xla_and_graph_steps_agree(tmp_path):
    config = training.LoopConfig(steps=40, log_every=10, checkpoint_every=40, progress=False)
    graph, _, _ = testing.train_regression(tmp_path / "graph", config, clip_norm=0.5)
    xla, metrics, _ = testing.train_regression(tmp_path / "xla", config, clip_norm=0.5, jit_compile=True)
    _assert_same_weights(_weights(graph), _weights(xla), atol=1e-4)
    assert "regression/grad_norm" in metrics


def test_divergence_stops_the_run_with_a_clear_error(tmp_path):
    config = training.LoopConfig(steps=20, log_every=5, checkpoint_every=20, progress=False)
    loop = training.TrainLoop(config, tmp_path)
    dataset_fn = lambda context: tf.data.Dataset.from_tensors(tf.constant(1.0)).repeat()  # noqa: E731
    with pytest.raises(training.TrainingDiverged, match=r"diverged at step 5.*train/loss"):
        loop.run(lambda batch: {"loss": batch * float("nan")}, dataset_fn, checkpoint={})


def test_step_function_must_return_a_dict(tmp_path):
    loop = training.TrainLoop(training.LoopConfig(steps=5, progress=False), tmp_path)
    dataset_fn = lambda context: tf.data.Dataset.from_tensors(tf.constant(1.0)).repeat()  # noqa: E731
    with pytest.raises(TypeError, match="must return a dict"):
        loop.run(lambda batch: batch, dataset_fn, checkpoint={})


def test_host_level_iterations_checkpoint_log_and_resume(tmp_path):
    import numpy as np

    def make(steps, directory):
        loop = training.TrainLoop(
            training.LoopConfig(steps=steps, log_every=2, checkpoint_every=3, progress=False), directory
        )
        total = tf.Variable(0.0)

        def iteration(step):
            # Randomness drawn from the step number, so that a resumed run repeats the uninterrupted one.
            value = float(np.random.default_rng(step).normal())
            total.assign_add(value)
            return {"value": value}

        return loop.run_iterations(iteration, checkpoint={"total": total}), total

    whole, whole_total = make(7, tmp_path / "whole")
    make(4, tmp_path / "split")
    resumed, resumed_total = make(7, tmp_path / "split")
    assert whole["train/steps"] == resumed["train/steps"] == 7
    assert float(resumed_total.numpy()) == pytest.approx(float(whole_total.numpy()))
    assert sorted(os.listdir(tmp_path / "whole" / "ckpt"))[-2:] == ["ckpt-7.data-00000-of-00001", "ckpt-7.index"]


def _scripted_run(directory, values, patience=2):
    """A regression run whose held-out metric follows `values` ({step: value}); records the weights at each
    evaluation. Returns (model, metrics, weights seen at each evaluation step)."""
    import keras

    config = training.LoopConfig(steps=100, log_every=10, checkpoint_every=20, eval_every=10, progress=False)
    loop = training.TrainLoop(config, directory, metrics_prefix="regression")
    x, y = testing.regression_data()
    with loop.strategy.scope():
        model = testing.regression_model()
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(model.trainable_variables)
    seen = {}

    def evaluate(step):
        seen.setdefault(step, _weights(model))  # the first look: the restore evaluates again
        return {"regression/eval_mse": values.get(step, 9.0)}

    stopper = training.EarlyStopping("regression/eval_mse", {"model": model}, patience=patience)
    metrics = loop.run(
        training.GradientStep(testing.regression_loss_fn(model), model.trainable_variables, optimizer),
        testing.regression_dataset_fn(x, y, 32),
        checkpoint={"model": model, "optimizer": optimizer},
        evaluate=evaluate,
        early_stopping=stopper,
    )
    return model, metrics, seen


def test_early_stopping_stops_after_patience_and_keeps_the_best_weights(tmp_path):
    values = {10: 1.0, 20: 0.5, 30: 0.6, 40: 0.55, 50: 0.1}
    model, metrics, seen = _scripted_run(tmp_path, values)
    # Two evaluations (30, 40) without beating step 20's 0.5: the run ends at 40, with step 20's weights.
    assert metrics["regression/steps"] == 40
    assert metrics["regression/best_step"] == 20
    assert metrics["regression/best_eval_mse"] == 0.5
    assert metrics["regression/stopped_early"] == 1.0
    _assert_same_weights(_weights(model), seen[20], atol=0)
    assert not np.allclose(seen[20][0], seen[40][0])  # training moved on after step 20: the restore mattered
    assert os.listdir(tmp_path / "ckpt" / "best")

    # Rerunning the finished command trains nothing more and ends with the same weights.
    again, metrics_again, seen_again = _scripted_run(tmp_path, values)
    assert metrics_again["regression/steps"] == 40 and list(seen_again) == [40]
    _assert_same_weights(_weights(again), seen[20], atol=0)


def test_early_stopping_without_patience_runs_every_step_and_keeps_the_best(tmp_path):
    values = {10: 1.0, 20: 0.5, 30: 0.6, 40: 0.55}
    model, metrics, seen = _scripted_run(tmp_path, values, patience=0)
    assert metrics["regression/steps"] == 100 and metrics["regression/stopped_early"] == 0.0
    assert metrics["regression/best_step"] == 20
    _assert_same_weights(_weights(model), seen[20], atol=0)


def test_early_stopping_needs_evaluations_and_its_metric(tmp_path):
    config = training.LoopConfig(steps=5, progress=False)
    loop = training.TrainLoop(config, tmp_path)
    dataset_fn = lambda context: tf.data.Dataset.from_tensors(tf.constant(1.0)).repeat()  # noqa: E731
    with pytest.raises(ValueError, match="needs periodic evaluations"):
        loop.run(
            lambda batch: {"loss": batch},
            dataset_fn,
            checkpoint={},
            evaluate=lambda step: {},
            early_stopping=training.EarlyStopping("eval/loss", {}),
        )
    stopper = training.EarlyStopping("eval/loss", {})
    with pytest.raises(KeyError, match="did not return"):
        stopper.observe(10, {"eval/accuracy": 0.5})
