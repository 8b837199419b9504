"""`rlhf-tf recommend --labeler=web` in a real browser: a scripted person signs in to the labeling app (served by
waitress, driven by Playwright in Debian's Chromium), reads the described visitor and the two lists of each question,
answers with the keyboard, and the run trains on those answers.

Set RLHF_TF_SCREENSHOTS=DIR to keep a screenshot of a slate question.
"""

import json
import os
import shutil
import threading

import pytest

from rlhf_tf.agents.recommend import bandits
from rlhf_tf.agents.recommend import run as recommend_run
from rlhf_tf.feedback import labeling_app
from rlhf_tf.feedback import store as store_lib

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium package (`apt-get install chromium`; .ci/run installs it)"
)


def test_a_person_compares_slates_in_the_browser_and_the_run_trains_on_the_answers(tmp_path):
    import waitress
    from playwright.sync_api import sync_playwright

    store_path = str(tmp_path / "shared.sqlite")
    with store_lib.FeedbackStore(store_path) as store:
        token = store.add_labeler("ann")
    server = waitress.create_server(labeling_app.create_app(store_path), host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}"

    config = recommend_run.RecommendConfig(
        output_dir=str(tmp_path / "run"),
        labeler="web",
        store=store_path,
        label_timeout=300,
        num_labels=80,
        rounds=2,
        eval_visits=400,
        oracle=False,
        off_policy_logs=0,
        bandit=bandits.BanditHyperparameters(steps=120),
        seed=3,
    )
    outcome = {}

    def train():
        try:
            outcome["metrics"] = recommend_run.train_recommender(config)
        except BaseException as error:  # surfaced in the test's thread below
            outcome["error"] = error

    run = threading.Thread(target=train, daemon=True)
    run.start()
    answered = {}  # item id -> the person's choice (0 left, 1 right)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{url}/login?token={token}")
            with page.expect_navigation():
                page.click("#sign-in")
            while run.is_alive():
                if page.locator("#answer-form").count() == 0:
                    page.wait_for_timeout(200)
                    page.goto(f"{url}/")
                    continue
                assert page.get_attribute("#answer-form", "data-kind") == "slate_comparison"
                item_id = int(page.get_attribute('input[name="item_id"]', "value"))
                # What the person sees: who the visitor is (context only) and two lists of five described items.
                assert "A visitor in the" in page.inner_text(".prompt")
                for side in (0, 1):
                    assert page.locator(f"#candidate-{side} ol.slate li").count() == 5
                    assert "price" in page.inner_text(f"#candidate-{side} ol.slate li >> nth=0")
                if not answered:
                    _screenshot(page)
                # The scripted person knows the visitor's taste: they answer as the hidden satisfaction says.
                with store_lib.FeedbackStore(store_path) as store:
                    gold = store.item(item_id).metadata["gold_preferred"]
                answered[item_id] = 0 if gold is None else gold
                with page.expect_navigation():
                    page.keyboard.press(("1", "2")[answered[item_id]])
            browser.close()
    finally:
        run.join(timeout=600)
        server.close()
    if "error" in outcome:
        raise outcome["error"]
    metrics = outcome["metrics"]
    assert metrics["labels"] == len(answered) == 80
    with store_lib.FeedbackStore(store_path) as store:
        labels = store.labels()
        items = {item.id: item for item in store.items()}
    assert {label.labeler for label in labels} == {"ann"} and len(labels) == 80
    # The run trained on exactly what the person answered, list for list.
    trained = []
    for round_number in (0, 1):
        path = tmp_path / "run" / "labels" / f"round-{round_number}.jsonl"
        trained += [json.loads(line) for line in path.read_text().splitlines()]
    asked = sorted((label.id, label.item_id) for label in labels)
    for record, (_, item_id) in zip(trained, asked):
        shown = items[item_id].metadata["record"]
        assert (record["first"], record["second"]) == (shown["first"], shown["second"])
        assert record["preferred"] == ("first", "second")[answered[item_id]]
    # 80 consistent answers teach a reward the agent beats random lists with (an untrained agent ranks at random).
    assert metrics["learned/satisfaction"] > metrics["random/satisfaction"] + 0.15, metrics


def _screenshot(page):
    directory = os.environ.get("RLHF_TF_SCREENSHOTS")
    if directory:
        os.makedirs(directory, exist_ok=True)
        page.screenshot(path=os.path.join(directory, "slate_comparison.png"), full_page=True)
