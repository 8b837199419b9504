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


def test_asked_segment_pairs_carry_their_clips_in_the_store(tmp_path):
    import numpy as np

    from rlhf_tf.agents.control import preference_loop

    observations = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    segments = {"observations": observations, "actions": np.zeros((2, 4), np.int64), "rewards": np.ones((2, 4))}
    segments["rewards"][1, 2:] = 0
    rounds = preference_loop.LabelRounds(str(tmp_path / "run"), env_name="CartPole-v1")
    (item_id,) = rounds.ask(segments, np.array([[1, 0]]), np.array([0.2]), round_number=0)
    for side, index in ((0, 1), (1, 0)):
        clip = store_lib.decode_arrays(rounds.store.attachment(item_id, side))
        assert set(clip) == {"observations"}  # what people see: never the true rewards
        np.testing.assert_array_equal(clip["observations"], observations[index])
    assert rounds.store.item(item_id).metadata["gold_preferred"] == 1  # the true returns prefer the first segment
    rounds.close()
