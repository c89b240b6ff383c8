"""`DropPath`: stochastic depth, one decision per example."""

from __future__ import annotations

import keras

from kerasreg import utils
from kerasreg.ops.drop_path import drop_path


@utils.register
class DropPath(keras.layers.Layer):
    """Drops a whole residual branch per example (stochastic depth).

    Put it on the residual branch of a block, `x + DropPath(rate)(f(x))`.
    During training each example keeps its branch with probability
    `1 - rate`, scaled by `1 / (1 - rate)`, or loses it entirely (for that
    example the block is the identity); at inference the layer is the
    identity. This is the per-sample formulation used by timm's `DropPath`
    and keras-cv's `DropPath` (the inverted convention); Huang et al. drop a
    block for the whole mini-batch and scale the branch by its survival
    probability at test time, which is the same model in expectation.

    Per-block rates usually grow linearly with depth, e.g.
    `rate_l = rate_max * l / L` for block `l` of `L`.

    Args:
        rate: float in `[0, 1)`, probability of dropping the branch of an
            example. Defaults to `0.1`.
        seed: integer seed of the per-example decisions. Defaults to `None`.

    Call arguments:
        inputs: the residual branch, a tensor of shape `(batch, ...)`.
        training: Python boolean, whether to drop. Defaults to `None`.

    Input shape:
        Arbitrary, with the batch on the first axis.

    Output shape:
        Same as the input shape.

    Example:

    >>> inputs = keras.Input((8, 8, 16))
    >>> branch = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    >>> outputs = inputs + DropPath(0.2, seed=0)(branch)
    >>> keras.Model(inputs, outputs).output_shape
    (None, 8, 8, 16)

    Reference:
        - [Huang et al., 2016](https://arxiv.org/abs/1603.09382),
          "Deep Networks with Stochastic Depth".
    """

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = utils.check_rate("rate", rate)
        seed = utils.check_seed("seed", seed)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        return drop_path(inputs, self.rate, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        return {**base_config, "rate": self.rate, "seed": self.seed}
