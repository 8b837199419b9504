"""The notebooks' install cell in a Colab-like environment: numpy 2 and the newest TensorFlow installed and imported
before the cell runs (as a Colab runtime has them). Downloads TensorFlow twice, so it runs when asked:
`RLHF_TF_COLAB_INSTALL_TEST=1 pytest tests/colab/colab_install_test.py -n 0` (closing notes say when it last ran)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))

pytestmark = pytest.mark.skipif(
    os.environ.get("RLHF_TF_COLAB_INSTALL_TEST") != "1",
    reason="downloads TensorFlow twice; set RLHF_TF_COLAB_INSTALL_TEST=1",
)


def _code_cells(name):
    with open(os.path.join(ROOT, "colab", name)) as handle:
        cells = json.load(handle)["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def test_install_cell_asks_for_one_restart_then_the_notebook_runs(tmp_path):
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # What a Colab runtime has before anything is installed: numpy 2, the newest TensorFlow, IPython, matplotlib.
    preinstalled = ["numpy>=2", "tensorflow", "ipython", "matplotlib"]
    subprocess.run([python, "-m", "pip", "install", "-q", *preinstalled], check=True, timeout=1800)
    before = subprocess.run(
        [python, "-c", "import numpy, tensorflow; print(numpy.__version__, tensorflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert before[0].startswith("2."), before  # the Colab-like starting point: numpy 2

    install, setup = _code_cells("quickstart.ipynb")[:2]
    environment = {**os.environ, "RLHF_TF_SOURCE": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("PYTHONPATH", None)
    # The first run: Colab has numpy and TensorFlow loaded when the cell runs; the install replaces them.
    first = subprocess.run(
        [python, "-c", "import numpy, tensorflow\n" + install],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=1800,
    )
    assert first.returncode == 1, first.stderr[-3000:]
    assert "Restart the runtime once" in first.stderr and f"numpy {before[0]} -> 1." in first.stderr, first.stderr
    # After the restart: the install cell passes (nothing to do) and the notebook's setup cell runs.
    second = subprocess.run(
        [python, "-c", install + "\n" + setup + "\nimport numpy; print('SETUP OK', numpy.__version__)"],
        capture_output=True,
        text=True,
        env={**environment, "RLHF_TF_NOTEBOOK_SMOKE": "1", "RLHF_TF_NOTEBOOK_DIR": str(tmp_path / "run")},
        cwd=os.path.join(ROOT, "colab"),
        timeout=900,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "SETUP OK 1." in second.stdout
