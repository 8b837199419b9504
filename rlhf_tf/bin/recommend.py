"""`rlhf-tf recommend`: a TF-Agents contextual bandit trained online on a reward learned from people's clicks,
ratings or choices between two lists, judged on the simulated population's hidden satisfaction.

    rlhf-tf recommend --feedback=slates --num_labels=2000 --output_dir=runs/recommend
    rlhf-tf recommend --feedback=clicks --click_model=naive --output_dir=runs/recommend_naive_clicks
    rlhf-tf recommend --feedback=ratings --agent=lin-ucb --output_dir=runs/recommend_ratings

Writes the run directory: metrics.json (learned/, oracle/, popularity/ and random/ satisfaction, click_through,
coverage, diversity and regret; learned/share_of_oracle_gain; the reward model's held-out measures), state.json
(every round's figures), labels/round-N.npz, ckpt/ (reruns resume after the last finished round) and
export/policy (TF-Agents PolicySaver). Every field: `rlhf_tf.agents.recommend.run.RecommendConfig`.
"""

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


def main(argv):
    del argv
    common.prepare()
    import dataclasses

    from rlhf_tf.agents.recommend import bandits
    from rlhf_tf.agents.recommend import run as recommend

    changes = common.given((("rounds", _ROUNDS), ("eval_visits", _EVAL_VISITS)))
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
        seed=common.SEED.value,
        **changes,
    )
    metrics = recommend.train_recommender(config)
    common.print_metrics(metrics, ("learned/", "oracle/satisfaction", "popularity/satisfaction", "random/satisfaction"))


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
