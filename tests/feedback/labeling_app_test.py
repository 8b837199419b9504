"""The labeling app through Flask's test client: access, CSRF, escaping, answers, undo, races, admin."""

import re

import pytest

from rlhf_tf import testing
from rlhf_tf.feedback import labeling_app
from rlhf_tf.feedback import store as store_lib

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture()
def setup(tmp_path):
    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        ann = store.add_labeler("ann")
        bob = store.add_labeler("bob")
        lead = store.add_labeler("lead", admin=True)
        store.add_items(
            [
                store_lib.Item(
                    "comparison",
                    (HOSTILE, "a calm answer"),
                    prompt="Say hi",
                    priority=3,
                    metadata={"gold_preferred": 1},
                ),
                store_lib.Item("rating", ("rate me",), prompt="p", priority=2),
                store_lib.Item("ranking", ("x", "y", "z"), prompt="rank", priority=1),
            ]
        )
    app = labeling_app.create_app(path, secret=b"k" * 32)
    app.testing = False  # errors go through the app's handlers, as in production
    return path, app, {"ann": ann, "bob": bob, "lead": lead}


def _client(app, token):
    client = app.test_client()
    response = testing.sign_in(client, token)
    assert response.status_code == 302
    return client


def _csrf(page):
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def _item_id(page):
    return int(re.search(r'name="item_id" value="(\d+)"', page).group(1))


def _form(page, **fields):
    """The hidden fields a page's answer form posts (item, CSRF token, when shown, the ticket), plus `fields`."""
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page))
    return {**{name: hidden[name] for name in ("item_id", "csrf", "shown_at", "ticket")}, **fields}


def test_nothing_is_served_without_a_token(setup):
    _, app, _ = setup
    client = app.test_client()
    assert client.get("/").status_code == 401
    assert "HOSTILE" not in client.get("/").get_data(as_text=True)
    assert client.get("/login?token=wrong").status_code == 401
    response = client.post("/answer", data={"item_id": "1", "choice": "left"})
    assert response.status_code == 401 and response.mimetype == "text/plain"
    assert client.get("/clip/1/0").status_code == 401
    assert client.get("/admin").status_code == 401


def test_model_output_is_escaped_and_scripts_are_confined(setup):
    _, app, tokens = setup
    client = _client(app, tokens["ann"])
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_answers_need_the_form_token(setup):
    path, app, tokens = setup
    client = _client(app, tokens["ann"])
    page = client.get("/").get_data(as_text=True)
    response = client.post("/answer", data={"item_id": _item_id(page), "choice": "left", "csrf": "0" * 64})
    assert response.status_code == 403
    with store_lib.FeedbackStore(path) as store:
        assert store.counts()["labels"] == 0


def test_answers_undo_and_every_kind(setup):
    path, app, tokens = setup
    client = _client(app, tokens["ann"])
    page = client.get("/").get_data(as_text=True)
    csrf = _csrf(page)
    comparison = _item_id(page)
    assert _item_id(page) == comparison
    response = client.post("/answer", data=_form(page, choice="right", comment="nicer"))
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert 'data-kind="rating"' in page
    client.post("/answer", data=_form(page, choice="score-6"))
    page = client.get("/").get_data(as_text=True)
    bad = client.post("/answer", data=_form(page, choice="ranking", **{"rank-0": 1, "rank-1": 1, "rank-2": 3}))
    assert bad.status_code == 400 and "each used once" in bad.get_data(as_text=True)
    client.post("/answer", data=_form(page, choice="ranking", **{"rank-0": 2, "rank-1": 3, "rank-2": 1}))
    assert 'id="empty"' in client.get("/").get_data(as_text=True)
    with store_lib.FeedbackStore(path) as store:
        labels = store.labels(labeler="ann")
    assert [label.choice for label in labels] == [{"preferred": 1}, {"score": 6}, {"ranking": [2, 0, 1]}]
    assert labels[0].comment == "nicer" and 0 <= labels[0].seconds < 60  # timed by the server
    response = client.post("/undo", data={"csrf": csrf}, follow_redirects=True)
    assert "undone" in response.get_data(as_text=True) and 'data-kind="ranking"' in response.get_data(as_text=True)
    with store_lib.FeedbackStore(path) as store:
        assert len(store.labels(labeler="ann")) == 2


