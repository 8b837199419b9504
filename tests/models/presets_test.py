"""A user's own preset directory, per fast family: a tiny random-weight model with its family's tokenizer kind
trained locally, saved with keras-hub's `save_to_preset` (no rlhf-tf files) and loaded back exactly as a downloaded
preset would be; and the clear errors for directories that are not such presets."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from rlhf_tf import tasks
from rlhf_tf.data import family_tokenizers
from rlhf_tf.errors import UserInputError
from rlhf_tf.models import policy as policy_lib
from rlhf_tf.models import sampling

TINY = policy_lib.PolicyConfig(
    num_layers=1, num_heads=4, num_key_value_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64
)


@pytest.fixture(scope="module")
def corpus():
    return [d.prompt + d.completion for d in tasks.get_task("reviews").demonstrations(400)]


def _user_preset(directory, architecture, corpus):
    """What a user downloads: keras-hub's own files for the model and its tokenizer."""
    keras.utils.set_random_seed(0)
    tokenizer = family_tokenizers.train(architecture, corpus, vocabulary_size=600)
    causal_lm = policy_lib.build_policy(dataclasses.replace(TINY, architecture=architecture), 600)
    causal_lm.save_to_preset(str(directory))
    tokenizer.save_to_preset(str(directory))
    return directory


@pytest.mark.parametrize("architecture", ["llama3", "mistral", "qwen3", "gemma3", "gpt2"])
def test_a_downloaded_style_preset_loads_and_generates(architecture, corpus, tmp_path):
    directory = _user_preset(tmp_path / architecture, architecture, corpus)
    assert not (directory / policy_lib.TOKENIZER_FILE).exists()
    causal_lm, tokenizer = policy_lib.load_policy(directory)
    kind = family_tokenizers.KINDS[architecture]
    assert type(tokenizer.tokenizer) is kind.tokenizer
    # Responses end at the family's end-of-turn token (its end of text for GPT-2).
    assert tokenizer.tokenizer.id_to_token(tokenizer.end_id) == kind.end
    assert tokenizer.end_id != tokenizer.pad_id
    text = "A moving film with a great cast."
    ids = tokenizer.tokenize([text])
    assert tokenizer.detokenize(ids).numpy()[0].decode() == text
    assert len(ids[0]) < 0.75 * len(text)  # merges learned from the corpus (bytes would take one id each)

    prompts = tokenizer.tokenize(["Review of the film", "Plot:"]).to_tensor(tokenizer.pad_id)
    mask = prompts != tokenizer.pad_id
    config = sampling.SamplingConfig(max_new_tokens=6)
    out = sampling.Sampler(causal_lm, tokenizer.end_id, tokenizer.pad_id, config).generate(prompts, mask, [0, 0])
    forced = sampling.teacher_forced(causal_lm.backbone, prompts, mask, out["token_ids"], out["mask"])
    assert np.abs(forced["logprobs"].numpy() - out["logprobs"].numpy()).max() < sampling.LOGPROB_TOLERANCE
    assert all(isinstance(s, bytes) for s in tokenizer.detokenize(out["token_ids"], out["mask"]).numpy())


def test_incomplete_or_non_causal_presets_are_refused_before_loading(corpus, tmp_path):
    directory = _user_preset(tmp_path / "llama3", "llama3", corpus)
    (directory / "model.weights.h5").unlink()
    with pytest.raises(UserInputError, match=r"lacks model.weights.h5"):
        policy_lib.load_policy(directory)

    no_tokenizer = tmp_path / "no_tokenizer"
    policy_lib.build_policy(TINY, 300).save_to_preset(str(no_tokenizer))
    with pytest.raises(UserInputError, match=r"lacks tokenizer.json"):
        policy_lib.load_policy(no_tokenizer)

    with pytest.raises(UserInputError, match=r"config.json is missing"):
        policy_lib.load_policy(tmp_path)

    encoder = tmp_path / "bert"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"class_name": "BertBackbone", "config": {}}))
    with pytest.raises(UserInputError, match=r"BertBackbone, which keras-hub has no causal LM for"):
        policy_lib.load_policy(encoder)


def test_unknown_tokenizer_kind_is_refused():
    with pytest.raises(UserInputError, match="No tokenizer kind is known for architecture 'opt'"):
        family_tokenizers.train("opt", ["some text"])
