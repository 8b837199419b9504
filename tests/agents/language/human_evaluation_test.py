"""People judge a policy against its baseline through the labeling app: blind pairs, win rate, interval, agreement."""

import html
import re
import threading

import numpy as np
import pytest

from rlhf_tf import tasks, testing
from rlhf_tf.agents.language import human_evaluation, text_metrics
from rlhf_tf.feedback import labeling_app
from rlhf_tf.feedback import store as store_lib


def _person(app, token, gold, stop, answered):
    """A scripted labeler in the app who prefers what the gold scorer prefers (a tie when it scores both alike)."""
    client = app.test_client()
    testing.sign_in(client, token)
    while not stop.is_set():
        page = client.get("/").get_data(as_text=True)
        if 'id="empty"' in page:
            stop.wait(0.05)
            continue
        prompt = html.unescape(re.search(r'<pre id="prompt"[^>]*>(.*?)</pre>', page, re.DOTALL).group(1))
        first, second = (
            html.unescape(text) for text in re.findall(r'<pre class="response"[^>]*>(.*?)</pre>', page, re.DOTALL)
        )
        scores = gold([prompt, prompt], [first, second])
        choice = "tie" if scores[0] == scores[1] else ("left" if scores[0] > scores[1] else "right")
        hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page))
        form = {name: hidden[name] for name in ("item_id", "csrf", "shown_at", "ticket")}
        client.post("/answer", data={**form, "choice": choice})
        answered.append(choice)


def test_people_answering_as_the_gold_scorer_give_the_gold_win_rate(tmp_path):
    task = tasks.get_task("reviews")
    corpus = task.demonstrations(60)
    prompts = [d.prompt for d in corpus[:30]]
    policy = [d.completion for d in corpus[:30]]
    baseline = [d.completion for d in corpus[30:]]
    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        token = store.add_labeler("ann")
    stop, answered = threading.Event(), []
    person = threading.Thread(
        target=_person, args=(labeling_app.create_app(path), token, task.gold_score, stop, answered), daemon=True
    )
    person.start()
    try:
        result = human_evaluation.people_judge(path, prompts, policy, baseline, seed=3, timeout=120)
    finally:
        stop.set()
        person.join(timeout=30)
    gold_win_rate = text_metrics.win_rate(task.gold_score(prompts, policy), task.gold_score(prompts, baseline))
    assert result["people_pairs_answered"] == 30 and len(answered) == 30
    assert result["people_win_rate_vs_baseline"] == pytest.approx(gold_win_rate)
    assert result["people_win_rate_low"] <= gold_win_rate <= result["people_win_rate_high"]
    assert np.isnan(result["people_agreement"])  # one answer per pair
    # Blind: the policy's response is on the left about half the time, never marked.
    with store_lib.FeedbackStore(path) as store:
        sides = [item.metadata["policy_side"] for item in store.items()]
        assert 8 <= sum(sides) <= 22
        # A rerun on the same samples finds its pairs and answers instead of asking again.
        again = human_evaluation.people_judge(path, prompts, policy, baseline, seed=3, timeout=1)
        del again["people_agreement"], result["people_agreement"]  # nan both times
        assert again == result and store.item_count() == 30


def test_agreement_between_people_on_pairs_answered_twice(tmp_path):
    with store_lib.FeedbackStore(tmp_path / "f.sqlite") as store:
        asking = human_evaluation.ask(store, ["p1", "p2"], ["a1", "a2"], ["b1", "b2"], labels_per_pair=2)
        first, second = asking.items()
        ours = lambda item: item.metadata["policy_side"]  # noqa: E731
        asking.answer("ann", [first.id, second.id], [{"preferred": ours(first)}, {"preferred": ours(second)}])
        asking.answer("bob", [first.id, second.id], [{"preferred": ours(first)}, {"preferred": 1 - ours(second)}])
        result = human_evaluation.judgement(asking)
    assert result["people_win_rate_vs_baseline"] == 0.75 and result["people_agreement"] == 0.5
    assert result["people_answers"] == 4