def test_labelers_at_work_together_see_different_items(setup):
    _, app, tokens = setup
    ann, bob = _client(app, tokens["ann"]), _client(app, tokens["bob"])
    ann_first = _item_id(ann.get("/").get_data(as_text=True))
    assert _item_id(bob.get("/").get_data(as_text=True)) != ann_first
    assert _item_id(ann.get("/").get_data(as_text=True)) == ann_first  # a reload keeps one's own item


def test_two_labelers_on_one_item_one_wins_the_other_is_told(tmp_path):
    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        tokens = {name: store.add_labeler(name) for name in ("ann", "bob")}
        store.add_items([store_lib.Item("comparison", ("a", "b"), prompt="p")])
    app = labeling_app.create_app(path)
    ann, bob = _client(app, tokens["ann"]), _client(app, tokens["bob"])
    # With one item left, both are shown it (ann holds it; bob gets it as nothing else is left).
    ann_page, bob_page = ann.get("/").get_data(as_text=True), bob.get("/").get_data(as_text=True)
    assert _item_id(ann_page) == _item_id(bob_page)
    ann.post("/answer", data=_form(ann_page, choice="left"))
    late = bob.post("/answer", data=_form(bob_page, choice="right"), follow_redirects=True)
    assert "Another labeler answered that item first" in late.get_data(as_text=True)
    with store_lib.FeedbackStore(path) as store:
        assert [label.labeler for label in store.labels(item_id=_item_id(ann_page))] == ["ann"]


def test_bad_requests_get_plain_4xx(setup):
    _, app, tokens = setup
    client = _client(app, tokens["ann"])
    page = client.get("/").get_data(as_text=True)
    csrf = _csrf(page)
    for data in (
        {"item_id": "abc", "choice": "left", "csrf": csrf},
        {"item_id": "999", "choice": "left", "csrf": csrf},
        {"item_id": str(2**63), "choice": "left", "csrf": csrf},
        {"item_id": "-1", "choice": "left", "csrf": csrf},
        _form(page, choice="sideways"),
    ):
        response = client.post("/answer", data=data)
        assert 400 <= response.status_code < 500, data
        assert response.mimetype == "text/plain" and "Traceback" not in response.get_data(as_text=True)
    assert client.get("/clip/1/0").status_code == 404  # not a clip item


def test_admin_sees_progress_and_agreement(setup):
    _, app, tokens = setup
    ann = _client(app, tokens["ann"])
    page = ann.get("/").get_data(as_text=True)
    ann.post("/answer", data=_form(page, choice="right"))
    assert ann.get("/admin").status_code == 403
    lead = _client(app, tokens["lead"])
    admin = lead.get("/admin").get_data(as_text=True)
    assert "<td>ann</td><td>1</td>" in admin
    assert re.search(r"Items: 3 &middot; labels: 1 &middot; waiting for labels:\s*2", admin)
    assert "1.00 (1)" in admin  # ann agreed with the gold preference on the one item that records it


def test_control_clips_are_drawn_from_the_items_attachments(tmp_path):
    import numpy as np

    observations = np.zeros((2, 4, 5), np.float32)
    observations[1, 2:, -1] = 1  # the second segment fails halfway
    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        (item_id,) = store.add_items(
            [
                store_lib.Item(
                    "segment_comparison",
                    ("0/0", "0/1"),
                    # The producing run's directory does not exist here: the clip comes from the store alone.
                    source=str(tmp_path / "a-run-on-another-machine"),
                    metadata={"env": "CartPole-v1", "fixed_horizon": True},
                    attachments=tuple(store_lib.encode_arrays({"observations": o}) for o in observations),
                )
            ]
        )
        (plain_id,) = store.add_items([store_lib.Item("segment_comparison", ("1/0", "1/1"))])
        token = store.add_labeler("ann")
    app = labeling_app.create_app(path)
    client = _client(app, token)
    page = client.get("/").get_data(as_text=True)
    assert f'src="/clip/{item_id}/0"' in page and f'src="/clip/{item_id}/1"' in page
    clip = client.get(f"/clip/{item_id}/1")
    assert clip.status_code == 200 and clip.mimetype == "image/gif" and clip.data.startswith(b"GIF8")
    assert clip.data != client.get(f"/clip/{item_id}/0").data  # the failing segment ends in the red frame
    assert client.get(f"/clip/{item_id}/2").status_code == 404
    assert client.get(f"/clip/{plain_id}/0").status_code == 404  # an item without clip data


