"""`rlhf-tf recommend`: a TF-Agents contextual bandit trained online on a reward learned from people's clicks,
ratings or choices between two lists, judged on the simulated population's hidden satisfaction.

    rlhf-tf recommend --feedback=slates --num_labels=2000 --output_dir=runs/recommend
    rlhf-tf recommend --feedback=clicks --click_model=naive --output_dir=runs/recommend_naive_clicks
    rlhf-tf recommend --feedback=ratings --agent=lin-ucb --output_dir=runs/recommend_ratings
    rlhf-tf recommend --feedback_file=answers.jsonl --off_policy_file=logs.jsonl --skip_bad_records
    rlhf-tf recommend --labeler=web --store=runs/feedback.sqlite   # people compare lists in `rlhf-tf label-server`

Writes the run directory: metrics.json (learned/, oracle/, popularity/ and random/ satisfaction, click_through,
coverage, diversity and regret; learned/share_of_oracle_gain; the reward model's held-out measures; off_policy/
IPS, SNIPS and doubly robust estimates beside online values), state.json (every round's figures),
labels/round-N.jsonl (the answers, in the format of --feedback_file), off_policy/{logs.jsonl,table.md}, ckpt/ (reruns
resume after the last finished round) and export/policy (TF-Agents PolicySaver). File formats:
`rlhf_tf.agents.recommend.logged`. Every field: `rlhf_tf.agents.recommend.run.RecommendConfig`.
"""

import os

from absl import flags

from rlhf_tf.bin import common, runner

_FEEDBACK = flags.DEFINE_enum("feedback", "slates", ["slates", "ratings", "clicks"], "RecommendConfig.feedback.")
_CLICK_MODEL = flags.DEFINE_enum(
    "click_model", "examination", ["examination", "naive"], "RecommendConfig.click_model (--feedback=clicks)."
)
_AGENT = flags.DEFINE_enum(
    "agent",
    "neural-epsilon-greedy",
    ["neural-epsilon-greedy", "neural-lin-ucb", "lin-ucb", "lin-ts"],
    "RecommendConfig.agent: a TF-Agents bandit over per-arm features.",
)
_NUM_LABELS = flags.DEFINE_integer("num_labels", 2000, "RecommendConfig.num_labels: the label budget.")
_ROUNDS = flags.DEFINE_integer("rounds", None, "RecommendConfig.rounds: label / refit / train rounds.")
_STEPS = flags.DEFINE_integer("bandit_steps", None, "BanditHyperparameters.steps: online driver steps in all.")
_EVAL_VISITS = flags.DEFINE_integer("eval_visits", None, "RecommendConfig.eval_visits.")
_ORACLE = flags.DEFINE_bool("oracle", True, "RecommendConfig.oracle: also train the agent on the true utility.")
_WORLD_SEED = flags.DEFINE_integer("world_seed", 0, "RecommendConfig.world_seed: the catalogue and population.")
_LABELER = flags.DEFINE_enum(
    "labeler", "simulated", ["simulated", "web"], "RecommendConfig.labeler: web = people in `rlhf-tf label-server`."
)
_STORE = flags.DEFINE_string("store", "", "RecommendConfig.store: a shared feedback store ('' keeps the run's own).")
_LABEL_TIMEOUT = flags.DEFINE_float("label_timeout", None, "RecommendConfig.label_timeout (seconds, --labeler=web).")
_OFF_POLICY_LOGS = flags.DEFINE_integer(
    "off_policy_logs", None, "RecommendConfig.off_policy_logs: simulated behaviour logs to estimate from (0: none)."
)
_FEEDBACK_FILE = flags.DEFINE_string(
    "feedback_file", "", "RecommendConfig.feedback_file: people's answers (JSONL) for round 0 instead of simulated."
)
_OFF_POLICY_FILE = flags.DEFINE_string(
    "off_policy_file", "", "RecommendConfig.off_policy_file: a logging policy's logs (JSONL, with propensities)."
)


def main(argv):
    del argv
    common.prepare()
    import dataclasses

    from rlhf_tf.agents.recommend import bandits
    from rlhf_tf.agents.recommend import run as recommend

    changes = common.given(
        (
            ("rounds", _ROUNDS),
            ("eval_visits", _EVAL_VISITS),
            ("off_policy_logs", _OFF_POLICY_LOGS),
            ("label_timeout", _LABEL_TIMEOUT),
        )
    )
    if _STEPS.value is not None:
        changes["bandit"] = dataclasses.replace(bandits.BanditHyperparameters(), steps=_STEPS.value)
    config = recommend.RecommendConfig(
        output_dir=common.OUTPUT_DIR.value,
        feedback=_FEEDBACK.value,
        click_model=_CLICK_MODEL.value,
        agent=_AGENT.value,
        num_labels=_NUM_LABELS.value,
        oracle=_ORACLE.value,
        world_seed=_WORLD_SEED.value,
        feedback_file=_FEEDBACK_FILE.value,
        off_policy_file=_OFF_POLICY_FILE.value,
        skip_bad_records=common.SKIP_BAD_RECORDS.value,
        labeler=_LABELER.value,
        store=_STORE.value,
        seed=common.SEED.value,
        **changes,
    )
    metrics = recommend.train_recommender(config)
    common.print_metrics(
        metrics, ("learned/", "oracle/satisfaction", "popularity/satisfaction", "random/satisfaction", "rejected/")
    )
    table = os.path.join(config.output_dir, "off_policy", "table.md")
    if os.path.exists(table):
        with open(table, encoding="utf-8") as handle:
            print(f"Off-policy estimates ({table}):\n{handle.read()}")


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
