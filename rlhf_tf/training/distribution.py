"""tf.distribute glue: choosing a strategy, and reducing per-replica values so that every strategy agrees.

The rule every step function follows: a value it returns (the loss, a metric) is this replica's *share* of the
global value, and the loop adds the shares across replicas. `global_mean` makes such shares. Gradients of shares,
summed across replicas (which Keras optimizers do), are the gradients of the global mean, so one replica and many
replicas take the same step on the same global batch.
"""

import contextlib
import errno
import functools
import json
import os
import signal
import socket

import tensorflow as tf

from rlhf_tf import configs
from rlhf_tf.errors import UserInputError

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")

# How long a worker of a multi-worker run waits for all the others to join before it gives up with an error naming
# the ones missing (environment variable RLHF_TF_JOIN_TIMEOUT, seconds; `rlhf-tf launch --join_timeout` sets it).
JOIN_TIMEOUT_SECONDS = 300
# The exit status of a worker that saved a checkpoint because it (or another worker) was asked to stop (SIGTERM:
# a spot VM's or TPU maintenance notice). Rerunning the same command resumes. 42 is TensorFlow's own choice
# (tf.distribute.experimental.TerminationConfig's default on clusters that restart jobs on it).
PREEMPTED_EXIT_STATUS = 42
_TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'


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


class Cluster:
    """The multi-worker cluster TF_CONFIG describes, checked: `workers` ("host:port" of every task, the chief first
    when there is one), this process's `task_type`, `task_index` and `index` among `workers`."""

    def __init__(self, jobs, task_type, task_index):
        self.jobs = jobs
        self.task_type, self.task_index = task_type, task_index
        self.workers = [address for job in ("chief", "worker") for address in jobs.get(job, [])]
        self.index = self.position(task_type, task_index)

    def position(self, job, index):
        """The place of task `index` of `job` among `workers`."""
        return index + (len(self.jobs.get("chief", [])) if job == "worker" else 0)

    @property
    def name(self):
        return f"{self.task_type} {self.task_index}"

    @property
    def address(self):
        return self.jobs[self.task_type][self.task_index]


def _tf_config_error(problem, text):
    return UserInputError(
        f"TF_CONFIG {problem}. Received: {text!r}. It should look like {_TF_CONFIG_EXAMPLE} (every worker gets the "
        "same cluster and its own task index); `rlhf-tf launch --workers=N` writes it for workers on this machine."
    )


