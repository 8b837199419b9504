import json
import subprocess
import sys

import numpy as np
import pytest

from rlhf_tf.agents.recommend import bandits
from rlhf_tf.agents.recommend import run as recommend_run
from rlhf_tf.envs import recommend


def _config(tmp_path, **changes):
    settings = dict(
        output_dir=str(tmp_path / "run"),
        num_labels=600,
        rounds=2,
        eval_visits=400,
        bandit=bandits.BanditHyperparameters(steps=200),
        seed=5,
    )
    settings.update(changes)
    return recommend_run.RecommendConfig(**settings)


def test_a_bandit_on_a_reward_learned_from_slate_choices_beats_popularity_and_random_and_resumes(tmp_path):
    config = _config(tmp_path)
    metrics = recommend_run.train_recommender(config)
    # On this population popularity is no better than random (it draws clicks, not satisfaction); an untrained
    # agent ranks at random (random lists: -2.37 +- 0.03 on these 400 visits). Measured here: learned -2.11, random
    # -2.37, popularity -2.47, oracle -1.84.
    assert metrics["learned/satisfaction"] > metrics["random/satisfaction"] + 0.15
    assert metrics["learned/satisfaction"] > metrics["popularity/satisfaction"] + 0.15
    assert metrics["oracle/satisfaction"] > metrics["random/satisfaction"] + 0.2
    assert metrics["learned/share_of_oracle_gain"] > 0.3  # 0.49 measured at this small budget
    assert metrics["labels"] == 600
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["seed"] == 5 and recorded["feedback"] == "slates" and recorded["bandit"]["steps"] == 200
    assert 0.0 < metrics["learned/coverage"] <= 1.0 and 0.0 < metrics["learned/diversity"] <= 1.0
    # Off-policy estimates from the behaviour's logs bracket each policy's online click-through and rating. The
    # policies' ratings differ (learned 3.27, popularity 2.89 online), and the behaviour's own mean rating (2.95: what
    # an estimator that ignored the propensities would report) is far from the learned policy's.
    # 95% intervals miss now and then (here the oracle's click-through sits just inside all three), so the test asks
    # what a sound estimator keeps on any machine's numerics: most intervals hold, and most policies have 2 of 3.
    table = (tmp_path / "run" / "off_policy" / "table.md").read_text()
    covered = {}
    for signal in ("click", "rating"):
        for policy in ("learned", "oracle", "popularity"):
            assert f"| {signal} | {policy} |" in table
            prefix = f"off_policy/{signal}/{policy}/"
            covered[signal, policy] = sum(metrics[f"{prefix}{e}_covers_online"] for e in recommend_run.ESTIMATORS)
            for estimator in recommend_run.ESTIMATORS:
                width = metrics[f"{prefix}{estimator}_high"] - metrics[f"{prefix}{estimator}_low"]
                assert 0.0 < width < (0.2 if signal == "click" else 0.8), (prefix, estimator, width)
    assert sum(covered.values()) >= 14 and sum(count >= 2 for count in covered.values()) >= 5, table  # 18 and 6 here
    logs = [json.loads(line) for line in (tmp_path / "run" / "off_policy" / "logs.jsonl").read_text().splitlines()]
    assert len(logs) == 10000 and all(0.0 < log["propensity"] <= 1.0 for log in logs)
    logged_mean = np.mean([log["rating"] for log in logs])
    assert abs(logged_mean - metrics["off_policy/rating/learned/online"]) > 0.2, table
    assert (tmp_path / "run" / "plots" / "rounds.png").stat().st_size > 0
    assert (tmp_path / "run" / "plots" / "off_policy.png").stat().st_size > 0
    # A rerun of a finished run trains nothing again: the same rounds, the same labels and agent.
    again = recommend_run.train_recommender(config)
    assert again["learned/satisfaction"] == metrics["learned/satisfaction"]
    # The exported policy recommends in a process that imports TensorFlow alone.
    world = recommend.make_world(0)
    observations = recommend.draw_visits(world, 3, np.random.default_rng(0)).observations(world)
    script = f"""
import collections, json, sys
import numpy as np
import tensorflow as tf
policy = tf.saved_model.load({config.output_dir + "/export/policy"!r})
observations = {{k: tf.constant(np.array(v, np.float32)) for k, v in json.loads(sys.stdin.read()).items()}}
# PolicySaver's `action` takes a TimeStep; any namedtuple of that name and fields matches it.
TimeStep = collections.namedtuple("TimeStep", ["step_type", "reward", "discount", "observation"])
step = TimeStep(tf.zeros([3], tf.int32), tf.zeros([3]), tf.ones([3]), observations)
print(json.dumps(policy.action(step, ()).action.numpy().tolist()))
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("rlhf_tf", "tf_agents", "keras_hub")))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps({k: v.tolist() for k, v in observations.items()}),
        capture_output=True,
        text=True,
        check=True,
    )
    actions_line, modules_line = done.stdout.strip().splitlines()[-2:]
    actions = json.loads(actions_line)
    assert len(actions) == 3 and all(0 <= a < 20 for a in actions)
    assert json.loads(modules_line) == []


def test_bad_settings_are_refused_with_the_field(tmp_path):
    with pytest.raises(Exception, match="feedback"):
        _config(tmp_path, feedback="likes")
    with pytest.raises(Exception, match="slate_size"):
        _config(tmp_path, slate_size=30)
