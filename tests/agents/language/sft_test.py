import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from rlhf_tf import training
from rlhf_tf.agents.language import sft
from rlhf_tf.data import reader, records
from rlhf_tf.models.policy import PolicyConfig

TINY = PolicyConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64)


def _config(output_dir, steps=80, **kwargs):
    return sft.SFTConfig(
        output_dir=str(output_dir),
        num_examples=400,
        num_eval_examples=64,
        policy=TINY,
        loop=training.LoopConfig(steps=steps, log_every=20, checkpoint_every=40, progress=False),
        learning_rate=3e-3,
        warmup_steps=10,
        num_samples=4,
        max_new_tokens=24,
        strategy=kwargs.pop("strategy", "default"),
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("sft")
    metrics = sft.train_sft(_config(output_dir, steps=120))
    return output_dir, metrics


def test_sft_learns_the_corpus_and_writes_the_run_directory(trained):
    output_dir, metrics = trained
    # An untrained model over the ~530-token vocabulary has perplexity in the hundreds.
    assert metrics["sft/eval_perplexity"] < 30
    saved = json.loads((output_dir / "metrics.json").read_text())
    assert saved["sft/eval_perplexity"] == pytest.approx(metrics["sft/eval_perplexity"])
    assert json.loads((output_dir / "config.json").read_text())["policy"]["hidden_dim"] == 32
    for name in ("tb", "ckpt", "policy", "export/policy", "samples.jsonl"):
        assert (output_dir / name).exists(), name
    samples = [json.loads(line) for line in (output_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and any(sample["completion"] for sample in samples)
    assert all(isinstance(sample["ended"], bool) for sample in samples)


def test_rerunning_resumes_and_extends(trained, tmp_path):
    output_dir, _ = trained
    metrics = sft.train_sft(dataclasses.replace(_config(output_dir, steps=140), export=False, num_samples=0))
    assert metrics["sft/steps"] == 140


def test_exported_policy_serves_strings_without_the_project(trained):
    output_dir, _ = trained
    code = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        import tensorflow_text  # WordPiece ops
        model = tf.saved_model.load({str(output_dir / "export" / "policy")!r})
        out = model.signatures["serving_default"](prompt=tf.constant(["Review of the Apex kettle:", "Review of x"]))
        responses = out["response"].numpy()
        assert responses.shape == (2,) and all(isinstance(r, bytes) for r in responses), responses
        assert not [m for m in sys.modules if m.startswith(("rlhf_tf", "keras_hub"))]
        print("served", len(responses))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served 2" in result.stdout


def test_saved_model_cli_shows_the_signature(trained):
    output_dir, _ = trained
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", str(output_dir / "export" / "policy"), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "serving_default" in result.stdout and "prompt" in result.stdout and "response" in result.stdout


def test_user_demonstrations_with_byte_tokenizer_and_bad_records(tmp_path):
    data = tmp_path / "demos.jsonl"
    demos = [records.Demonstration(f"Q{i}:", " an answer that ends.") for i in range(60)]
    reader.write_jsonl(data, demos)
    with open(data, "a") as handle:
        handle.write('{"prompt": "Q:", "completion": ""}\n')
    config = dataclasses.replace(
        _config(tmp_path / "run", steps=20), task="", data=str(data), skip_bad_records=True, export=False
    )
    metrics = sft.train_sft(config)
    assert metrics["data/rejected_records"] == 1 and metrics["data/records"] == 60
    assert json.loads((tmp_path / "run" / "config.json").read_text())["tokenizer"] == ""
    rejected = (tmp_path / "run" / "rejected_records.jsonl").read_text()
    assert "field" in rejected and '"line": 61' in rejected


def test_sft_under_mirrored_strategy_over_two_cpus(tmp_path):
    config = dataclasses.replace(_config(tmp_path, steps=6), strategy="mirrored", export=False, num_samples=0)
    metrics = sft.train_sft(config)
    assert metrics["sft/steps"] == 6 and metrics["sft/eval_perplexity"] > 0


def test_cli_sft_and_generate(tmp_path):
    def cli(*arguments):
        return subprocess.run(
            [sys.executable, "-m", "rlhf_tf.bin.cli", *arguments], capture_output=True, text=True, timeout=600
        )

    run = tmp_path / "cli-sft"
    result = cli(
        "sft",
        f"--output_dir={run}",
        "--steps=10",
        "--num_layers=1",
        "--hidden_dim=32",
        "--num_heads=2",
        "--num_examples=200",
        "--num_samples=2",
        "--noprogress",
        "--strategy=default",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sft/eval_perplexity" in result.stdout
    result = cli(
        "generate", f"--policy={run}", "--prompt=Review of the Apex kettle:", "--num_samples=2", "--max_new_tokens=8"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["prompt"] == "Review of the Apex kettle:"
    result = cli("generate", f"--policy={run / 'export' / 'policy'}", "--prompt=Review of the Apex kettle:")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[0])["response"] is not None
    result = cli("sft", f"--output_dir={tmp_path / 'bad'}", "--data=/no/such/file.jsonl")
    assert result.returncode == 2 and "Data file not found" in result.stderr