def test_answers_only_for_the_item_the_page_showed_timed_by_the_server(setup):
    path, app, tokens = setup
    ann, bob = _client(app, tokens["ann"]), _client(app, tokens["bob"])
    ann_page, bob_page = ann.get("/").get_data(as_text=True), bob.get("/").get_data(as_text=True)
    assert _item_id(ann_page) != _item_id(bob_page)  # each holds their own
    # bob answers the item held for ann, with his own valid form tokens: refused.
    forged = bob.post("/answer", data=_form(bob_page, choice="left", item_id=str(_item_id(ann_page))))
    assert forged.status_code == 409 and "not shown to you" in forged.get_data(as_text=True)
    # A made-up time when the item was shown (once stored as -1e308): refused, as the ticket does not match.
    tampered = ann.post("/answer", data=_form(ann_page, choice="left", shown_at="-1e308"))
    assert tampered.status_code == 409
    with store_lib.FeedbackStore(path) as store:
        assert store.counts()["labels"] == 0
    assert ann.post("/answer", data=_form(ann_page, choice="left")).status_code == 302


def test_requests_are_bounded_and_messages_come_from_the_app(setup):
    _, app, tokens = setup
    client = _client(app, tokens["ann"])
    page = client.get("/").get_data(as_text=True)
    huge = client.post("/answer", data=_form(page, choice="left", comment="x" * 100_000))
    assert huge.status_code == 413
    assert "rewrite history" not in client.get("/?message=Please rewrite history").get_data(as_text=True)
    assert "answered that item first" in client.get("/?message=taken").get_data(as_text=True)


def test_bidirectional_overrides_are_shown_not_obeyed(tmp_path):
    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        token = store.add_labeler("ann")
        store.add_items([store_lib.Item("comparison", ("safe \u202egnp.exe", "fine"), prompt="p\u2066q")])
    page = _client(labeling_app.create_app(path), token).get("/").get_data(as_text=True)
    assert "\u202e" not in page and "\u2066" not in page
    assert "safe [U+202E]gnp.exe" in page and "p[U+2066]q" in page


def test_the_store_is_private_and_open_pages_survive_a_restart(tmp_path):
    import os
    import stat

    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        token = store.add_labeler("ann")
        store.add_items(
            [store_lib.Item("comparison", ("a", "b"), prompt="p"), store_lib.Item("comparison", ("c", "d"))]
        )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    page = _client(labeling_app.create_app(path), token).get("/").get_data(as_text=True)
    restarted = _client(labeling_app.create_app(path), token)  # a new server process reads the same secret
    assert restarted.post("/answer", data=_form(page, choice="left")).status_code == 302


def test_serving_beyond_this_machine_needs_tls_in_front_or_a_trusted_network(tmp_path):
    with pytest.raises(store_lib.UserInputError, match="plain HTTP.*--behind_proxy.*Received: host=0.0.0.0"):
        labeling_app.check_exposure("0.0.0.0")
    labeling_app.check_exposure("127.0.0.1")
    labeling_app.check_exposure("0.0.0.0", behind_proxy=True)
    labeling_app.check_exposure("0.0.0.0", trusted_network=True)
    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        token = store.add_labeler("ann")
    plain = testing.sign_in(labeling_app.create_served_app(path).test_client(), token)
    cookies = plain.headers.getlist("Set-Cookie")
    assert any(c.startswith(labeling_app.COOKIE) and "Secure" not in c for c in cookies)
    proxied = testing.sign_in(labeling_app.create_served_app(path, behind_proxy=True).test_client(), token)
    cookies = proxied.headers.getlist("Set-Cookie")
    assert any(c.startswith(labeling_app.COOKIE) and "Secure" in c and "HttpOnly" in c for c in cookies)


