"""tf.distribute glue: choosing a strategy, and reducing per-replica values so that every strategy agrees.

The rule every step function follows: a value it returns (the loss, a metric) is this replica's *share* of the
global value, and the loop adds the shares across replicas. `global_mean` makes such shares. Gradients of shares,
summed across replicas (which Keras optimizers do), are the gradients of the global mean, so one replica and many
replicas take the same step on the same global batch.
"""

import functools
import json
import os

import tensorflow as tf

from rlhf_tf import configs

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def configure_cpu_devices(count):
    """Splits the host CPU into `count` logical devices (for testing multi-device code without accelerators).

    Must run before TensorFlow initialises its devices, i.e. before any op runs.
    """
    configs.require_positive(cpu_devices=count)
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise RuntimeError(
            "Logical CPU devices must be configured before TensorFlow runs its first op; call "
            f"configure_cpu_devices({count}) (or pass --cpu_devices) at the start of the program. "
            f"Received: {error}"
        ) from error


def _tpu_available():
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or tf.config.list_logical_devices("TPU"))


def _multi_worker_configured():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON. Received: {os.environ.get('TF_CONFIG')!r}") from error
    return sum(len(tasks) for name, tasks in cluster.items() if name in ("chief", "worker")) > 1


def create_strategy(kind="auto"):
    """Returns a tf.distribute strategy.

    Args:
      kind: "default" (one device), "mirrored" (all local GPUs, or all logical CPU devices), "multi_worker"
        (MultiWorkerMirroredStrategy from TF_CONFIG), "tpu" (TPUStrategy, e.g. a Colab TPU), or "auto": a TPU if
        one is attached, multi-worker if TF_CONFIG names several workers, mirrored if there are several GPUs or
        logical CPUs, else the default strategy.
    """
    configs.require_choice("strategy", kind, STRATEGIES)
    if kind == "auto":
        if _tpu_available():
            kind = "tpu"
        elif _multi_worker_configured():
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1 or len(tf.config.list_logical_devices("CPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        return _mirrored(tuple(device.name for device in (gpus or tf.config.list_logical_devices("CPU"))))
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


@functools.cache
def _mirrored(devices):
    # One MirroredStrategy per device set and process: separate instances number their collective ops from the
    # same keys, and two collectives of different shapes under one key abort each other.
    return tf.distribute.MirroredStrategy(list(devices))


def is_chief(strategy):
    """True on the worker that writes files (always true for single-host strategies)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)


def num_replicas():
    """Replicas in sync under the current strategy (1 outside any)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def _all_reduce_sum(value):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def global_mean(values, weights=None):
    """This replica's share of the mean of `values` over all replicas' batches.

    share = sum_local(weights * values) / sum_all_replicas(weights). Summed over replicas it is the weighted mean of
    the global batch, whatever the split, so masked token losses stay exact when replicas hold different numbers
    of real tokens. Call it in replica context (inside the step function).

    Args:
      values: a float tensor of any shape.
      weights: a tensor broadcastable to `values` (a mask, say); None weighs every element 1.
    """
    values = tf.convert_to_tensor(values)
    weights = tf.ones_like(values) if weights is None else tf.cast(weights, values.dtype) * tf.ones_like(values)
    denominator = tf.stop_gradient(_all_reduce_sum(tf.reduce_sum(weights)))
    return tf.reduce_sum(values * weights) / tf.maximum(denominator, 1e-12)


def square_of_global(share):
    """A replica share of (global value)^2 whose gradient is right: with M = sum of the shares over replicas,
    returns stop(M) * (2 * share - stop(M) / replicas). Summed over replicas it is M^2, and its gradient is
    2 M dM, as if one device had computed M^2 (a penalty on a global mean, say)."""
    total = tf.stop_gradient(_all_reduce_sum(share))
    context = tf.distribute.get_replica_context()
    replicas = 1 if context is None else context.num_replicas_in_sync
    return total * (2.0 * share - total / replicas)


def replica_share(value):
    """A value that every replica holds in full (a learning rate) as a share: value / num_replicas."""
    context = tf.distribute.get_replica_context()
    count = 1 if context is None else context.num_replicas_in_sync
    return tf.cast(value, tf.float32) / count


def shard_for_input_pipeline(dataset, input_context):
    """Gives each input pipeline (one per host) its own part of the examples. Shard before shuffling."""
    if input_context is not None and input_context.num_input_pipelines > 1:
        return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return dataset


def per_replica_batch_size(global_batch_size, input_context):
    """The batch size one replica gets, so that all replicas together see `global_batch_size`."""
    if input_context is None:
        return global_batch_size
    replicas = input_context.num_replicas_in_sync
    configs.require(
        global_batch_size % replicas == 0,
        "The global batch size must divide evenly across replicas.",
        global_batch_size=global_batch_size,
        replicas=replicas,
    )
    return input_context.get_per_replica_batch_size(global_batch_size)
