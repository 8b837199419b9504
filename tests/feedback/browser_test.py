"""The labeling app in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright, against
the app served by waitress. Nothing is downloaded: Playwright is pointed at the system browser.

Set RLHF_TF_SCREENSHOTS=DIR to keep screenshots of the comparison and admin pages.
"""

import os
import shutil
import threading

import pytest

from rlhf_tf.feedback import labeling_app
from rlhf_tf.feedback import store as store_lib

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium package (`apt-get install chromium`; .ci/run installs it)"
)

HOSTILE = "<script>alert(1)</script> and <img src=x onerror=alert(2)>"


@pytest.fixture()
def server(tmp_path):
    import waitress

    path = tmp_path / "feedback.sqlite"
    with store_lib.FeedbackStore(path) as store:
        tokens = {"ann": store.add_labeler("ann"), "lead": store.add_labeler("lead", admin=True)}
        items = [store_lib.Item("comparison", (HOSTILE, "A plain, friendly answer."), prompt="Greet me", priority=9)]
        items += [
            store_lib.Item("comparison", (f"response {i}a", f"response {i}b"), prompt=f"prompt {i}", priority=8 - i)
            for i in range(6)
        ]
        store.add_items(items)
    server = waitress.create_server(labeling_app.create_app(path), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", path, tokens
    server.close()


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def _screenshot(page, name):
    directory = os.environ.get("RLHF_TF_SCREENSHOTS")
    if directory:
        os.makedirs(directory, exist_ok=True)
        page.screenshot(path=os.path.join(directory, name), full_page=True)


def test_a_labeler_answers_with_the_keyboard_and_undoes(server, browser):
    url, path, tokens = server
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{url}/login?token={tokens['ann']}")
    with page.expect_navigation():
        page.click("#sign-in")
    # The hostile response shows as text; nothing of it runs or loads.
    assert HOSTILE in page.inner_text("#candidate-0")
    assert page.locator("#candidate-0 img, #candidate-0 script").count() == 0
    _screenshot(page, "comparison.png")
    for key in ("2", "1", "t", "ArrowRight", "s"):
        remaining = page.inner_text("#remaining")
        with page.expect_navigation():
            page.keyboard.press(key)
        assert page.inner_text("#remaining") != remaining or key == "s"
    with page.expect_navigation():
        page.keyboard.press("u")
    assert "undone" in page.inner_text("#message")
    assert dialogs == []
    with store_lib.FeedbackStore(path) as store:
        choices = [label.choice for label in store.labels(labeler="ann")]
    # Five answers, the last (a skip) undone.
    assert choices == [{"preferred": 1}, {"preferred": 0}, {"tie": True}, {"preferred": 1}]
    admin = browser.new_page()
    admin.goto(f"{url}/login?token={tokens['lead']}")
    with admin.expect_navigation():
        admin.click("#sign-in")
    admin.goto(f"{url}/admin")
    assert "ann" in admin.inner_text("#labelers")
    _screenshot(admin, "admin.png")


def test_the_browser_without_a_token_is_refused(server, browser):
    url, _, _ = server
    page = browser.new_page()
    response = page.goto(f"{url}/")
    assert response.status == 401 and "access token" in page.inner_text("main")
    assert page.goto(f"{url}/admin").status == 401
