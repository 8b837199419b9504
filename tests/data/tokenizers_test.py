import numpy as np
import pytest

from rlhf_tf import testing
from rlhf_tf.data import pipelines, records, tokenizers
from rlhf_tf.errors import UserInputError


def test_byte_tokenizer_round_trip_and_end_token():
    tokenizer = tokenizers.resolve_tokenizer("byte")
    assert (tokenizer.pad_id, tokenizer.end_id, tokenizer.vocabulary_size) == (0, 256, 257)
    ids = tokenizer.tokenize(["héllo", "ab"])
    assert ids.to_list() == [[104, 195, 169, 108, 108, 111], [97, 98]]
    dense = np.array([[97, 98, 256, 99, 0], [104, 105, 0, 0, 0]])
    assert tokenizer.detokenize(dense).numpy().tolist() == [b"ab", b"hi"]


def test_local_keras_hub_preset_directory(tmp_path):
    preset = testing.tiny_gpt2_preset(tmp_path / "preset")
    tokenizer = tokenizers.resolve_tokenizer(preset)
    assert tokenizer.vocabulary_size == 6 and tokenizer.end_id == 0
    assert tokenizer.tokenize(["ab a"]).to_list() == [[4, 5]]
    # The same tokenizer drives a pipeline.
    config = pipelines.PipelineConfig(seq_len=8, max_prompt_tokens=2, batch_size=1, shuffle_buffer=0)
    source = pipelines.TextSource([records.Rating("a", "ab", 1.0)], "rating")
    batch = next(iter(pipelines.rating_dataset_fn(source, config, tokenizer)(None)))
    assert batch["token_ids"].numpy()[0, :3].tolist() == [1, 4, 0]


def test_keras_hub_tokenizer_object_and_bad_specs(tmp_path):
    import keras_hub

    tokenizer = tokenizers.resolve_tokenizer(
        keras_hub.models.GPT2Tokenizer(vocabulary={"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3}, merges=["a b"])
    )
    assert tokenizer.end_id == 0
    with pytest.raises(UserInputError, match="keras-hub preset name or a local preset directory"):
        tokenizers.resolve_tokenizer(str(tmp_path / "no-such-preset"))
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("[UNK]\n[PAD]\na\n")
    with pytest.raises(UserInputError, match=r"needs \[PAD\] as its first line"):
        tokenizers.resolve_tokenizer(str(vocabulary))