def cluster_from_environment():
    """The `Cluster` in TF_CONFIG, checked (a clear error for each way it can be wrong); None when TF_CONFIG is unset
    or names a single task. When `rlhf-tf launch` started this process (RLHF_TF_WORKERS is set), the cluster must
    have that many workers."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise _tf_config_error(f"is not valid JSON ({error.msg} at character {error.pos})", text) from error
    if not isinstance(config, dict) or not isinstance(config.get("cluster", {}), dict):
        raise _tf_config_error('must be an object with a "cluster" object', text)
    jobs = config.get("cluster", {})
    for job, addresses in jobs.items():
        if job not in ("chief", "worker"):
            raise _tf_config_error(
                f'names a "{job}" job; rlhf-tf trains with MultiWorkerMirroredStrategy, whose cluster has only '
                '"chief" and "worker" jobs',
                text,
            )
        if not isinstance(addresses, list) or not addresses:
            raise _tf_config_error(f'has cluster.{job} = {addresses!r}; it must be a list of "host:port"', text)
        for position, address in enumerate(addresses):
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise _tf_config_error(f'has cluster.{job}[{position}] = {address!r}, not "host:port"', text)
    count = sum(len(addresses) for addresses in jobs.values())
    if count <= 1:
        return None
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in jobs or not isinstance(task.get("index", 0), int):
        raise _tf_config_error(
            f'names {count} tasks but not which one this process is: "task" must be {{"type": one of '
            f'{sorted(jobs)}, "index": n}}',
            text,
        )
    task_type, task_index = task["type"], task.get("index", 0)
    if not 0 <= task_index < len(jobs[task_type]):
        raise _tf_config_error(
            f"has task index {task_index}, but cluster.{task_type} has {len(jobs[task_type])} address(es) "
            f"(indices 0 to {len(jobs[task_type]) - 1})",
            text,
        )
    expected = os.environ.get("RLHF_TF_WORKERS")
    if expected and int(expected) != count:
        raise _tf_config_error(
            f"names {count} workers but `rlhf-tf launch --workers={expected}` was asked for {expected}: make them "
            "agree (or unset TF_CONFIG and let the launcher write it)",
            text,
        )
    return Cluster(jobs, task_type, task_index)


def _is_local(host):
    if host in ("localhost", "0.0.0.0", "::", "[::]", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        return socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def check_port_free(cluster):
    """Raises a clear error when this worker's port (on this machine) is already taken: gRPC would fail later with
    a bare "address in use", or the job would wait for a worker that cannot start."""
    host, _, port = cluster.address.rpartition(":")
    if not _is_local(host.strip("[]")):
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("", int(port)))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise UserInputError(
            f"Worker {cluster.index} ({cluster.name} in TF_CONFIG) cannot listen on {cluster.address}: the port is "
            "in use (an earlier run still going, or another program). Stop it, or give the cluster other ports "
            "(`rlhf-tf launch` picks free ones unless --port is given)."
        ) from error
    finally:
        probe.close()


def _join_timeout():
    text = os.environ.get("RLHF_TF_JOIN_TIMEOUT", "")
    if not text:
        return JOIN_TIMEOUT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise UserInputError(f"RLHF_TF_JOIN_TIMEOUT must be a positive number of seconds. Received: {text!r}")
    return value


@functools.cache
def _multi_worker():
    # One per process: TensorFlow configures collective ops and the coordination service once, at start-up, so
    # the strategy must be created before the first op runs (`rlhf_tf.bin.common.prepare` does it in binaries).
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    cluster = cluster_from_environment()
    if cluster is None:
        raise UserInputError(
            f"--strategy=multi_worker needs TF_CONFIG naming two or more workers, like {_TF_CONFIG_EXAMPLE}; "
            "`rlhf-tf launch --workers=N <subcommand> ...` starts N workers on this machine with it set."
        )
    check_port_free(cluster)
    timeout = _join_timeout()
    # The coordination service (which MultiWorkerMirroredStrategy uses to detect dead peers) configured as
    # TensorFlow would, plus a bounded wait for the other workers to register: a worker that never comes up is an
    # error after `timeout` seconds, not a hang.
    leader = "/job:chief/replica:0/task:0" if "chief" in cluster.jobs else "/job:worker/replica:0/task:0"
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=leader,
        cluster_register_timeout_in_ms=int(timeout * 1000),
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster.jobs[job]))
            for job in ("chief", "worker")
            if job in cluster.jobs
        ],
    )
    # Registration is a barrier with that timeout (without it, connecting returns at once and the first collective
    # waits for a missing worker forever).
    context.context().coordination_service.cluster_register_with_barrier = True
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError) as error:
        missing = _missing_workers(cluster, error.message)
        raise UserInputError(
            f"Worker {cluster.index} ({cluster.address}) gave up after {timeout:g} s waiting for the cluster "
            f"{cluster.workers}: {missing} did not start or cannot be reached. Start every worker with the same "
            "TF_CONFIG cluster (each with its own task index), check that the hosts reach each other on those ports, "
            f"or raise RLHF_TF_JOIN_TIMEOUT. TensorFlow said: {error.message.splitlines()[0][:300]}"
        ) from error


class _Preemption:
    """TensorFlow's PreemptionCheckpointHandler for this process's multi-worker run, shared by every training loop
    the process runs (a handler watches fixed keys of the coordination service, so there is one per process).

    SIGTERM on any worker makes every worker save at the same step and then stop. The handler is given a throwaway
    checkpoint manager of its own and saves through `save`, which each loop points at its checkpoint."""

    def __init__(self):
        import tempfile

        self.save = self.exit = None
        before = signal.getsignal(signal.SIGTERM)
        self.handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            _multi_worker().cluster_resolver,
            tf.train.CheckpointManager(tf.train.Checkpoint(), tempfile.mkdtemp(prefix="preemption_"), max_to_keep=1),
            termination_config=tf.distribute.experimental.TerminationConfig(
                exit_fn=lambda: self.exit(), save_fn=lambda *args, **kwargs: self.save(*args, **kwargs)
            ),
        )
        # The handler took SIGTERM; loops listen only while they train (`watching`), so a SIGTERM between loops
        # still ends the process.
        self._on_sigterm = signal.signal(signal.SIGTERM, before)

    @contextlib.contextmanager
    def watching(self, save, exit):
        """While training: SIGTERM here or on another worker makes every worker call `save(checkpoint_number=step)`
        at the same step and then `exit()`."""
        self.save, self.exit = save, exit
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.save = self.exit = None

    def check(self, step):
        """Call after every chunk of steps on every worker, in lockstep: saves and exits once a preemption was
        signalled anywhere."""
        self.handler.save_checkpoint_if_preempted(checkpoint_number=step)


@functools.cache
def _preemption():
    return _Preemption()


def preemption_for(strategy):
    """The process's `_Preemption` when `strategy` is the multi-worker one; None otherwise (a single process turns
    SIGTERM into an interrupt and saves on its own)."""
    if _multi_worker.cache_info().currsize and strategy is _multi_worker():
        return _preemption()
    return None


def finish(status=0, timeout_seconds=3600):
    """Ends a process that joined a multi-worker run (binaries call it last; it does nothing in other processes):
    waits until every worker is done, then exits at once with `status`. A worker that left earlier would stop its
    heartbeats and be reported as crashed; and Python's own shutdown of TensorFlow's coordination agent waits on
    the other workers' agents, up to its heartbeat timeout, so the exit handlers run here and the process ends."""
    if not _multi_worker.cache_info().currsize:
        return
    import atexit
    import sys

    from tensorflow.python.eager import context

    context.context().wait_at_barrier("rlhf_tf_finished", int(timeout_seconds * 1000))
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def worker_share(strategy=None):
    """(this worker's index, number of workers) under `strategy` (None: the process's multi-worker run, if it
    joined one): (0, 1) for single-host strategies."""
    if not _multi_worker.cache_info().currsize or (strategy is not None and strategy is not _multi_worker()):
        return 0, 1
    cluster = cluster_from_environment()
    return cluster.index, len(cluster.workers)


