"""`--labeler=web`: a control run waits for people answering in the labeling app, and with a person who answers as
the simulated teacher would, the run is the simulated run, label for label."""

import re
import threading

from rlhf_tf.agents import control
from rlhf_tf.feedback import store as store_lib
from rlhf_tf.feedback import webapp


def _person(store_path, token, stop):
    """Answers every item through the app's HTTP interface as the true-reward teacher would (the true returns'
    verdict is in each item's metadata; ties when the returns are equal)."""
    app = webapp.create_app(store_path)
    client = app.test_client()
    client.get(f"/login?token={token}")
    answered = 0
    while not stop.is_set():
        page = client.get("/").get_data(as_text=True)
        found = re.search(r'name="item_id" value="(\d+)"', page)
        if not found:
            stop.wait(0.05)
            continue
        item_id = int(found.group(1))
        with store_lib.FeedbackStore(store_path) as store:
            gold = store.item(item_id).metadata["gold_preferred"]
        choice = "tie" if gold is None else ("left", "right")[gold]
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        response = client.post("/answer", data={"item_id": item_id, "choice": choice, "csrf": csrf})
        assert response.status_code == 302
        answered += 1
    return answered


def test_web_labels_drive_the_run_exactly_like_the_simulated_teacher(tmp_path):
    settings = dict(num_labels=30, env_steps=8 * 64 * 6, eval_episodes=3, progress=False, label_timeout=120)
    simulated = control.train_control(control.ControlConfig(output_dir=str(tmp_path / "simulated"), **settings))

    store_path = str(tmp_path / "shared.sqlite")
    with store_lib.FeedbackStore(store_path) as store:
        token = store.add_labeler("ann")
    stop = threading.Event()
    person = threading.Thread(target=_person, args=(store_path, token, stop), daemon=True)
    person.start()
    try:
        web = control.train_control(
            control.ControlConfig(output_dir=str(tmp_path / "web"), labeler="web", store=store_path, **settings)
        )
    finally:
        stop.set()
        person.join(timeout=30)
    with store_lib.FeedbackStore(store_path) as store:
        labels = store.labels()
    assert len(labels) == 30 and {label.labeler for label in labels} == {"ann"}
    for name in ("control/labels_used", "control/reward_loss", "control/agent_loss", "control/true_return_mean"):
        assert web[name] == simulated[name], name
