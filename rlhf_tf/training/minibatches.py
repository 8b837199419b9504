"""Epochs of shuffled minibatches over a batch held in memory (RL updates), on one device or split over replicas."""

import numpy as np
import tensorflow as tf

from rlhf_tf.training import distribution


class ReplicaSplitStep:
    """Calls a replica step (a `GradientStep`) on a minibatch: directly on one device; under a multi-device strategy
    the minibatch is split into equal parts, one per replica, and the metrics (replica shares) are summed.

    Build it, like the step, under the strategy's scope.
    """

    def __init__(self, step):
        self.step = step
        self.strategy = tf.distribute.get_strategy()
        self._replicated = tf.function(self._replicated_graph)

    def _replicated_graph(self, minibatch):
        replicas = self.strategy.num_replicas_in_sync

        def split(context):
            index = context.replica_id_in_sync_group
            return {name: tf.split(value, replicas)[index] for name, value in minibatch.items()}

        distributed = self.strategy.experimental_distribute_values_from_function(split)
        return distribution.run_summed(self.strategy, self.step, distributed)

    def __call__(self, minibatch):
        if self.strategy.num_replicas_in_sync == 1:
            return self.step(minibatch)
        return self._replicated(minibatch)


def run_minibatches(batch, epochs, minibatch_size, rng, apply, pad_last=False):
    """`epochs` passes over `batch` ({name: [count, ...] tensors}) in shuffled minibatches; returns the mean of the
    metrics `apply(minibatch)` returns.

    Without `pad_last` a last partial minibatch is dropped. With it, the last minibatch is filled up with repeated
    rows and every minibatch carries a "weight" column (1 for real rows, 0 for fill): one shape for XLA, and nothing
    counted twice if the loss weighs by it.
    """
    count = int(next(iter(batch.values())).shape[0])
    sums, steps = {}, 0
    for _ in range(epochs if count else 0):
        order = rng.permutation(count)
        stop = count if pad_last else count - minibatch_size + 1
        for start in range(0, stop, minibatch_size):
            indices = order[start : start + minibatch_size]
            real = len(indices)
            minibatch = {name: tf.gather(value, np.resize(indices, minibatch_size)) for name, value in batch.items()}
            if pad_last:
                minibatch["weight"] = tf.constant(np.arange(minibatch_size) < real, tf.float32)
            for name, value in apply(minibatch).items():
                sums[name] = sums.get(name, 0.0) + float(value)
            steps += 1
    return {name: total / max(steps, 1) for name, total in sums.items()}
