"""CI runs colab/quickstart.ipynb top to bottom (in its small setting) on every run."""

import os

import nbformat
from nbclient import NotebookClient

NOTEBOOK = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "colab", "quickstart.ipynb")


def test_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_TF_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("RLHF_TF_NOTEBOOK_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 2  # the reward model's reliability diagram and the RL curves, inline
    text = "".join(str(output.get("data", {}).get("text/markdown", "")) for output in outputs)
    assert "The story in numbers" in text and "win rate vs SFT, gold scorer" in text
    assert (tmp_path / "run" / "ppo" / "export" / "policy" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "report.md").exists()
