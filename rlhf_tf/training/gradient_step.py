"""One optimizer step from a loss function, correct under every tf.distribute strategy."""

import tensorflow as tf

from rlhf_tf import configs
from rlhf_tf.training import distribution


class GradientStep:
    """Turns `loss_fn(batch) -> (loss, metrics)` into a replica step for `TrainLoop`.

    The loss and metrics `loss_fn` returns are this replica's shares (`distribution.global_mean`). The step takes
    the gradient, clips it by the global norm of the all-replica gradient when `clip_norm` is set, and applies it
    with the Keras optimizer, which sums the replicas' gradients.

    XLA: with `jit_compile=True` and one replica the whole step (forward, backward and optimizer update) is one XLA
    cluster; with `jit_compile=False` it is a graph (`tf.function`). Under several replicas (MirroredStrategy,
    MultiWorkerMirroredStrategy) the gradient all-reduce is a synchronisation point that TensorFlow does not allow
    inside a nested compiled function, so the step runs as a graph without XLA there; TPUStrategy compiles
    everything regardless.

    Args:
      loss_fn: `batch -> (loss, metrics)`; `loss` a scalar share, `metrics` a dict of scalar shares.
      variables: the variables to train (e.g. `model.trainable_variables`).
      optimizer: a built Keras 3 optimizer (`optimizer.build(variables)` under the strategy's scope).
      clip_norm: clip the global gradient norm to this value (None: no clipping). Adds `grad_norm` to metrics.
      jit_compile: compile with XLA where possible (see above).

    Example:
    ```python
    def loss_fn(batch):
        errors = model(batch["x"]) - batch["y"]
        loss = distribution.global_mean(tf.square(errors))
        return loss, {}
    step = GradientStep(loss_fn, model.trainable_variables, optimizer, clip_norm=1.0, jit_compile=True)
    loop.run(step, dataset_fn, checkpoint={"model": model, "optimizer": optimizer})
    ```
    """

    def __init__(self, loss_fn, variables, optimizer, clip_norm=None, jit_compile=False):
        if clip_norm is not None:
            configs.require_positive(clip_norm=clip_norm)
        variables = list(variables)
        configs.require(len(variables) > 0, "`variables` is empty: build the model before the step.", variables=[])
        self.loss_fn = loss_fn
        self.variables = variables
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.jit_compile = jit_compile
        self._compiled = None

    def __call__(self, batch):
        if self._compiled is None:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            # One device: a graph, compiled with XLA when asked (called from Python, as the RL learners do, the
            # step would otherwise run eagerly op by op). Several replicas: the caller's strategy.run, inside its
            # own tf.function, traces the step into its graph.
            self._compiled = tf.function(self._step, jit_compile=self.jit_compile) if replicas == 1 else self._step
        return self._compiled(batch)

    def _step(self, batch):
        with tf.GradientTape() as tape:
            loss, metrics = self.loss_fn(batch)
        gradients = tape.gradient(loss, self.variables)
        # Embedding gradients arrive as IndexedSlices. Made dense: their global norm counts repeated tokens once
        # (the norm of IndexedSlices values does not, which mis-clips), and collective all-reduce needs the same
        # shape on every replica, whatever tokens each one saw.
        gradients = [None if g is None else tf.convert_to_tensor(g) for g in gradients]
        metrics = dict(metrics)
        if self.clip_norm is not None:
            gradients, norm = self._clip(gradients)
            metrics["grad_norm"] = distribution.replica_share(norm)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        metrics["loss"] = loss
        return metrics

    def _clip(self, gradients):
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        if replicas > 1:
            # The norm must be that of the summed gradient, so sum here; the optimizer sums again, so hand it
            # each replica's equal part of the clipped sum.
            gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        clipped, norm = tf.clip_by_global_norm(gradients, self.clip_norm)
        if replicas > 1:
            clipped = [gradient / replicas for gradient in clipped]
        return clipped, norm
