"""People in the loop, end to end: `rlhf-tf control --labeler=web` on CartPole with a scripted browser answering in
the labeling app as the true-reward teacher would, next to the same run with `--labeler=simulated`.

    python benchmarks/web_labeling_cartpole.py [--num_labels=1000 --seed=0 --workdir=DIR]

Three processes, as a deployment would have them: `rlhf-tf label-server` over a shared store, `rlhf-tf control
--labeler=web` putting segment pairs into that store and waiting for answers, and headless Chromium (Debian's
package, driven by Playwright) logged in as a labeler, looking at the two clips and pressing 1 / 2 / t by the true
returns' verdict recorded with each item. Then the simulated run with the same seed. Prints both runs' final true
return, labels used and wall time, and the browser's answer count and p95 answer round trip.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _control(output_dir, seed, num_labels, extra):
    return [
        shutil.which("rlhf-tf") or "rlhf-tf",
        "control",
        "--env=CartPole-v1",
        "--agent=ppo",
        f"--num_labels={num_labels}",
        f"--seed={seed}",
        "--progress=false",
        f"--output_dir={output_dir}",
        *extra,
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_labels", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="")
    args = parser.parse_args()

    import numpy as np
    from playwright.sync_api import sync_playwright

    import rlhf_tf  # noqa: F401
    from rlhf_tf.feedback import store as store_lib

    workdir = args.workdir or tempfile.mkdtemp(prefix="web_cartpole_")
    store_path = os.path.join(workdir, "shared.sqlite")
    with store_lib.FeedbackStore(store_path) as store:
        token = store.add_labeler("browser")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rlhf_tf.bin.label_server", f"--store={store_path}", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    web_dir = os.path.join(workdir, "web")
    log = open(os.path.join(workdir, "web.log"), "w")
    started = time.perf_counter()
    run = subprocess.Popen(
        _control(web_dir, args.seed, args.num_labels, ["--labeler=web", f"--store={store_path}"]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    answers, round_trips = 0, []
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            for _ in range(100):
                try:
                    page.goto(f"http://127.0.0.1:{port}/login?token={token}")
                    with page.expect_navigation():
                        page.click("#sign-in")
                    break
                except Exception:  # the server is still starting
                    time.sleep(0.2)
            with store_lib.FeedbackStore(store_path) as store:
                while run.poll() is None:
                    found = re.search(r'name="item_id" value="(\d+)"', page.content())
                    if not found:
                        time.sleep(0.2)
                        page.goto(f"http://127.0.0.1:{port}/")
                        continue
                    if answers == 0:
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=os.path.join(workdir, "clip_comparison.png"), full_page=True)
                    gold = store.item(int(found.group(1))).metadata["gold_preferred"]
                    key = "t" if gold is None else ("1", "2")[gold]
                    clock = time.perf_counter()
                    with page.expect_navigation():
                        page.keyboard.press(key)
                    round_trips.append(time.perf_counter() - clock)
                    answers += 1
            browser.close()
    finally:
        run.wait()
        server.terminate()
        server.wait(timeout=30)
        log.close()
    web_seconds = time.perf_counter() - started

    simulated_dir = os.path.join(workdir, "simulated")
    started = time.perf_counter()
    subprocess.run(_control(simulated_dir, args.seed, args.num_labels, []), check=True, capture_output=True)
    simulated_seconds = time.perf_counter() - started

    def metrics(directory):
        with open(os.path.join(directory, "metrics.json")) as handle:
            return json.load(handle)

    web, simulated = metrics(web_dir), metrics(simulated_dir)
    with store_lib.FeedbackStore(store_path) as store:
        labelers = sorted({label.labeler for label in store.labels()})
    milliseconds = np.array(round_trips) * 1000
    print(f"workdir: {workdir}")
    print(f"browser answers: {answers} (labelers in the store: {labelers})")
    print(
        f"answer round trip: p50 {np.percentile(milliseconds, 50):.0f} ms, p95 {np.percentile(milliseconds, 95):.0f} ms"
    )
    for name, result, seconds in (("web", web, web_seconds), ("simulated", simulated, simulated_seconds)):
        print(
            f"{name:>9}: true return {result['control/true_return_mean']:.1f}"
            f" (min {result['control/true_return_min']:.0f}), labels used {result['control/labels_used']:.0f},"
            f" reward accuracy {result['control/reward_accuracy']:.3f}, wall {seconds:.0f} s"
        )
    same = all(web[key] == simulated[key] for key in ("control/true_return_mean", "control/labels_used"))
    print("same return and labels as the simulated run" if same else "DIFFERENT from the simulated run")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
