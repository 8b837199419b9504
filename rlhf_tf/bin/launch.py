"""`rlhf-tf launch --workers=N <subcommand> [--flag=value ...]`: one training job as N worker processes on this
machine under MultiWorkerMirroredStrategy.

Each worker runs `rlhf-tf <subcommand> <flags>` with its own `TF_CONFIG` (the cluster of all N on free local ports,
and its task index); worker 0 is the chief, which alone writes the run directory and whose output is shown as is,
the others' lines come prefixed with `[worker i]` (and are kept in the run's console-worker-i.log). The launcher
stays in charge of the job:

- SIGTERM or Ctrl-C to the launcher is passed to every worker: they all save a checkpoint at the same step
  (TensorFlow's PreemptionCheckpointHandler) and exit with status 42, which the launcher returns; rerunning the
  same command resumes. SIGTERM to any one worker does the same.
- A worker that dies (`kill -9`, out of memory) or fails stops the job: the launcher names it, kills the others
  (their collectives cannot finish without it) and exits with its status (128 + the signal for a death);
  rerunning resumes from the last checkpoint. `--restarts=K` reruns the whole job up to K times after a
  preemption or a death (not after an error, which would repeat).
- Bad launches fail fast with the fix named: a TF_CONFIG already in the environment that names another number of
  workers, a --port range already taken, a worker that never joins (`--join_timeout`).

On several hosts, start the subcommand itself on each host with `TF_CONFIG` set (README, "Several machines").
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

# Subcommands that train under a tf.distribute strategy (common.prepare joins the cluster).
LAUNCHABLE = ("sft", "train-reward", "ppo", "grpo", "rloo", "reinforce", "dpo", "kto", "online-dpo")
PREEMPTED = 42  # rlhf_tf.training.distribution.PREEMPTED_EXIT_STATUS, without importing TensorFlow here


class LaunchError(Exception):
    """A launch that cannot start; the message names the fix."""


def _parser():
    parser = argparse.ArgumentParser(
        prog="rlhf-tf launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="rlhf-tf launch --workers=N [--port=P] [--join_timeout=S] [--restarts=K] <subcommand> [flags ...]",
    )
    parser.add_argument("--workers", type=int, required=True, help="Worker processes (2 or more).")
    parser.add_argument(
        "--port", type=int, default=0, help="Ports P .. P+N-1 on 127.0.0.1 for the workers (default: free ones)."
    )
    parser.add_argument(
        "--join_timeout",
        type=float,
        default=300.0,
        help="Seconds a worker waits for the others to join before it stops with an error.",
    )
    parser.add_argument(
        "--restarts", type=int, default=0, help="Rerun the job up to this many times after a preemption or a death."
    )
    return parser


def split_arguments(argv):
    """(launcher arguments, subcommand, the subcommand's arguments): the subcommand is the first argument that
    is not a flag (flags' values are given with '=')."""
    for position, argument in enumerate(argv):
        if not argument.startswith("-"):
            return argv[:position], argument, argv[position + 1 :]
    return argv, None, []


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for handle in sockets:
            handle.bind(("127.0.0.1", 0))
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def _port_taken(port):
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("", port))
        return False
    except OSError:
        return True
    finally:
        probe.close()


def cluster_addresses(workers, port):
    """The workers' "host:port" list: TF_CONFIG's when the environment has one (it must name `workers` local
    addresses), else ports `port`.. (or free ones) on 127.0.0.1."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if text:
        try:
            jobs = json.loads(text)["cluster"]
            addresses = [address for job in ("chief", "worker") for address in jobs.get(job, [])]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise LaunchError(
                f"TF_CONFIG in the environment is not a cluster description ({error!r}). Received: {text!r}. Unset "
                "it (the launcher writes one per worker) or give a valid one."
            ) from error
        if len(addresses) != workers:
            raise LaunchError(
                f"TF_CONFIG in the environment names {len(addresses)} workers ({addresses}) but --workers={workers}. "
                "Make them agree, or unset TF_CONFIG and let the launcher pick the ports."
            )
        return addresses
    if port:
        ports = list(range(port, port + workers))
        for index, candidate in enumerate(ports):
            if _port_taken(candidate):
                raise LaunchError(
                    f"Worker {index}'s port {candidate} (--port={port} gives ports {port}-{port + workers - 1}) is "
                    "already in use. Choose another --port, or leave it out to use free ports."
                )
    else:
        ports = free_ports(workers)
    return [f"127.0.0.1:{candidate}" for candidate in ports]


def worker_environment(addresses, index, join_timeout):
    environment = dict(os.environ)
    task = {"type": "worker", "index": index}
    environment["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses}, "task": task})
    environment["RLHF_TF_WORKERS"] = str(len(addresses))
    environment["RLHF_TF_JOIN_TIMEOUT"] = f"{join_timeout:g}"
    return environment


def _relay(stream, prefix, target):
    for line in iter(stream.readline, b""):
        target.write(prefix + line)
        target.flush()
    stream.close()


def _describe(status):
    if status < 0:
        name = signal.Signals(-status).name if -status in signal.Signals._value2member_map_ else str(-status)
        return f"was killed by {name}"
    return f"exited with status {status}"


class Job:
    """The N worker processes of one attempt."""

    def __init__(self, subcommand, arguments, addresses, join_timeout):
        self.processes = []
        command = [sys.executable, "-m", "rlhf_tf.bin.cli", subcommand, *arguments]
        for index in range(len(addresses)):
            environment = worker_environment(addresses, index, join_timeout)
            if index == 0:
                process = subprocess.Popen(command, env=environment)
            else:
                process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                threading.Thread(
                    target=_relay,
                    args=(process.stdout, f"[worker {index}] ".encode(), sys.stderr.buffer),
                    daemon=True,
                ).start()
            self.processes.append(process)

    def signal_all(self, signum):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)

    def wait(self, grace_seconds=120.0):
        """Waits for the job; returns (status, message). A worker's death ends the job at once (the others are
        killed); a preemption waits up to `grace_seconds` for every worker to save and exit."""
        while True:
            statuses = [process.poll() for process in self.processes]
            if all(status == 0 for status in statuses):
                return 0, ""
            failed = [(index, status) for index, status in enumerate(statuses) if status not in (None, 0)]
            if failed:
                index, status = failed[0]
                if status == PREEMPTED:
                    return self._finish_preempted(grace_seconds)
                self.signal_all(signal.SIGKILL)
                for process in self.processes:
                    process.wait()
                if status < 0:
                    return 128 - status, (
                        f"worker {index} {_describe(status)}; stopped the other workers (their collectives cannot "
                        "finish without it). Rerun the same command to resume from the last checkpoint."
                    )
                return status, f"worker {index} {_describe(status)} (its output above says why); stopped the others."
            time.sleep(0.2)

    def _finish_preempted(self, grace_seconds):
        deadline = time.time() + grace_seconds
        while time.time() < deadline and any(process.poll() is None for process in self.processes):
            time.sleep(0.2)
        late = [index for index, process in enumerate(self.processes) if process.poll() is None]
        self.signal_all(signal.SIGKILL)
        for process in self.processes:
            process.wait()
        detail = f" (workers {late} did not finish saving within {grace_seconds:g} s and were killed)" if late else ""
        return PREEMPTED, (
            f"preempted: the workers saved a checkpoint and stopped{detail}. Rerun the same command to resume."
        )


def main(argv):
    """Runs the launcher on `argv` (without `launch`); returns the exit status."""
    from rlhf_tf.bin import cli

    own, subcommand, arguments = split_arguments(argv)
    parser = _parser()
    if any(argument in ("-h", "--help") for argument in own) or (subcommand is None and not own):
        parser.print_help()
        return 0
    options = parser.parse_args(own)
    try:
        if subcommand is None:
            raise LaunchError("Name the subcommand to run, e.g. `rlhf-tf launch --workers=2 sft --output_dir=...`.")
        if subcommand not in LAUNCHABLE:
            known = "an rlhf-tf subcommand" if subcommand in cli.SUBCOMMANDS else "not an rlhf-tf subcommand"
            raise LaunchError(
                f"`{subcommand}` ({known}) does not train on several workers; these do: {', '.join(LAUNCHABLE)}."
            )
        if options.workers < 2:
            raise LaunchError(
                f"--workers must be 2 or more (run the subcommand itself for one). Received: {options.workers}"
            )
        if options.join_timeout <= 0 or options.restarts < 0:
            raise LaunchError(
                "--join_timeout must be positive and --restarts not negative. Received: "
                f"{options.join_timeout}, {options.restarts}"
            )
        if any(argument.startswith("--strategy=") and argument != "--strategy=multi_worker" for argument in arguments):
            raise LaunchError("Launched workers train with --strategy=multi_worker (or auto): drop --strategy.")
        fixed = options.port or os.environ.get("TF_CONFIG", "").strip()
        fixed_addresses = cluster_addresses(options.workers, options.port) if fixed else None
    except LaunchError as error:
        print(f"rlhf-tf launch: {error}", file=sys.stderr)
        return 2

    job, stopping = None, []

    def forward(signum, frame):
        del frame
        stopping.append(signum)
        if job is not None:
            job.signal_all(signal.SIGTERM)  # Ctrl-C too: the workers save together, as on a preemption

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for attempt in range(options.restarts + 1):
            addresses = fixed_addresses or cluster_addresses(options.workers, 0)
            print(
                f"rlhf-tf launch: {options.workers} workers of `{subcommand}` on {', '.join(addresses)}"
                + (f" (restart {attempt} of {options.restarts})" if attempt else ""),
                file=sys.stderr,
                flush=True,
            )
            job = Job(subcommand, arguments, addresses, options.join_timeout)
            status, message = job.wait()
            if status == 0:
                return 0
            print(f"rlhf-tf launch: {message}", file=sys.stderr, flush=True)
            if not (status == PREEMPTED or status > 128) or stopping:  # only preemptions and deaths are retried
                return status
        return status
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
