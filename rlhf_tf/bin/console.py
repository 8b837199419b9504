"""A quiet console for the `rlhf-tf` command: progress bars, stage headers, results and this project's own log
lines, without TensorFlow's C++ start-up lines (cuInit, oneDNN, CPU-instruction notices, XLA service), other
libraries' absl log lines (SavedModel signature renaming, fingerprint writing, custom-gradient import warnings)
or the Gym banner. Everything still goes to the run's `console.log` (in `--output_dir`, when the command has one).

How: before TensorFlow is imported, file descriptor 2 becomes a pipe read by a thread, which writes every byte to
the log and passes the rest on to the terminal: lines in the glog layout (`I1204 02:31:07.123456 1234 file.py:12]`,
from C++ and from absl) are dropped unless `file` is one of this project's modules, whose lines are shown without
the prefix. `--verbosity` (or `-v`) on the command line turns the filter off. Progress bars redraw with carriage
returns and no newline; each redraw is passed on when the next one (or a newline) arrives, or after half a second.
"""

import atexit
import os
import re
import select
import sys
import threading

_GLOG = re.compile(rb"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ ([\w.\-]+):\d+\] ?")
# A line of its own naming a TensorFlow task: the continuation of a multi-line coordination-service log line
# ("Waiting for 1/2 tasks to connect. Example stragglers:" and the like).
_TASK_LINE = re.compile(rb"^/job:\w+/replica:\d+/task:\d+\s*$")
_BANNERS = (
    b"WARNING: All log messages before absl::InitializeLog()",
    b"To enable the following instructions:",
    b"Gym has been unmaintained since 2022",
    b"Please upgrade to Gymnasium",
    b"See the migration guide at https://gymnasium.farama.org",
)


def _own_modules():
    """The file names of this project's modules (rlhf_tf and the folders it maps: agents, reward), found without
    importing the package (which would start TensorFlow before the console is quiet)."""
    import importlib.util

    spec = importlib.util.find_spec("rlhf_tf")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    roots = set()
    for location in spec.submodule_search_locations:
        roots.add(location)
        for name in ("agents", "reward"):  # installed inside the package, or beside it in a source checkout
            for candidate in (os.path.join(location, name), os.path.join(os.path.dirname(location), name)):
                if os.path.isdir(candidate):
                    roots.add(candidate)
    names = set()
    for root in roots:
        for _, _, found in os.walk(root):
            names.update(name.encode() for name in found if name.endswith(".py"))
    return frozenset(names)


def shown(segment, own_modules):
    """What of one output segment (a line or a progress-bar redraw) the console shows: b"" for noise, the text
    before a log line of another library, or one of this project's log lines without its prefix."""
    if segment.lstrip(b"\r").startswith(_BANNERS) or _TASK_LINE.match(segment):
        return b""
    found = _GLOG.search(segment)
    if found is None:
        return segment
    if found.group(1) in own_modules:
        return segment[: found.start()] + segment[found.end() :]
    ending = b"\n" if segment.endswith(b"\n") and found.start() > 0 else b""
    return segment[: found.start()] + ending


class QuietConsole:
    """Filters file descriptor 2 as the module docstring says; `stop()` restores it and returns every byte."""

    def __init__(self, own_modules=None):
        self._own = own_modules if own_modules is not None else _own_modules()
        self._captured = []
        self._pending = b""

    def start(self):
        sys.stderr.flush()
        self._terminal = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._read = read
        self._thread = threading.Thread(target=self._pump, name="quiet-console", daemon=True)
        self._thread.start()
        return self

    def _write(self, data):
        if data:
            os.write(self._terminal, data)

    def _flush_segments(self, final=False):
        """Passes on complete segments: up to each newline, and progress redraws up to the last carriage return
        (or everything, when `final`)."""
        data = self._pending
        while True:
            newline = data.find(b"\n")
            if newline < 0:
                break
            line, data = data[: newline + 1], data[newline + 1 :]
            for part in _split_redraws(line):
                self._write(shown(part, self._own))
        if final:
            for part in _split_redraws(data):
                self._write(shown(part, self._own))
            data = b""
        else:
            cut = data.rfind(b"\r")
            if cut > 0:
                for part in _split_redraws(data[:cut]):
                    self._write(shown(part, self._own))
                data = data[cut:]
        self._pending = data

    def _pump(self):
        while True:
            ready, _, _ = select.select([self._read], [], [], 0.5)
            if not ready:
                if self._pending and not _GLOG.search(self._pending):
                    self._flush_segments(final=True)
                continue
            chunk = os.read(self._read, 65536)
            if not chunk:
                break
            self._captured.append(chunk)
            self._pending += chunk
            self._flush_segments()
        self._flush_segments(final=True)

    def stop(self):
        """Restores file descriptor 2 once everything written so far is passed on; returns the captured bytes."""
        sys.stderr.flush()
        os.dup2(self._terminal, 2)  # closes the pipe's last write end: the reader sees the end
        self._thread.join(timeout=5)
        os.close(self._read)
        os.close(self._terminal)
        return b"".join(self._captured)


def _split_redraws(data):
    """`data` cut before each carriage return, so each progress-bar redraw is judged on its own."""
    parts, start = [], 0
    for index in range(1, len(data)):
        if data[index : index + 1] == b"\r":
            parts.append(data[start:index])
            start = index
    parts.append(data[start:])
    return [part for part in parts if part]


def install(argv):
    """Starts a quiet console for a command run with `argv`, unless it asks for `--verbosity`/`-v` or stderr is
    not a file descriptor this process owns; at exit, appends what was captured to the run's console.log."""
    if any(arg.startswith(("--verbosity", "-v=", "--v=")) or arg == "-v" for arg in argv):
        return None
    try:
        os.fstat(2)
    except OSError:
        return None
    console = QuietConsole().start()

    def finish():
        captured = console.stop()
        _append_to_run_log(captured)

    atexit.register(finish)
    return console


def _append_to_run_log(captured):
    try:
        from absl import flags

        output_dir = flags.FLAGS["output_dir"].value if "output_dir" in flags.FLAGS else None
    except Exception:  # flags never parsed (usage errors, --help)
        return
    if not output_dir or not os.path.isdir(output_dir):
        return
    from rlhf_tf import files

    path = os.path.join(output_dir, _log_name())
    previous = b""
    if os.path.exists(path):
        with open(path, "rb") as handle:
            previous = handle.read()
    files.atomic_write_bytes(path, previous + captured)


def _log_name():
    """console.log, or console-worker-N.log on the workers of a multi-worker run other than the chief (each keeps
    its own; the chief's is the run's)."""
    import json

    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task, jobs = config.get("task") or {}, config.get("cluster") or {}
        index = int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError):
        return "console.log"
    if task.get("type") == "worker" and (index > 0 or "chief" in jobs):
        return f"console-worker-{index + len(jobs.get('chief', []))}.log"
    return "console.log"
