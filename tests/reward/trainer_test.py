import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rlhf_tf import training
from rlhf_tf.data import reader, records
from rlhf_tf.models.policy import PolicyConfig
from rlhf_tf.reward import trainer

TINY = PolicyConfig(num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64)
WORDS = ["great", "solid", "lovely", "awful", "broken", "dull"]


def _pairs(count, seed):
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        good = f"it is {WORDS[rng.integers(0, 3)]} and {WORDS[rng.integers(0, 3)]}."
        bad = f"it is {WORDS[rng.integers(3, 6)]} and {WORDS[rng.integers(3, 6)]}."
        pairs.append(records.Comparison(f"Review {index}:", good, bad))
    return pairs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pairs")
    reader.write_jsonl(directory / "train.jsonl", _pairs(400, 0))
    reader.write_jsonl(directory / "eval.jsonl", _pairs(64, 1))
    return directory


def _config(output_dir, data, **kwargs):
    return trainer.RewardConfig(
        output_dir=str(output_dir),
        train=str(data / "train.jsonl"),
        eval=str(data / "eval.jsonl"),
        model=TINY,
        pipeline=trainer.pipelines.PipelineConfig(seq_len=48, max_prompt_tokens=16, batch_size=16, shuffle_buffer=100),
        epochs=0,
        loop=training.LoopConfig(steps=60, log_every=20, checkpoint_every=60, eval_every=30, progress=False),
        learning_rate=3e-3,
        strategy=kwargs.pop("strategy", "default"),
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    output_dir = tmp_path_factory.mktemp("rm")
    return output_dir, trainer.train_reward(_config(output_dir, data))


def test_reward_model_learns_the_preference(trained):
    output_dir, metrics = trained
    # Chance is 0.5; the words that decide each pair are easy to learn.
    assert metrics["reward/eval_accuracy"] > 0.9
    saved = json.loads((output_dir / "metrics.json").read_text())
    for name in ("reward/eval_accuracy", "reward/eval_loss", "reward/eval_ece", "reward/normalization_std"):
        assert name in saved
    assert (output_dir / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_exported_scores_equal_the_keras_models_in_a_fresh_process(trained, data):
    output_dir, _ = trained
    import tensorflow as tf

    from rlhf_tf.data import pipelines
    from rlhf_tf.data.tokenizers import resolve_tokenizer
    from rlhf_tf.models import policy as policy_lib
    from rlhf_tf.reward import language_model

    config = _config(output_dir, data)
    model = language_model.LanguageRewardModel(policy_lib.build_policy(TINY, 257).backbone)
    model.build()
    tf.train.Checkpoint(model=model).read(str(output_dir / "ckpt" / "final-with-normalization")).expect_partial()
    evaluation = reader.read_jsonl(data / "eval.jsonl")[0][:8]
    prompts = [pair.prompt for pair in evaluation] + ["x" * 200]
    responses = [pair.chosen for pair in evaluation] + ["a response long enough to be cut " * 3]
    tokenizer = resolve_tokenizer("byte")
    sequences, _, _ = pipelines.join_prompt_and_response(
        tokenizer.tokenize(prompts),
        tokenizer.tokenize(responses),
        config.pipeline.seq_len,
        config.pipeline.max_prompt_tokens,
        tokenizer.end_id,
    )
    ids = sequences.to_tensor(shape=[len(prompts), config.pipeline.seq_len])
    mask = tf.sequence_mask(sequences.row_lengths(), config.pipeline.seq_len)
    raw = model({"token_ids": ids, "padding_mask": mask})
    expected = np.stack([model.normalized(raw).numpy(), raw.numpy()])
    code = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        model = tf.saved_model.load({str(output_dir / "export" / "reward")!r})
        out = model.signatures["serving_default"](
            prompt=tf.constant({json.dumps(prompts)}), response=tf.constant({json.dumps(responses)}))
        assert not [m for m in sys.modules if m.startswith(("rlhf_tf", "keras_hub"))]
        print(json.dumps([out["score"].numpy().tolist(), out["raw_score"].numpy().tolist()]))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    served = np.array(json.loads(result.stdout.splitlines()[-1]))
    assert np.abs(served - expected).max() < 1e-4
    assert np.abs(served[0] - served[1]).max() > 1e-3  # normalised and raw differ: both outputs are checked
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", str(output_dir / "export" / "reward"), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "serving_default" in shown.stdout and "response" in shown.stdout and "score" in shown.stdout


def test_mirrored_training_matches_one_device(tmp_path, data):
    common = dict(jit_compile=False, export=False)
    short = training.LoopConfig(steps=12, log_every=4, checkpoint_every=12, eval_every=6, progress=False)
    single = trainer.train_reward(dataclasses.replace(_config(tmp_path / "one", data, **common), loop=short))
    mirrored = trainer.train_reward(
        dataclasses.replace(_config(tmp_path / "two", data, strategy="mirrored", **common), loop=short)
    )
    assert single["reward/eval_loss"] < 0.69  # it learned something in 12 steps, so agreement is not trivial
    for name in ("reward/loss", "reward/eval_loss", "reward/eval_accuracy", "reward/normalization_mean"):
        assert mirrored[name] == pytest.approx(single[name], rel=1e-3, abs=1e-4), name


def test_rankings_train_with_plackett_luce(tmp_path):
    rankings = [records.Ranking(f"p{i}", ("great and lovely.", "it is fine.", "awful and dull.")) for i in range(120)]
    reader.write_jsonl(tmp_path / "r.jsonl", rankings)
    config = dataclasses.replace(
        _config(tmp_path / "run", tmp_path), train=str(tmp_path / "r.jsonl"), eval="", export=False
    )
    metrics = trainer.train_reward(config)
    assert metrics["reward/eval_accuracy"] > 0.9


def test_bad_config_and_data_errors(tmp_path, data):
    with pytest.raises(ValueError, match="`label_noise` must be in"):
        _config(tmp_path, data, label_noise=1.5)
    reader.write_jsonl(tmp_path / "ratings.jsonl", [records.Rating("p", "r", 1.0)])
    with pytest.raises(ValueError, match="needs comparison or ranking records"):
        trainer.train_reward(dataclasses.replace(_config(tmp_path / "x", data), train=str(tmp_path / "ratings.jsonl")))


def test_evaluate_reward_command_on_the_exported_model(trained, data, tmp_path):
    output_dir, metrics = trained
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlhf_tf.bin.cli",
            "evaluate-reward",
            f"--model={output_dir}",
            f"--data={data / 'eval.jsonl'}",
            f"--output_dir={tmp_path / 'eval'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["reward/pairs"] == 64
    assert saved["reward/accuracy"] == pytest.approx(metrics["reward/eval_accuracy"], abs=1e-6)
    # Calibration on the trainer's scale (the export's raw scores), so the same pairs give the trainer's ECE.
    assert saved["reward/ece"] == pytest.approx(metrics["reward/eval_ece"], abs=1e-4)
    assert json.loads((tmp_path / "eval" / "calibration.json").read_text())["scores"] == "raw_score"
    assert "the trained scale" in result.stdout
    assert (tmp_path / "eval" / "reliability.png").exists()


def test_ensemble_of_three_trains_reports_disagreement_and_exports_the_mean(tmp_path, data):
    config = dataclasses.replace(_config(tmp_path / "ens", data), ensemble_size=3)
    config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, steps=30, eval_every=15))
    metrics = trainer.train_reward(config)
    assert metrics["reward/eval_accuracy"] > 0.9
    assert metrics["reward/eval_disagreement"] > 0.0
    assert (tmp_path / "ens" / "export" / "reward" / "saved_model.pb").exists()


