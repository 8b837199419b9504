import numpy as np
import pytest

from rlhf_tf import tasks
from rlhf_tf.errors import UserInputError
from rlhf_tf.tasks.reviews import corpus, gold

PROMPT = "Review of the Apex blender:"


@pytest.fixture(scope="module")
def corpus_scores():
    reviews = corpus.generate_reviews(4000, seed=11)
    return reviews, gold.score_batch([r.prompt for r in reviews], [r.completion for r in reviews])


def test_corpus_is_deterministic_varied_and_mixed():
    reviews = corpus.generate_reviews(20_000)
    assert reviews[:50] == corpus.generate_reviews(50)
    assert len({review.text for review in reviews}) > 15_000
    assert {review.stars for review in reviews} == {1, 2, 3, 4, 5}
    kinds = [review.subject.kind for review in reviews]
    assert 0.4 < kinds.count("product") / len(kinds) < 0.6
    lengths = [len(review.completion.split()) for review in reviews]
    assert 5 <= np.median(lengths) <= 40


def test_evaluation_prompts_are_distinct_and_name_unseen_subjects():
    prompts = corpus.evaluation_prompts(1000)
    texts = [prompt.prompt for prompt in prompts]
    assert len(texts) == len(set(texts)) == 1000
    train_headers = {subject.header for subject in corpus.train_subjects()}
    assert not any(text.split(":")[0] + ":" in train_headers for text in texts)


def test_degenerate_replies_score_below_the_median_review(corpus_scores):
    _, scores = corpus_scores
    median = float(np.median(scores))
    for degenerate in [
        "",
        ".",
        "great",
        "great " * 12,
        "good good good good good good good good.",
        "xqzt flurb wimble grommet zast plonk vrem.",
        "Great. Great. Great. Great. Great.",
        "!!!!! ????? ..... ,,,,,",
        "the the the the the the the the the the.",
    ]:
        assert gold.score(PROMPT, degenerate) < median, degenerate


def test_scorer_prefers_positive_fluent_on_topic_reviews(corpus_scores):
    reviews, scores = corpus_scores
    by_stars = {stars: np.mean([s for s, r in zip(scores, reviews) if r.stars == stars]) for stars in range(1, 6)}
    assert by_stars[1] < by_stars[2] < by_stars[3] < by_stars[4] < by_stars[5]
    positive = " The motor is excellent. It crushes ice in seconds. I would recommend it to anyone."
    negative = " The motor is awful. It leaks around the lid. I would not recommend it."
    assert gold.score(PROMPT, positive) > gold.score(PROMPT, negative) + 1
    negated = " The motor is not great. It leaks around the lid."
    assert gold.score(PROMPT, negated) < 0
    drifting = " The motor is excellent. The suction picks up pet hair and the plot was gripping."
    assert gold.score(PROMPT, drifting) < gold.score(PROMPT, positive) - 0.5
    piled = " It is great, excellent, fantastic, perfect, brilliant, superb and wonderful."
    assert gold.score(PROMPT, piled) < gold.score(PROMPT, positive)
    unfinished = " The motor is excellent. It crushes ice in"
    assert gold.score(PROMPT, unfinished) < gold.score(PROMPT, positive)
    run_on = positive + " It crushes ice in seconds and" + " the jar is good and" * 12 + " done."
    assert gold.score(PROMPT, run_on) < gold.score(PROMPT, positive)


def test_score_details_explain_the_score():
    details = gold.score_details(PROMPT, "great great great")
    assert details["repetition"] > 0 and details["too_short"] > 0
    assert details["score"] == pytest.approx(
        details["sentiment"]
        + details["on_topic_bonus"]
        - sum(v for k, v in details.items() if k not in ("sentiment", "on_topic_bonus", "score"))
    )


def test_task_registry_and_wordpiece_vocabulary():
    task = tasks.get_task("reviews")
    demonstrations = task.demonstrations(200)
    assert len(demonstrations) == 200 and demonstrations[0].completion.startswith(" ")
    tokenizer = task.tokenizer()
    assert tokenizer.pad_id == 0 and tokenizer.vocabulary_size < 2000
    texts = [demo.completion for demo in demonstrations[:50]]
    ids = tokenizer.tokenize(texts)
    assert not np.any(ids.flat_values.numpy() == 1)  # no [UNK] on corpus text
    decoded = [text.decode() for text in tokenizer.detokenize(ids).numpy()]
    np.testing.assert_allclose(task.gold_score([""] * 50, decoded), task.gold_score([""] * 50, texts), atol=1e-6)
    with pytest.raises(UserInputError, match="Unknown task"):
        tasks.get_task("chess")
