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


def _configured(module, runs, read):
    """`read(config_from_flags())` of binary `module` for each argument list of `runs`, in one fresh process."""
    code = (
        "import sys, json\n"
        "from absl import flags\n"
        f"from rlhf_tf.bin import {module} as binary\n"
        f"for arguments in json.loads(sys.argv[1]):\n"
        "    flags.FLAGS.unparse_flags()\n"
        "    flags.FLAGS(['x', *arguments])\n"
        "    config = binary.config_from_flags()\n"
        f"    print({read})\n"
    )
    import json

    result = subprocess.run([sys.executable, "-c", code, json.dumps(runs)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-len(runs) :]


def test_commands_size_their_pipelines_for_the_task_unless_told(tmp_path):
    out = f"--output_dir={tmp_path}"
    rl = [out, "--policy=p", "--reward=gold"]
    # dialogue's facts and conversation need 80 prompt tokens; reviews keeps the defaults (32, SFT 64, DPO 96).
    runs = [rl, [*rl, "--task=dialogue"], [*rl, "--task=dialogue", "--max_prompt_tokens=40"]]
    assert _configured("ppo", runs, read="config.rollouts.max_prompt_tokens") == ["32", "80", "40"]
    pipeline = "(config.pipeline.seq_len, config.pipeline.max_prompt_tokens, config.pipeline.buckets)"
    assert _configured("sft", [[out, "--task=dialogue"]], read=pipeline) == ["(128, 80, ())"]
    dpo = [out, "--policy=p", "--data=d"]
    assert _configured("dpo", [dpo, [*dpo, "--task=dialogue"]], read=pipeline) == [
        "(96, 32, (96,))",
        "(128, 80, (128,))",
    ]


def test_helpshort_lists_the_subcommands_own_flags():
    result = _cli("ppo", "--helpshort")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rlhf_tf.bin.ppo:" in result.stdout and "--clip_range" in result.stdout
    assert "--frontier_prompts" in result.stdout and "--output_dir" in result.stdout  # shared RL and common flags
    assert "--xla_" not in result.stdout and result.stderr == ""  # not every library's flags; a quiet console


def test_quickstart_runs_the_task_recipe_with_given_flags_over_it(tmp_path):
    from rlhf_tf.agents.recipes import quickstart

    out = f"--output_dir={tmp_path}"
    runs = [[out], [out, "--task=dialogue"], [out, "--task=dialogue", "--architecture=gpt2", "--num_layers=3"]]
    read = "(config.task, config.policy.architecture, config.policy.num_layers)"
    assert _configured("quickstart", runs, read=read) == [
        "('reviews', 'gpt2', 2)",
        "('dialogue', 'llama3', 2)",  # the dialogue recipe's policy
        "('dialogue', 'gpt2', 3)",
    ]
    assert quickstart.recipe("dialogue", seed=3).policy.architecture == "llama3"
    assert quickstart.recipe("reviews") == quickstart.QuickstartConfig()


def test_deterministic_flag_turns_on_op_determinism_before_the_command_runs():
    script = (
        "from rlhf_tf.bin import common, runner\n"
        "from tensorflow.python.framework import config\n"
        "runner.run_binary(lambda argv: print('determinism', config.is_op_determinism_enabled()), {argv})\n"
    )
    for argv, expected in ((["x", "--deterministic"], "determinism True"), (["x"], "determinism False")):
        result = subprocess.run(
            [sys.executable, "-c", script.format(argv=argv)], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert expected in result.stdout
