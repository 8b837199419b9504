"""Judging and shipping a control policy: greedy evaluation on the true reward, the learning-curve plot and the
PolicySaver export."""

import numpy as np
import tensorflow as tf
from tf_agents.policies import policy_saver

from rlhf_tf import export as export_lib
from rlhf_tf import plots, training


def evaluate(policy, environment, episodes_horizon, action=None):
    """Runs the greedy `policy` for one episode in each environment of the batch; returns the true returns.

    Episodes end at the environment's end (or the fixed horizon); rewards after an environment's first end are not
    counted. `action`: the policy's action function already wrapped in `tf.function` (a run evaluating many times
    passes one, traced once); by default one is made for this call.
    """
    action = action or tf.function(policy.action)
    time_step = environment.reset()
    batch = environment.batch_size
    returns = np.zeros(batch, np.float64)
    done = np.zeros(batch, bool)
    state = policy.get_initial_state(batch)
    for _ in range(episodes_horizon):
        step = action(time_step, state)
        state = step.state
        time_step = environment.step(step.action)
        returns += np.where(done, 0.0, time_step.reward.numpy())
        done |= time_step.is_last().numpy()
        if done.all():
            break
    return returns


def export_policy(policy, path, train_step=None):
    """Saves `policy` with TF-Agents' PolicySaver (the CONTRACTS.md control-policy layout), atomically."""

    saver = policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step)
    # `distribution` returns TFP distribution objects, and decoding their TypeSpecs at load time needs
    # tensorflow_probability imported first. The exported policy is greedy, so it is left out: the SavedModel then
    # loads with TensorFlow alone (CONTRACTS.md); the signatures (`action`, `get_initial_state`, `get_train_step`,
    # `get_metadata`) are PolicySaver's.
    delattr(saver._policy, "distribution")
    return export_lib.write_directory(path, saver.save)


def plot_learning_curves(run_directory, train_horizon=None, eval_horizon=None):
    """plots/learning_curves.png: true return (training episodes and evaluations), labels and reward accuracy."""
    scalars = training.read_scalars(run_directory.tensorboard_dir)
    figure, axes = plots.new_figure(columns=2, size=(11, 4))
    steps, returns = plots.series(scalars, "control/true_return_train")
    env_steps = dict(scalars.get("control/env_steps", []))
    train_label = f"training episodes ({train_horizon} steps)" if train_horizon else "training episodes"
    axes[0].plot([env_steps.get(step, step) for step in steps], returns, label=train_label)
    eval_steps, eval_returns = plots.series(scalars, "control/true_return_mean")
    if eval_steps:
        eval_label = f"evaluation, greedy ({eval_horizon} steps)" if eval_horizon else "evaluation, greedy"
        axes[0].plot([env_steps.get(step, step) for step in eval_steps], eval_returns, "o-", label=eval_label)
    axes[0].set_xlabel("environment steps")
    axes[0].set_ylabel("true return")
    axes[0].legend()
    label_steps, labels = plots.series(scalars, "control/labels_used")
    if label_steps:
        axes[1].plot([env_steps.get(step, step) for step in label_steps], labels, label="labels used")
        axes[1].set_ylabel("labels")
        twin = axes[1].twinx()
        accuracy_steps, accuracy = plots.series(scalars, "control/reward_accuracy")
        twin.plot([env_steps.get(step, step) for step in accuracy_steps], accuracy, "g.", label="reward accuracy")
        twin.set_ylabel("reward model accuracy on labels")
    axes[1].set_xlabel("environment steps")
    path = run_directory.plot_path("learning_curves.png")
    return plots.save_png(figure, path)