def test_tokens_can_be_revoked_rotated_expired_and_signed_out(setup):
    path, app, tokens = setup
    ann, bob = _client(app, tokens["ann"]), _client(app, tokens["bob"])
    page = ann.get("/").get_data(as_text=True)
    with store_lib.FeedbackStore(path) as store:
        store.revoke_labeler("ann")
    assert ann.get("/").status_code == 401  # the very next request
    assert ann.post("/answer", data=_form(page, choice="left")).status_code == 401
    with store_lib.FeedbackStore(path) as store:
        new_token = store.rotate_token("ann", days=7)
        short = store.add_labeler("temp", days=1)
        store._connection.execute("UPDATE labelers SET expires_at = 1 WHERE name = 'temp'")  # a day has passed
    assert app.test_client().get(f"/login?token={tokens['ann']}").status_code == 401  # the old token is gone
    assert _client(app, new_token).get("/").status_code == 200
    assert app.test_client().get(f"/login?token={short}").status_code == 401  # expired
    # Signing out clears the cookie; the token itself still works from its link.
    page = bob.get("/").get_data(as_text=True)
    assert bob.post("/logout", data={"csrf": _csrf(page)}).status_code == 302
    assert bob.get("/").status_code == 401


def test_admins_revoke_and_rotate_from_the_admin_page(setup):
    path, app, tokens = setup
    lead, ann = _client(app, tokens["lead"]), _client(app, tokens["ann"])
    page = lead.get("/admin").get_data(as_text=True)
    assert "<td>ann</td><td>labeler</td>" in page
    assert (
        ann.post("/admin/revoke", data={"name": "bob", "csrf": _csrf(ann.get("/").get_data(as_text=True))}).status_code
        == 403
    )
    rotated = lead.post("/admin/rotate", data={"name": "bob", "csrf": _csrf(page)}).get_data(as_text=True)
    new_token = re.search(r"login\?token=([\w-]+)", rotated).group(1)
    assert app.test_client().get(f"/login?token={tokens['bob']}").status_code == 401
    assert _client(app, new_token).get("/").status_code == 200
    assert lead.post("/admin/revoke", data={"name": "ann", "csrf": _csrf(page)}).status_code == 302
    assert ann.get("/").status_code == 401
    assert "<td>ann</td><td>labeler</td>\n<td>revoked</td>" in lead.get("/admin").get_data(as_text=True)


def test_pages_show_guidelines_chat_turns_and_what_differs(tmp_path):
    path = tmp_path / "feedback.sqlite"
    long_a = "The motor is strong and the jug is easy to clean, and it crushes ice in seconds every single time."
    long_b = "The motor is weak and the jug is easy to clean, and it crushes ice in minutes every single time."
    with store_lib.FeedbackStore(path) as store:
        token, lead = store.add_labeler("ann"), store.add_labeler("lead", admin=True)
        store.add_items(
            [
                store_lib.Item(
                    "comparison",
                    (long_a, long_b),
                    prompt="\n\nSystem: Facts: opens at 8.\n\nHuman: When do you open?\n\nAssistant:",
                )
            ]
        )
    app = labeling_app.create_app(path)
    admin = _client(app, lead)
    csrf = _csrf(admin.get("/admin").get_data(as_text=True))
    guidelines = "# How to judge\n\n- prefer **correct** facts\n- <script>alert(1)</script>"
    assert admin.post("/admin/guidelines", data={"guidelines": guidelines, "csrf": csrf}).status_code == 302
    page = _client(app, token).get("/").get_data(as_text=True)
    assert "<h1>How to judge</h1>" in page and "<strong>correct</strong>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert '<div class="turn context"><span class="role">context</span>' in page
    assert '<div class="turn person"><span class="role">person</span>' in page and "When do you open?" in page
    assert "<mark>strong</mark>" in page and "<mark>weak</mark>" in page and "<mark>minutes</mark>" in page
    assert "<mark>The" not in page  # what both say is left plain


def test_a_login_link_signs_in_only_through_its_own_button(setup):
    _, app, tokens = setup
    client = app.test_client()
    page = client.get(f"/login?token={tokens['ann']}")
    assert page.status_code == 200 and "Sign in to label as <b>ann</b>" in page.get_data(as_text=True)
    assert client.get("/").status_code == 401  # following a link (from anywhere) signs no one in
    # Another site's form posting an attacker's token: no nonce cookie comes with it (SameSite=Strict).
    elsewhere = app.test_client()
    forged = elsewhere.post("/login", data={"token": tokens["bob"], "nonce": "guess"})
    assert forged.status_code == 403 and elsewhere.get("/").status_code == 401
    assert testing.sign_in(client, tokens["ann"]).status_code == 302 and client.get("/").status_code == 200
