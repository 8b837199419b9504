"""The scalar head every reward model ends in."""

import math

import keras


def scalar_head(width, name):
    """Dense(1) initialised N(0, 1/sqrt(width + 1)) with zero bias."""
    return keras.layers.Dense(
        1,
        kernel_initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(width + 1)),
        bias_initializer="zeros",
        name=name,
    )
