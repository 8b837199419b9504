"""`rlhf-tf sft`: supervised fine-tuning of a language policy on demonstrations.

    rlhf-tf sft --task=reviews --output_dir=runs/sft          # the bundled corpus, good defaults
    rlhf-tf sft --data=demos.jsonl --output_dir=runs/my-sft   # your demonstrations (prompt/completion or messages)

Writes the run directory (metrics.json with sft/eval_perplexity, config.json, tb/, ckpt/), policy/ (a keras-hub
preset plus tokenizer, for later stages), samples.jsonl, and export/policy (serving SavedModel). Every field is
documented in `rlhf_tf.agents.language.sft.SFTConfig`.
"""

import dataclasses

from absl import flags

from rlhf_tf.bin import common, runner

_TASK = flags.DEFINE_string("task", "reviews", "SFTConfig.task: bundled task to learn (when --data is not given).")
_DATA = flags.DEFINE_string("data", "", "SFTConfig.data: demonstrations (JSONL, TFRecord or tfds: spec).")
_EVAL_DATA = flags.DEFINE_string("eval_data", "", "SFTConfig.eval_data: held-out demonstrations.")
_TOKENIZER = flags.DEFINE_string("tokenizer", "", "SFTConfig.tokenizer: byte, a vocabulary .txt, or a preset.")
_PRESET = flags.DEFINE_string("preset", "", "PolicyConfig.preset: keras-hub preset, local preset or run directory.")
_ARCHITECTURE = flags.DEFINE_string(
    "architecture", None, "PolicyConfig.architecture of a fresh model: gpt2, llama3, mistral, qwen3, gemma3, ..."
)
_KEY_VALUE_HEADS = flags.DEFINE_integer("num_key_value_heads", None, "PolicyConfig.num_key_value_heads (GQA).")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", None, "PolicyConfig.num_layers.")
_HIDDEN_DIM = flags.DEFINE_integer("hidden_dim", None, "PolicyConfig.hidden_dim.")
_NUM_HEADS = flags.DEFINE_integer("num_heads", None, "PolicyConfig.num_heads.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "SFTConfig.learning_rate.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", None, "SFTConfig.num_examples (task corpus size).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "SFTConfig.num_samples shown at the end.")
_JIT = flags.DEFINE_bool("jit_compile", True, "SFTConfig.jit_compile.")
_EXPORT = flags.DEFINE_bool("export", True, "SFTConfig.export: write export/policy.")


def config_from_flags():
    from rlhf_tf.agents.language import sft as sft_lib

    base = sft_lib.SFTConfig(output_dir=common.OUTPUT_DIR.value)
    policy = base.policy
    policy = dataclasses.replace(
        policy,
        **common.given(
            (
                ("architecture", _ARCHITECTURE),
                ("num_key_value_heads", _KEY_VALUE_HEADS),
                ("num_layers", _NUM_LAYERS),
                ("hidden_dim", _HIDDEN_DIM),
                ("num_heads", _NUM_HEADS),
            )
        ),
    )
    if _HIDDEN_DIM.value is not None:
        policy = dataclasses.replace(policy, intermediate_dim=4 * _HIDDEN_DIM.value)
    if _PRESET.value:
        policy = dataclasses.replace(policy, preset=_PRESET.value)
    changes = dict(
        task=_TASK.value if not _DATA.value else "",
        data=_DATA.value,
        eval_data=_EVAL_DATA.value,
        format=common.FORMAT.value or "",
        skip_bad_records=common.SKIP_BAD_RECORDS.value,
        tokenizer=_TOKENIZER.value,
        policy=policy,
        pipeline=common.pipeline_config(base.pipeline, _TASK.value if not _DATA.value else ""),
        loop=common.loop_config(base.loop),
        jit_compile=_JIT.value,
        export=_EXPORT.value,
        strategy=common.STRATEGY.value,
        lora=common.lora_config(),
        **common.compute_dtype_changes(base),
    )
    changes.update(
        common.given(
            (("learning_rate", _LEARNING_RATE), ("num_examples", _NUM_EXAMPLES), ("num_samples", _NUM_SAMPLES))
        )
    )
    return dataclasses.replace(base, **changes)


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf.agents.language import sft

    common.print_metrics(sft.train_sft(config_from_flags()), ("sft/eval_perplexity", "sft/loss", "sft/samples"))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
