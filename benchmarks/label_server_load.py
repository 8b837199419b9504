"""Load on the labeling app: 20 scripted labelers answer 50 items each, at once, against one server whose store
holds 50,000 pending items.

    python benchmarks/label_server_load.py [--labelers=20 --items_each=50 --threads=8 --pending=50000]

Targets (issue: people at scale): p95 page load under 300 ms, p95 answer under 200 ms, admin page p95 under
300 ms (an admin loads it every half second during the run), every answer stored, none twice.

The real thing end to end: `rlhf-tf label-server` (waitress) in its own process over a fresh SQLite store, and one
Python thread per labeler speaking HTTP to it (login link, page, form with its CSRF token, redirect), as a browser
would. Checks, from the store afterwards: every answer a labeler was told was recorded is in the store, none twice,
no item over its wanted label count. Prints the p50/p95/p99 response times of page loads, answers and admin page
loads (one round trip each, measured by the client) and the answers per second. The labelers answer the
`labelers x items_each` items of highest priority; the rest of the `--pending` items wait below them, as a large
queue does.
"""

import argparse
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import numpy as np


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _labeler(url, token, wanted, timings, outcomes, errors):
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies), _NoRedirect)

    def call(path, data=None, timed=True):
        started = time.perf_counter()
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            response = opener.open(url + path, data=body, timeout=60)
            status, text, location = response.status, response.read().decode(), ""
        except urllib.error.HTTPError as error:  # 3xx (redirects are not followed) and 4xx/5xx
            status, text, location = error.code, error.read().decode(), error.headers.get("Location", "")
        if timed:
            timings["post" if data is not None else "get"].append(time.perf_counter() - started)
        return status, text, location

    _, link, _ = call(f"/login?token={token}", timed=False)
    nonce = re.search(r'name="nonce" value="([^"]+)"', link).group(1)
    call("/login", {"token": token, "nonce": nonce}, timed=False)
    answered = 0
    while answered < wanted:
        status, page, _ = call("/")
        found = re.search(r'name="item_id" value="(\d+)"', page)
        if status != 200 or not found:
            errors.append(f"page {status}: {page[:120]!r}")
            return
        item_id = int(found.group(1))
        hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page))
        form = {name: hidden[name] for name in ("csrf", "shown_at", "ticket")}
        status, _, location = call("/answer", {"item_id": item_id, "choice": "left", **form})
        if status != 302:
            errors.append(f"answer {status}")
            return
        if "message=" in location:  # someone else answered it first: the app says so, nothing was recorded
            outcomes.append((item_id, False))
            continue
        outcomes.append((item_id, True))
        answered += 1


def _admin(url, token, timings, errors, running):
    """An admin loading the admin page every half second while the labelers work."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    link = opener.open(f"{url}/login?token={token}", timeout=60).read().decode()
    nonce = re.search(r'name="nonce" value="([^"]+)"', link).group(1)
    opener.open(f"{url}/login", data=urllib.parse.urlencode({"token": token, "nonce": nonce}).encode(), timeout=60)
    while running.is_set():
        started = time.perf_counter()
        try:
            response = opener.open(url + "/admin", timeout=60)
            response.read()
            timings.append(time.perf_counter() - started)
        except urllib.error.HTTPError as error:
            errors.append(f"admin {error.code}")
            return
        time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelers", type=int, default=20)
    parser.add_argument("--items_each", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8, help="server threads")
    parser.add_argument("--pending", type=int, default=50_000, help="pending items in the store at the start")
    args = parser.parse_args()

    import rlhf_tf  # noqa: F401
    from rlhf_tf.feedback import store as store_lib

    workdir = tempfile.mkdtemp(prefix="label_load_")
    path = os.path.join(workdir, "feedback.sqlite")
    total = args.labelers * args.items_each
    with store_lib.FeedbackStore(path) as store:
        tokens = [store.add_labeler(f"labeler{i:02d}") for i in range(args.labelers)]
        admin_token = store.add_labeler("admin", admin=True)
        store.add_items(
            [
                store_lib.Item("comparison", (f"response {i} a", f"response {i} b"), prompt=f"prompt {i}", priority=1)
                for i in range(total)
            ]
        )
        waiting = max(0, args.pending - total)
        for start in range(0, waiting, 10_000):
            store.add_items(
                [
                    store_lib.Item("comparison", (f"later {i} a", f"later {i} b"), prompt=f"later prompt {i}")
                    for i in range(start, min(waiting, start + 10_000))
                ]
            )
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlhf_tf.bin.label_server",
            f"--store={path}",
            f"--port={port}",
            f"--threads={args.threads}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/static/app.css", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        timings = {"get": [], "post": [], "admin": []}
        outcomes, errors = [], []
        workers = [
            threading.Thread(target=_labeler, args=(url, token, args.items_each, timings, outcomes, errors))
            for token in tokens
        ]
        running = threading.Event()
        running.set()
        admin = threading.Thread(target=_admin, args=(url, admin_token, timings["admin"], errors, running))
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        admin.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        running.clear()
        admin.join()
    finally:
        server.terminate()
        server.wait(timeout=30)

    with store_lib.FeedbackStore(path) as store:
        labels = store.labels()
    recorded = [item for item, ok in outcomes if ok]
    per_item = np.bincount([label.item_id for label in labels], minlength=total + 1)
    print(f"labelers {args.labelers} x {args.items_each} items, server threads {args.threads}, {elapsed:.1f} s")
    print(
        f"answers the app confirmed: {len(recorded)}; labels in the store: {len(labels)}; "
        f"told 'answered first by someone else': {len(outcomes) - len(recorded)}; errors: {len(errors)}"
    )
    print(
        f"lost (confirmed, not in the store): {len(set(recorded) - {label.item_id for label in labels})}; "
        f"items with more than one label: {int((per_item > 1).sum())}"
    )
    p95 = {}
    for kind, values in timings.items():
        milliseconds = np.array(values) * 1000
        name = {"get": "page load", "post": "answer   ", "admin": "admin    "}[kind]
        p95[kind] = np.percentile(milliseconds, 95)
        print(
            f"{name}: n={len(values)} p50 {np.percentile(milliseconds, 50):.1f} ms"
            f"  p95 {p95[kind]:.1f} ms  p99 {np.percentile(milliseconds, 99):.1f} ms"
        )
    print(
        f"throughput: {len(recorded) / elapsed:.1f} answers/s; pending items at the start: {max(args.pending, total)}"
    )
    fast = p95["get"] < 300 and p95["post"] < 200 and p95["admin"] < 300
    print(f"target: p95 page < 300 ms, answer < 200 ms, admin < 300 ms -> {'PASS' if fast else 'FAIL'}")
    ok = not errors and len(labels) == len(recorded) == total and (per_item <= 1).all()
    print("PASS" if ok else "FAIL")
    if errors:
        print("first errors:", errors[:3])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
