"""Chat data in each family's own template: dialogues rendered with the family's special tokens, those tokens kept
whole by the tokenizer, and SFT's loss on the assistant's reply and its end of turn only."""

import numpy as np
import pytest
import tensorflow as tf

from rlhf_tf.data import family_tokenizers, formats, pipelines, records

DIALOGUE = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell a joke\n\nAssistant:"


@pytest.mark.parametrize(
    "architecture, expected",
    [
        (
            "llama3",
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nTell a joke<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        (
            "gemma3",
            "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nTell a joke<end_of_turn>\n<start_of_turn>model\n",
        ),
        (
            "qwen3",
            "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nTell a joke<|im_end|>\n<|im_start|>assistant\n",
        ),
        ("mistral", "<s>[INST] Hi there [/INST]Hello!</s>[INST] Tell a joke [/INST]"),
    ],
)
def test_dialogues_render_in_each_familys_template(architecture, expected):
    rendered = family_tokenizers.render_transcripts(
        tf.constant([DIALOGUE, "Review of the film:"]), family_tokenizers.KINDS[architecture].chat
    ).numpy()
    assert rendered[0].decode() == expected
    assert rendered[1].decode() == "Review of the film:"  # not a dialogue: untouched


@pytest.fixture(scope="module")
def llama3():
    corpus = [f"\n\nHuman: question {i}\n\nAssistant: answer number {i} is fine" for i in range(300)]
    return family_tokenizers.trained("llama3", corpus, vocabulary_size=500)


def test_chat_tokens_stay_whole_and_sft_learns_only_the_reply_and_its_end_of_turn(llama3):
    demonstration = formats.parse(
        {"messages": [{"role": "user", "content": "question 7"}, {"role": "assistant", "content": "answer 7"}]},
        "demonstration",
    )
    assert isinstance(demonstration, records.Demonstration)
    ids = llama3.tokenize([demonstration.prompt]).numpy()[0]
    vocabulary = llama3.tokenizer
    header = [vocabulary.token_to_id(t) for t in ("<|start_header_id|>", "<|end_header_id|>")]
    assert ids[0] == vocabulary.token_to_id("<|begin_of_text|>")
    assert list(ids).count(header[0]) == 2 and list(ids).count(header[1]) == 2
    assert llama3.end_id == vocabulary.token_to_id("<|eot_id|>") and llama3.end_id in ids

    config = pipelines.PipelineConfig(seq_len=48, max_prompt_tokens=40, batch_size=1, buckets=(48,))
    batch = next(
        iter(
            pipelines.demonstration_dataset_fn(pipelines.TextSource([demonstration], "demonstration"), config, llama3)(
                None
            )
        )
    )
    tokens = batch["token_ids"].numpy()[0]
    learned = tokens[batch["loss_mask"].numpy()[0]]
    # The reply's tokens and the end of turn after it; nothing of the prompt (its own end-of-turn ids included).
    reply = llama3.tokenize([demonstration.completion]).numpy()[0]
    np.testing.assert_array_equal(learned, np.concatenate([reply, [llama3.end_id]]))
