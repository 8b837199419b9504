"""`--labeler=web`: a control run waits for people answering in the labeling app, and with a person who answers as
the simulated teacher would, the run is the simulated run, label for label."""

from rlhf_tf import testing
from rlhf_tf.agents.control import run as control
from rlhf_tf.feedback import store as store_lib


def test_web_labels_drive_the_run_exactly_like_the_simulated_teacher(tmp_path):
    settings = dict(num_labels=30, env_steps=8 * 64 * 6, eval_episodes=3, progress=False, label_timeout=120)
    simulated = control.train_control(control.ControlConfig(output_dir=str(tmp_path / "simulated"), **settings))

    store_path = str(tmp_path / "shared.sqlite")
    with testing.person_answering_by_gold(store_path):
        web = control.train_control(
            control.ControlConfig(output_dir=str(tmp_path / "web"), labeler="web", store=store_path, **settings)
        )
    with store_lib.FeedbackStore(store_path) as store:
        labels = store.labels()
    assert len(labels) == 30 and {label.labeler for label in labels} == {"ann"}
    for name in ("control/labels_used", "control/reward_loss", "control/agent_loss", "control/true_return_mean"):
        assert web[name] == simulated[name], name
