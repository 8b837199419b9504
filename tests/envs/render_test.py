import io

import numpy as np
from PIL import Image

from rlhf_tf.envs import render


def _image(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)


def test_frames_draw_the_state_and_the_failed_state():
    upright, tilted, failed = render.segment_frames(
        "CartPole-v1", [[0, 0, 0, 0, 0], [0, 0, 0.3, 0, 0], [0, 0, 0, 0, 1]]
    )
    first, second, third = _image(upright), _image(tilted), _image(failed)
    assert first.shape == (render.SIZE[1], render.SIZE[0], 3)
    assert np.abs(first - second).sum() > 0  # the pole's angle shows
    red = third[..., 0] > third[..., 1] + 20
    assert red.mean() > 0.9  # the absorbing failed state is a red frame, whatever the environment


def test_every_environment_draws_and_animates():
    for name, size in (("Pendulum-v1", 3), ("Acrobot-v1", 6), ("MountainCar-v0", 2), ("Unknown-v0", 4)):
        observations = np.random.default_rng(0).normal(size=(4, size))
        frames = render.segment_frames(name, observations, fixed_horizon=False)
        assert len(frames) == 4 and all(frame.startswith(b"\x89PNG") for frame in frames)
        animation = Image.open(io.BytesIO(render.segment_animation(name, observations, fixed_horizon=False)))
        assert animation.format == "GIF" and animation.n_frames == 4
