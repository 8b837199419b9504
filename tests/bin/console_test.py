import subprocess
import sys

from rlhf_tf.bin import console

NOISE = (
    b"I0000 00:00:1796351554.745311   28685 port.cc:153] oneDNN custom operations are on.\n",
    b"E0000 00:00:1796351586.695244   28685 cuda_platform.cc:52] failed call to cuInit\n",
    b"W1204 02:31:07.123456 140146 function_deserialization.py:672] Importing a function with custom gradients\n",
    b"Gym has been unmaintained since 2022 and does not support NumPy 2.0.\n",
)


def test_segments_keep_our_lines_and_results_and_drop_other_libraries_lines():
    own = frozenset({b"loop.py"})
    assert all(console.shown(line, own) == b"" for line in NOISE)
    ours = b"I1204 02:31:07.123456 140146 loop.py:156] Resumed from ckpt-2 at step 2.\n"
    assert console.shown(ours, own) == b"Resumed from ckpt-2 at step 2.\n"
    bar = b"\rsft:   0%|          | 1/3000 [00:10<8:39:55]W0000 00:00:1796333379.917762   28124 assert_op.cc:39] x\n"
    assert console.shown(bar, own) == b"\rsft:   0%|          | 1/3000 [00:10<8:39:55]\n"
    assert console.shown(b"error: bad input\n", own) == b"error: bad input\n"


def test_the_console_filters_file_descriptor_2_and_keeps_every_byte_for_the_log(tmp_path):
    script = (
        "import os, sys, time\n"
        "from rlhf_tf.bin import console\n"
        "quiet = console.QuietConsole(frozenset({b'loop.py'})).start()\n"
        f"for line in {list(NOISE)!r}:\n"
        "    os.write(2, line)\n"
        "for step in range(3):\n"
        "    os.write(2, b'\\rstage: %d/3' % step)\n"
        "time.sleep(1.0)\n"  # a redraw with nothing after it is shown after half a second
        "os.write(2, b'\\n== stage 2\\nI1204 02:31:07.123456 1 loop.py:1] Resumed from x.\\n')\n"
        "print('error: bad input', file=sys.stderr)\n"
        "captured = quiet.stop()\n"
        "open(sys.argv[1], 'wb').write(captured)\n"
    )
    log = tmp_path / "captured.log"
    result = subprocess.run([sys.executable, "-c", script, str(log)], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = result.stderr.decode()
    assert "oneDNN" not in shown and "cuInit" not in shown and "Gym" not in shown and "custom gradients" not in shown
    assert "\rstage: 2/3\n== stage 2\nResumed from x.\nerror: bad input\n" in shown
    captured = log.read_bytes()
    assert all(line in captured for line in NOISE) and b"error: bad input" in captured


def test_rlhf_tf_commands_start_quiet_unless_asked_for_verbosity():
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_tf.bin.cli", "info", "--nomeasure"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "tensorflow" in result.stdout
    assert result.stderr == "", result.stderr[-2000:]  # TensorFlow's C++ start-up lines stayed off the console
    for asked in (["--verbosity=0"], ["-v", "1"], ["--verbosity", "1"]):
        assert console.install(asked) is None  # --verbosity shows everything: no filter