_exchanges = [0]


def exchange(payload):
    """Every worker's `payload` (JSON-serialisable), in worker order, on every worker of the process's multi-worker
    run, through the coordination service's key-value store (for results that are not tensors: texts, rows).
    Every worker must call it the same number of times. On a single host: [payload]."""
    worker, workers = worker_share()
    if workers == 1:
        return [payload]
    from tensorflow.python.eager import context

    _exchanges[0] += 1
    key = f"rlhf_tf/exchange/{_exchanges[0]}"
    context.context().set_config_key_value(f"{key}/{worker}", json.dumps(payload))
    return [json.loads(context.context().get_config_key_value(f"{key}/{other}")) for other in range(workers)]


def gather_rows(strategy, tensors):
    """`tensors` ({name: [rows, ...]}, this worker's rows of a batch) concatenated over the workers in worker order,
    on every worker: each worker's share of a rollout made whole. Unchanged on a single host. Row counts must be
    equal across workers and divide by the replicas on a worker."""
    worker, workers = worker_share(strategy)
    if workers == 1:
        return tensors
    local_replicas = strategy.num_replicas_in_sync // workers
    values = {name: tf.convert_to_tensor(value) for name, value in tensors.items()}
    # Collectives carry no booleans.
    carried = {name: tf.cast(value, tf.int32) if value.dtype == tf.bool else value for name, value in values.items()}

    def local_part(context):
        part = context.replica_id_in_sync_group - worker * local_replicas
        return {name: tf.split(value, local_replicas)[part] for name, value in carried.items()}

    parts = strategy.experimental_distribute_values_from_function(local_part)
    gathered = _gather_function(strategy)(parts)
    return {name: tf.cast(gathered[name], values[name].dtype) for name in values}


@functools.cache
def _gather_function(strategy):
    # One traced function for the whole dict (traced once per set of shapes): strategy.gather called eagerly traces
    # a function of its own at every call.
    return tf.function(lambda parts: {name: strategy.gather(part, axis=0) for name, part in parts.items()})


def run_summed(strategy, step, argument):
    """Runs `step` (argument -> {name: scalar share}) on every replica of `strategy` and returns the shares summed
    over the replicas, as float32, in one collective: the metrics travel as one vector, not one reduction per
    metric (each a round trip between workers)."""
    names = []

    def stacked(value):
        outputs = step(value)
        if not isinstance(outputs, dict):
            raise TypeError(
                f"The step function must return a dict of scalar metrics. Received: {type(outputs).__name__}"
            )
        names[:] = list(outputs)  # traced once per replica
        return tf.stack([tf.cast(outputs[name], tf.float32) for name in names])

    totals = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(stacked, args=(argument,)), axis=None)
    return {name: totals[index] for index, name in enumerate(names)}


def _missing_workers(cluster, message):
    """The workers TensorFlow's registration error names as missing ("worker 1 (host:port)"), or a general phrase."""
    import re

    names = message.split("timed out task names:", 1)[1] if "timed out task names:" in message else ""
    found = []
    for line in names.strip().splitlines():
        task = re.fullmatch(r"/job:(\w+)/replica:\d+/task:(\d+)", line.strip())
        if task is None:
            break
        job, index = task.groups()
        if job in cluster.jobs and int(index) < len(cluster.jobs[job]):
            found.append(f"worker {cluster.position(job, int(index))} ({cluster.jobs[job][int(index)]})")
    return ", ".join(found) if found else "some worker (the first, which hosts the coordination service, or another)"


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
        elif cluster_from_environment() is not None:
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
        return _multi_worker()
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
    """Gives each input pipeline (one per host) its own part of the examples.

    Applied to an in-memory stream after a seeded shuffle and repeat (the same on every host), each host takes every
    n-th example, and the hosts' batches together are exactly the global batch a single process draws: results
    match one process to rounding. Applied to a list of files before reading, each host reads only its own files
    (what streamed data needs; the global batches then differ from one process's)."""
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