def test_training_stops_when_the_held_out_loss_stops_improving_and_keeps_the_best(tmp_path, data):
    # Labels that are coin flips: the held-out loss can only get worse as the model learns the training pairs.
    rng = np.random.default_rng(3)
    noisy = [
        records.Comparison(
            pair.prompt, *((pair.chosen, pair.rejected) if rng.random() < 0.5 else (pair.rejected, pair.chosen))
        )
        for pair in _pairs(64, 2)
    ]
    reader.write_jsonl(tmp_path / "noisy.jsonl", noisy)
    config = dataclasses.replace(
        _config(tmp_path / "run", data, export=False),
        train=str(tmp_path / "noisy.jsonl"),
        epochs=40.0,
        patience=2,
        learning_rate=1e-2,
        loop=training.LoopConfig(steps=1, log_every=20, checkpoint_every=40, progress=False),
    )
    metrics = trainer.train_reward(config)
    most = 40 * 64 // 16
    assert metrics["reward/stopped_early"] == 1.0 and metrics["reward/steps"] < most
    assert 0 <= metrics["reward/best_step"] < metrics["reward/steps"]
    # What the run scores (evaluated after the loop) is the best evaluation's model, not the last step's.
    assert metrics["reward/eval_calibrated_loss"] == pytest.approx(
        metrics["reward/best_eval_calibrated_loss"], rel=1e-5
    )
    assert (tmp_path / "run" / "plots" / "heldout.png").read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path / "run" / "ckpt" / "best")
