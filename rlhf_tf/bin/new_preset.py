"""`rlhf-tf new-preset`: a fresh keras-hub preset directory of any listed family, for offline work.

    rlhf-tf new-preset --architecture=llama3 --output_dir=presets/tiny_llama3
    rlhf-tf sft --preset=presets/tiny_llama3 --output_dir=runs/sft

Random weights of the given shape and the family's own tokenizer kind (SentencePiece or byte-level BPE, with the
family's special and chat tokens) trained on a task's demonstrations or a text file, written with keras-hub's
`save_to_preset` only: the directory has the files of a downloaded preset (config.json, model.weights.h5,
tokenizer.json, assets/) and nothing of rlhf-tf's, so every command takes it as it would take a real model.
"""

from absl import flags

from rlhf_tf.bin import common, runner

_ARCHITECTURE = flags.DEFINE_string("architecture", None, "PolicyConfig.architecture: llama3, mistral, qwen3, ...")
_TASK = flags.DEFINE_string("task", "reviews", "Bundled task whose demonstrations train the tokenizer.")
_CORPUS = flags.DEFINE_string("corpus", "", "A text file (one text a line) to train the tokenizer on instead.")
_VOCABULARY_SIZE = flags.DEFINE_integer("vocabulary_size", 1024, "Tokenizer vocabulary size.")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", 2, "PolicyConfig.num_layers.")
_NUM_HEADS = flags.DEFINE_integer("num_heads", 4, "PolicyConfig.num_heads.")
_KEY_VALUE_HEADS = flags.DEFINE_integer("num_key_value_heads", 2, "PolicyConfig.num_key_value_heads.")
_HIDDEN_DIM = flags.DEFINE_integer("hidden_dim", 128, "PolicyConfig.hidden_dim (intermediate 4x).")
_MAX_SEQUENCE_LENGTH = flags.DEFINE_integer("max_sequence_length", 256, "PolicyConfig.max_sequence_length.")
_NUM_TEXTS = flags.DEFINE_integer("num_texts", 20_000, "Task demonstrations the tokenizer learns from.")
flags.mark_flag_as_required("architecture")


def main(argv):
    del argv
    common.prepare()
    import os
    import shutil

    import keras

    from rlhf_tf import tasks
    from rlhf_tf.data import family_tokenizers
    from rlhf_tf.errors import UserInputError
    from rlhf_tf.models import policy as policy_lib

    output_dir = common.OUTPUT_DIR.value
    if not output_dir:
        raise UserInputError("Give --output_dir, the preset directory to write.")
    if policy_lib.is_preset_directory(output_dir):
        raise UserInputError(f"{output_dir} already holds a preset; give a new --output_dir.")
    config = policy_lib.PolicyConfig(
        architecture=_ARCHITECTURE.value,
        num_layers=_NUM_LAYERS.value,
        num_heads=_NUM_HEADS.value,
        num_key_value_heads=_KEY_VALUE_HEADS.value,
        hidden_dim=_HIDDEN_DIM.value,
        intermediate_dim=4 * _HIDDEN_DIM.value,
        max_sequence_length=_MAX_SEQUENCE_LENGTH.value,
    )
    if _CORPUS.value:
        with open(_CORPUS.value, encoding="utf-8") as handle:
            texts = [line.rstrip("\n") for line in handle if line.strip()]
    else:
        texts = [d.prompt + d.completion for d in tasks.get_task(_TASK.value).demonstrations(_NUM_TEXTS.value)]
    keras.utils.set_random_seed(common.SEED.value)
    tokenizer = family_tokenizers.train(config.architecture, texts, _VOCABULARY_SIZE.value)
    causal_lm = policy_lib.build_policy(config, tokenizer.vocabulary_size())
    temporary = output_dir.rstrip("/") + ".tmp"
    if os.path.exists(temporary):
        shutil.rmtree(temporary)
    causal_lm.save_to_preset(temporary)
    tokenizer.save_to_preset(temporary)
    os.replace(temporary, output_dir)
    print(
        f"{output_dir}: {type(causal_lm).__name__} ({causal_lm.backbone.count_params():,} parameters), "
        f"{type(tokenizer).__name__} ({tokenizer.vocabulary_size()} tokens, learned from {len(texts)} texts)"
    )


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
