"""CI runs every notebook in colab/ top to bottom (each in its small setting) on every run."""

import glob
import os

import nbformat
from nbclient import NotebookClient

COLAB = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "colab")


def _run(name, tmp_path, monkeypatch):
    """Executes colab/<name> in smoke mode; returns its code cells' outputs (fails on any cell's error)."""
    monkeypatch.setenv("RLHF_TF_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("RLHF_TF_NOTEBOOK_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    path = os.path.join(COLAB, name)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": COLAB}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, when a cell fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    return outputs


def _images(outputs):
    return [output for output in outputs if "image/png" in output.get("data", {})]


def _text(outputs):
    parts = []
    for output in outputs:
        parts.append(str(output.get("text", "")))
        parts.extend(str(value) for key, value in output.get("data", {}).items() if key.startswith("text/"))
    return "".join(parts)


def test_every_notebook_has_a_test():
    tested = {
        "quickstart.ipynb",
        "dpo_kto_from_jsonl.ipynb",
        "control_from_preferences.ipynb",
        "people_in_the_loop.ipynb",
    }
    assert {os.path.basename(path) for path in glob.glob(os.path.join(COLAB, "*.ipynb"))} == tested


def test_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    outputs = _run("quickstart.ipynb", tmp_path, monkeypatch)
    assert len(_images(outputs)) >= 2  # the reward model's reliability diagram and the RL curves, inline
    text = _text(outputs)
    assert "The story in numbers" in text and "win rate vs SFT, gold scorer" in text
    assert (tmp_path / "run" / "ppo" / "export" / "policy" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "report.md").exists()


def test_dpo_and_kto_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    outputs = _run("dpo_kto_from_jsonl.ipynb", tmp_path, monkeypatch)
    assert len(_images(outputs)) >= 2  # DPO's curves and the judge's win rates, inline
    text = _text(outputs)
    # The bad line is named by file, line and field, and skipping it keeps the rest.
    assert "pairs_with_a_bad_line.jsonl, line 301, field 'chosen'" in text
    assert "'data/rejected_records': 1" in text
    assert "'DPO': {'judge_helpful_score'" in text and "'KTO': {'judge_helpful_score'" in text  # judged, both
    for stage in ("sft", "dpo", "kto"):
        assert (tmp_path / "run" / stage / "metrics.json").exists()


def test_control_from_preferences_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    outputs = _run("control_from_preferences.ipynb", tmp_path, monkeypatch)
    clips = [output for output in outputs if "text/html" in output.get("data", {})]
    assert clips and clips[0]["data"]["text/html"].count('src="data:image/gif;base64,') == 6  # three pairs of clips
    assert len(_images(outputs)) >= 3  # two first frames and the learning curves
    text = _text(outputs)
    assert "labels used: 40" in text and "one episode with the exported policy: return" in text
    assert (tmp_path / "run" / "export" / "policy" / "saved_model.pb").exists()


def test_people_in_the_loop_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    outputs = _run("people_in_the_loop.ipynb", tmp_path, monkeypatch)
    text = _text(outputs)
    assert "Open the labeling app" in text and "/login?token=" in text
    assert "the scripted person answered 24 pairs" in text  # every pair, through the app's pages
    # The scripted person answers as the gold scorer would: the admin table shows full agreement with gold.
    assert "<td>scripted</td>" in text and "<td>1.00 (" in text
    assert len(_images(outputs)) >= 1  # the reward model's held-out curve
    assert (tmp_path / "run" / "reward" / "export" / "reward" / "saved_model.pb").exists()
