"""`rlhf-tf control`: train a TF-Agents agent in a gym environment from preferences, demonstrations or the true
reward.

    rlhf-tf control --env=CartPole-v1 --agent=ppo --num_labels=1000 --output_dir=runs/cartpole
    rlhf-tf control --env=Pendulum-v1 --agent=sac --num_labels=1500 --output_dir=runs/pendulum
    rlhf-tf control --env=CartPole-v1 --reward=true --record_demonstrations=20 --output_dir=runs/expert
    rlhf-tf control --env=CartPole-v1 --reward=adversarial \
        --demonstrations=runs/expert/demonstrations.jsonl --output_dir=runs/irl

Preference runs ask a simulated teacher (the true reward, B-Pref) about segment pairs through the run's feedback
store (`feedback.sqlite`), train a reward ensemble on the answers and the agent on that reward; training episodes
have a fixed horizon (one absorbing failed state) so that episode ends leak nothing. Writes the run directory:
metrics.json (control/true_return_mean over --eval_episodes of the final greedy policy, control/labels_used, ...),
plots/learning_curves.png, segments/, tb/, ckpt/ (reruns resume), export/policy (TF-Agents PolicySaver).
Every field: `rlhf_tf.agents.control.run.ControlConfig`.
"""

from absl import flags

from rlhf_tf.bin import common, runner

_ENV = flags.DEFINE_string("env", "CartPole-v1", "ControlConfig.env: a gym id.")
_AGENT = flags.DEFINE_enum("agent", "ppo", ["ppo", "reinforce", "dqn", "sac"], "ControlConfig.agent.")
_REWARD = flags.DEFINE_enum(
    "reward", "preferences", ["preferences", "true", "adversarial", "constant"], "ControlConfig.reward."
)
_NUM_LABELS = flags.DEFINE_integer("num_labels", 1000, "ControlConfig.num_labels: the label budget.")
_LABELER = flags.DEFINE_enum(
    "labeler", "simulated", ["simulated", "web"], "ControlConfig.labeler: web = people in `rlhf-tf label-server`."
)
_LABEL_TIMEOUT = flags.DEFINE_float("label_timeout", None, "ControlConfig.label_timeout (seconds, --labeler=web).")
_STORE = flags.DEFINE_string("store", "", "ControlConfig.store: a shared feedback store ('' keeps the run's own).")
_PAIRS = flags.DEFINE_enum(
    "pair_selection", "disagreement", ["disagreement", "random"], "ControlConfig.pair_selection."
)
_SEGMENT_LENGTH = flags.DEFINE_integer("segment_length", None, "ControlConfig.segment_length.")
_HORIZON = flags.DEFINE_integer("horizon", None, "ControlConfig.horizon: steps per training episode.")
_FIXED_HORIZON = flags.DEFINE_bool("fixed_horizon", True, "ControlConfig.fixed_horizon.")
_EVAL_HORIZON = flags.DEFINE_integer("eval_horizon", None, "ControlConfig.eval_horizon.")
_ENV_STEPS = flags.DEFINE_integer("env_steps", None, "ControlConfig.env_steps: training environment steps.")
_ENSEMBLE = flags.DEFINE_integer("ensemble_size", None, "ControlConfig.ensemble_size.")
_LABEL_UNTIL = flags.DEFINE_float("label_until", None, "ControlConfig.label_until.")
_PENALTY = flags.DEFINE_float(
    "reward_uncertainty_penalty", None, "ControlConfig.reward_uncertainty_penalty: mean minus this many member stds."
)
_INITIAL_LABELS = flags.DEFINE_float("initial_label_fraction", None, "ControlConfig.initial_label_fraction.")
_MISTAKES = flags.DEFINE_float("teacher_mistake_rate", None, "ControlConfig.teacher_mistake_rate.")
_BETA = flags.DEFINE_float("teacher_beta", None, "ControlConfig.teacher_beta (inf: a rational teacher).")
_DEMONSTRATIONS = flags.DEFINE_string("demonstrations", "", "ControlConfig.demonstrations: episodes (JSONL).")
_BC_STEPS = flags.DEFINE_integer("bc_steps", None, "ControlConfig.bc_steps: behavioural cloning before RL.")
_RECORD = flags.DEFINE_integer("record_demonstrations", 0, "ControlConfig.record_demonstrations.")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", None, "ControlConfig.eval_episodes.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", None, "ControlConfig.eval_every (iterations).")


def main(argv):
    del argv
    common.prepare()
    from rlhf_tf import training
    from rlhf_tf.agents.control import run as control

    changes = dict(
        env=_ENV.value,
        agent=_AGENT.value,
        reward=_REWARD.value,
        num_labels=_NUM_LABELS.value,
        labeler=_LABELER.value,
        store=_STORE.value,
        pair_selection=_PAIRS.value,
        fixed_horizon=_FIXED_HORIZON.value,
        demonstrations=_DEMONSTRATIONS.value,
        record_demonstrations=_RECORD.value,
        seed=common.SEED.value,
        deterministic=common.DETERMINISTIC.value,
        progress=common.PROGRESS.value,
    )
    changes.update(
        common.given(
            (
                ("segment_length", _SEGMENT_LENGTH),
                ("horizon", _HORIZON),
                ("eval_horizon", _EVAL_HORIZON),
                ("env_steps", _ENV_STEPS),
                ("ensemble_size", _ENSEMBLE),
                ("label_until", _LABEL_UNTIL),
                ("reward_uncertainty_penalty", _PENALTY),
                ("initial_label_fraction", _INITIAL_LABELS),
                ("teacher_mistake_rate", _MISTAKES),
                ("teacher_beta", _BETA),
                ("bc_steps", _BC_STEPS),
                ("eval_episodes", _EVAL_EPISODES),
                ("eval_every", _EVAL_EVERY),
                ("label_timeout", _LABEL_TIMEOUT),
            )
        )
    )
    config = control.ControlConfig(output_dir=common.OUTPUT_DIR.value, **changes)
    metrics = control.train_control(config)
    common.print_metrics(metrics, ("control/",))
    if config.record_demonstrations:
        print(f"demonstrations: {training.RunPaths(config.output_dir).demonstrations_path}")


def run(argv=None):
    runner.run_binary(main, argv)


if __name__ == "__main__":
    run()
