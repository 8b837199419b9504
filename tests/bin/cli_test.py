import subprocess
import sys

from rlhf_tf.bin import cli


def _cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "rlhf_tf.bin.cli", *arguments], capture_output=True, text=True, timeout=300
    )


def test_help_lists_every_subcommand_with_its_purpose(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, purpose in cli.SUBCOMMANDS.items():
        assert f"  {name}" in out and purpose in out


def test_version(capsys):
    from rlhf_tf import __version__

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rlhf-tf {__version__}"


def test_unknown_subcommand_exits_2_with_a_suggestion(capsys):
    assert cli.main(["inf"]) == 2
    assert "unknown subcommand `inf`. Did you mean `info`?" in capsys.readouterr().err


def test_subcommand_runs_and_flagfile_works(tmp_path):
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("--nomeasure\n")
    result = _cli("info", f"--flagfile={flagfile}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tf_keras (Keras 2, for TF-Agents)" in result.stdout
    assert "fp32 matmul peak" not in result.stdout


def test_helpfull_and_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_tf.bin.info", "--helpfull"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0
    assert "--[no]measure" in result.stdout and "--flagfile" in result.stdout


def test_bad_flag_value_is_a_usage_error():
    result = _cli("info", "--measure=maybe")
    assert result.returncode != 0
    assert "measure" in result.stderr


def test_compute_dtype_on_a_command_without_it_is_refused(tmp_path):
    result = _cli("sft", f"--output_dir={tmp_path / 'sft'}", "--compute_dtype=bfloat16", "--noprogress")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "--compute_dtype does not apply to this command. Received: bfloat16" in result.stderr
    assert not (tmp_path / "sft").exists()
