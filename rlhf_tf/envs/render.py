"""Segments as pictures: frames drawn from stored observations, for people comparing clips (the labeling app).

Frames are drawn from the observations a segment already holds, not by replaying the environment: a stored segment
can be shown years later, on a machine without the environment's renderer (gym 0.23's needs pygame and a display).
CartPole, Pendulum, Acrobot and MountainCar are drawn as the scene; any other environment as bars of its features.
The fixed horizon's absorbing failed state (last feature 1) is drawn as a red "failed" frame.
"""

import io
import math

import numpy as np

SIZE = (240, 160)
_BACKGROUND = (255, 255, 255)
_INK = (40, 40, 40)
_ACCENT = (200, 120, 40)


def _failed(draw):
    draw.rectangle([0, 0, SIZE[0] - 1, SIZE[1] - 1], fill=(250, 215, 215))
    draw.text((SIZE[0] // 2 - 20, SIZE[1] // 2 - 6), "failed", fill=(160, 0, 0))


def _cartpole(draw, observation):
    x, _, theta = observation[0], observation[1], observation[2]
    width, height = SIZE
    track_y = int(height * 0.75)
    draw.line([0, track_y, width, track_y], fill=_INK, width=1)
    centre = width / 2 + x / 2.4 * (width / 2 - 20)
    draw.rectangle([centre - 16, track_y - 10, centre + 16, track_y + 2], fill=_INK)
    length = height * 0.5
    tip = (centre + length * math.sin(theta), track_y - 10 - length * math.cos(theta))
    draw.line([centre, track_y - 10, *tip], fill=_ACCENT, width=5)


def _pendulum(draw, observation):
    cosine, sine = observation[0], observation[1]
    width, height = SIZE
    centre = (width / 2, height / 2)
    length = height * 0.4
    tip = (centre[0] + length * sine, centre[1] - length * cosine)  # angle 0 is upright
    draw.line([*centre, *tip], fill=_ACCENT, width=6)
    draw.ellipse([centre[0] - 3, centre[1] - 3, centre[0] + 3, centre[1] + 3], fill=_INK)


def _acrobot(draw, observation):
    first = math.atan2(observation[1], observation[0])
    second = math.atan2(observation[3], observation[2])
    width, height = SIZE
    link = height * 0.22
    origin = (width / 2, height / 2)
    elbow = (origin[0] + link * math.sin(first), origin[1] + link * math.cos(first))
    hand = (elbow[0] + link * math.sin(first + second), elbow[1] + link * math.cos(first + second))
    draw.line([0, origin[1] - link, width, origin[1] - link], fill=(160, 160, 160))  # the goal height
    draw.line([*origin, *elbow], fill=_INK, width=5)
    draw.line([*elbow, *hand], fill=_ACCENT, width=5)


def _mountain_car(draw, observation):
    width, height = SIZE
    positions = np.linspace(-1.2, 0.6, 60)

    def point(position):
        return ((position + 1.2) / 1.8 * (width - 20) + 10, height * 0.85 - (math.sin(3 * position) + 1) * height * 0.3)

    draw.line([point(p) for p in positions], fill=_INK, width=2)
    flag = point(0.5)
    draw.line([flag[0], flag[1], flag[0], flag[1] - 20], fill=(0, 120, 0), width=2)
    car = point(float(observation[0]))
    draw.ellipse([car[0] - 7, car[1] - 14, car[0] + 7, car[1]], fill=_ACCENT)


def _bars(draw, observation):
    width, height = SIZE
    count = max(1, len(observation))
    scale = max(1.0, float(np.max(np.abs(observation))))
    for index, value in enumerate(observation):
        left = 10 + index * (width - 20) / count
        right = left + (width - 20) / count - 4
        top = height / 2 - value / scale * height * 0.4
        draw.rectangle([left, min(top, height / 2), right, max(top, height / 2)], fill=_ACCENT)
    draw.line([0, height / 2, width, height / 2], fill=_INK)


_DRAWERS = {"CartPole": _cartpole, "Pendulum": _pendulum, "Acrobot": _acrobot, "MountainCar": _mountain_car}


def frame(env_name, observation, fixed_horizon=True):
    """One observation as a PIL image of `SIZE`."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", SIZE, _BACKGROUND)
    draw = ImageDraw.Draw(image)
    observation = np.asarray(observation, np.float64)
    if fixed_horizon:
        if observation[-1] >= 0.5:
            _failed(draw)
            return image
        observation = observation[:-1]
    drawer = _DRAWERS.get(env_name.split("-")[0], _bars)
    drawer(draw, observation)
    return image


def segment_frames(env_name, observations, fixed_horizon=True):
    """PNG bytes of each step of a segment ([steps, features] observations)."""
    frames = []
    for observation in observations:
        buffer = io.BytesIO()
        frame(env_name, observation, fixed_horizon).save(buffer, format="PNG")
        frames.append(buffer.getvalue())
    return frames


def segment_animation(env_name, observations, fixed_horizon=True, frame_ms=50):
    """The segment as one looping animated GIF (bytes): the clip a labeler watches."""
    images = [frame(env_name, observation, fixed_horizon) for observation in observations]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()
