import dataclasses

import numpy as np
import pytest

from rlhf_tf import tasks
from rlhf_tf.tasks.translate import corpus, gold, grammar


@pytest.fixture(scope="module")
def examples():
    found = corpus.generate_examples(3000, seed=11)
    return found, gold.score_batch([e.prompt for e in found], [e.completion for e in found])


def test_veltan_grammar_on_hand_written_sentences():
    dog, apple = grammar.Phrase("dog", "big"), grammar.Phrase("apple", "red", definite=False)
    sentence = grammar.Sentence(dog, "eat", "past", apple)
    assert sentence.english() == "The big dog ate a red apple."
    assert grammar.translate(sentence) == "hundo mora un kapel rua ko esit."
    plural = grammar.Sentence(grammar.Phrase("child", plural=True), "see", "future", grammar.Phrase("bird"))
    assert plural.english() == "The children will see the bird."
    assert grammar.translate(plural) == "pimon avi ko vidos."
    money = grammar.Sentence(
        dog, "find", "present", grammar.Phrase("coin"), ("in", grammar.Phrase("bank", sense="money"))
    )
    river = dataclasses.replace(
        money, object=grammar.Phrase("boat"), place=("near", grammar.Phrase("bank", sense="river"))
    )
    assert grammar.translate(money).endswith("depo en trova.") and grammar.translate(river).endswith("sora apud trova.")
    assert grammar.word_by_word(sentence) == "mora hundo esa un rua kapel."


def test_the_scorer_parses_every_generated_sentence_and_held_out_pairs_are_unseen(examples):
    found, _ = examples
    assert all(gold.reference(e.prompt) == grammar.translate(e.sentence) for e in found)
    assert {e.quality for e in found} == {q for q, _ in corpus.QUALITIES}
    assert not any(corpus.held_out_pair(e.sentence.subject.noun, e.sentence.object.noun) for e in found
                   if e.sentence.object.noun in grammar.NOUNS)  # fmt: skip
    prompts = [p.prompt for p in corpus.evaluation_prompts(300)]
    assert len(set(prompts)) == 300
    parsed = [gold.parse(gold.source_of(prompt)) for prompt in prompts]
    assert all(corpus.held_out_pair(s.subject.noun, s.object.noun) for s in parsed if s.object.noun in grammar.NOUNS)


def test_scorer_prefers_grammar_and_meaning(examples):
    found, scores = examples
    mean = lambda quality: float(np.mean([s for s, e in zip(scores, found) if e.quality == quality]))  # noqa: E731
    assert mean("good") == pytest.approx(2.5)
    for worse in ("missing", "wrong_tense", "wrong_word", "scrambled", "untranslated", "word_by_word"):
        assert mean("good") > mean(worse) + 0.3, worse
    prompt = corpus.prompt_of(grammar.Sentence(grammar.Phrase("man"), "find", "past", grammar.Phrase("coin"),
                                               ("in", grammar.Phrase("bank", sense="money"))))  # fmt: skip
    assert gold.score(prompt, "ero moneto ko depo en trovit.") == pytest.approx(2.5)
    assert gold.score(prompt, "ero moneto ko sora en trovit.") < 2.0  # the river sense where money is meant


def test_degenerate_translations_score_below_the_median(examples):
    found, scores = examples
    median = float(np.median(scores))
    for example in found[:60]:
        right = grammar.translate(example.sentence)
        for degenerate in ["", ".", gold.source_of(example.prompt), grammar.word_by_word(example.sentence),
                           "ko ko ko ko.", right + " " + right, right.rstrip(".") + " the."]:  # fmt: skip
            assert gold.score(example.prompt, degenerate) < median, (example.prompt, degenerate)


def test_metrics_and_the_bundled_task(examples):
    found, _ = examples
    good = [e for e in found if e.quality == "good"]
    measures = gold.metrics([e.prompt for e in good], [e.completion for e in good])
    assert measures == {"adequacy": 1.0, "fluency": 1.0, "untranslated_rate": 0.0}
    task = tasks.get_task("translate")
    prompts = [p.prompt for p in task.evaluation_prompts(3)]
    assert task.gold_score(prompts, ["x."] * 3).shape == (3,) and set(task.metrics(prompts, ["x."] * 3)) == set(
        measures
    )
