"""Critics for actor-critic RL: a scalar value per token position, on the policy's trunk or on its own trunk."""

import math

import keras


class ValueHead(keras.layers.Layer):
    """A scalar value per position from a transformer's hidden states.

    Initialised N(0, 1/sqrt(hidden_dim + 1)) with zero bias, like the reward head, so early values are small.

    Args:
      hidden_dim: the width of the hidden states it reads.

    Example:
    ```python
    head = ValueHead(hidden_dim=128)
    values = head(hidden)  # [batch, length, 128] -> [batch, length]
    ```
    """

    def __init__(self, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.dense = keras.layers.Dense(
            1,
            kernel_initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(hidden_dim + 1)),
            bias_initializer="zeros",
            name="value",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, hidden):
        return keras.ops.squeeze(self.dense(hidden), -1)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim})
        return config
