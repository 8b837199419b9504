import numpy as np
import pytest

from rlhf_tf import tasks
from rlhf_tf.tasks.summarize import corpus, gold


@pytest.fixture(scope="module")
def examples():
    found = corpus.generate_examples(3000, seed=11)
    return found, gold.score_batch([e.prompt for e in found], [e.completion for e in found])


def test_corpus_is_deterministic_mixed_and_evaluation_documents_name_unseen_things(examples):
    found, _ = examples
    assert found[:20] == corpus.generate_examples(20, seed=11)
    assert {e.document.kind for e in found} == {"match", "incident", "announcement"}
    assert {e.quality for e in found} == {"good", "missing", "wrong", "copy", "long", "vague"}
    # The scorer finds in the text the key facts the generator meant.
    assert all(gold.key_facts(e.document.text)[2] == e.document.key_facts for e in found)
    prompts = [p.prompt.lower() for p in corpus.evaluation_prompts(1000)]
    assert len(set(prompts)) == 1000
    seen = {word for e in found for word in e.prompt.lower().replace(".", " ").split()}
    held_out = {name for name in corpus.HELD_OUT_TEAMS + corpus.HELD_OUT_SURNAMES if name in " ".join(prompts)}
    assert len(held_out) > 50 and not held_out & seen  # many held-out names, none in training documents
    for name in corpus.TRAIN_TEAMS + corpus.TRAIN_SURNAMES + corpus.TRAIN_BUILDINGS:
        assert not any(f" {name} " in prompt for prompt in prompts), name


def test_scorer_ranks_summaries_as_a_careful_reader_would(examples):
    found, scores = examples
    mean = lambda quality: float(np.mean([s for s, e in zip(scores, found) if e.quality == quality]))  # noqa: E731
    assert mean("good") == pytest.approx(1.5)
    assert mean("good") > mean("long") > mean("vague") and mean("good") > mean("missing") > mean("wrong")
    assert mean("copy") < mean("vague")
    prompt = "Document: The hawks beat the rovers three to one at north park on friday. Tom Reed scored two goals " \
        "for the hawks. The rovers play again next monday.\n\nSummary:"  # fmt: skip
    good = "The hawks beat the rovers three to one on friday, with two goals from Tom Reed."
    assert gold.score(prompt, good) == pytest.approx(1.5)
    assert gold.score(prompt, good.replace("friday", "monday")) < 0.5  # another day of the document, wrong role
    assert gold.score(prompt, "The rovers beat the hawks three to one on friday, with two goals from Tom Reed.") < 0.6
    assert gold.score(prompt, good.replace("Tom Reed", "Ana Moss")) < 0.5  # a person the document never names
    assert gold.score(prompt, good.replace("three to one", "three to two")) < 0.6


def test_degenerate_summaries_score_below_the_median(examples):
    found, scores = examples
    median = float(np.median(scores))
    for example in found[:40]:
        words = " ".join(sorted({word for _, fact in example.document.key_facts for word in fact}))
        for degenerate in ["", ".", example.document.text, words, words + ".", "The the the the.",
                           example.document.summary + " " + example.document.summary,
                           "A summary of the document is below."]:  # fmt: skip
            assert gold.score(example.prompt, degenerate) < median, (example.prompt, degenerate)


def test_metrics_and_the_bundled_task(examples):
    found, _ = examples
    good = [e for e in found if e.quality == "good"]
    measures = gold.metrics([e.prompt for e in good], [e.completion for e in good])
    assert measures["fact_recall"] == 1.0 and measures["unsupported_fact_rate"] == 0.0
    wrong = [e for e in found if e.quality == "wrong"]
    assert gold.metrics([e.prompt for e in wrong], [e.completion for e in wrong])["unsupported_fact_rate"] == 1.0
    task = tasks.get_task("summarize")
    prompts = [p.prompt for p in task.evaluation_prompts(3)]
    assert task.gold_score(prompts, ["x."] * 3).shape == (3,) and task.max_prompt_tokens == 80
