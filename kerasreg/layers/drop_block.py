"""`DropBlock2D`: drops contiguous square regions of 2D feature maps."""

from __future__ import annotations

import keras

from kerasreg import utils
from kerasreg.ops.drop_block import drop_block_2d


def _check_block_size(block_size):
    expected = "a positive integer or a tuple of 2 positive integers"
    values = block_size if isinstance(block_size, (tuple, list)) else (block_size,)
    if len(values) not in (1, 2) or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values
    ):
        raise utils.invalid_value("block_size", expected, block_size)
    if len(values) == 1:
        return int(values[0])
    return (int(values[0]), int(values[1]))


@utils.register
class DropBlock2D(keras.layers.Layer):
    """DropBlock: drops contiguous blocks of every 2D feature map.

    Dropout on convolutional features is weak because neighbouring units are
    correlated: the network reads a dropped unit's information from its
    neighbours. DropBlock drops `block_size x block_size` squares instead.
    During training it follows the paper's Algorithm 1 exactly (see
    `kerasreg.ops.drop_block` for the full comparison with timm and keras-cv):

    - every (example, channel) feature map gets its own mask;
    - block centres are drawn with probability
      `gamma = rate / block_area * (H * W) / ((H - bh + 1) * (W - bw + 1))`,
      only where a whole block fits inside the map, and grown into blocks;
    - the kept units are rescaled by `count(M) / count_ones(M)` over the
      whole mask, so the activation mean is preserved at every step.

    The block is clipped to the feature map. At inference, and with
    `rate=0`, the layer is the identity. Rows and columns must be static.
    Inputs must be 4D; anything else raises a `ValueError` when the layer is
    built. The paper increases `rate` linearly from 0 during training.

    Args:
        rate: float in `[0, 1)`, the target fraction of dropped units
            (`1 - keep_prob` in the paper). Defaults to `0.1`.
        block_size: int or tuple of 2 ints, size of the dropped blocks.
            Defaults to `7`.
        data_format: `"channels_last"` or `"channels_first"`.
            Defaults to `keras.config.image_data_format()`.
        seed: integer seed of the masks. Defaults to `None`.

    Call arguments:
        inputs: 4D tensor.
        training: Python boolean, whether to drop. Defaults to `None`.

    Input shape:
        4D tensor `(batch, rows, cols, channels)` (`"channels_last"`) or
        `(batch, channels, rows, cols)` (`"channels_first"`).

    Output shape:
        Same as the input shape.

    Example:

    >>> layer = DropBlock2D(rate=0.2, block_size=3, seed=0)
    >>> x = np.ones((2, 16, 16, 4), "float32")
    >>> y = np.asarray(layer(x, training=True))
    >>> y.shape, bool(np.isclose(y.mean(), 1.0))
    ((2, 16, 16, 4), True)

    Reference:
        - [Ghiasi et al., 2018](https://arxiv.org/abs/1810.12890),
          "DropBlock: A regularization method for convolutional networks".
    """

    def __init__(self, rate=0.1, block_size=7, data_format=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = utils.check_rate("rate", rate)
        self.block_size = _check_block_size(block_size)
        if data_format is None:
            data_format = keras.config.image_data_format()
        self.data_format = utils.check_choice(
            "data_format", data_format, ("channels_last", "channels_first")
        )
        seed = utils.check_seed("seed", seed)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        # A check in `build`, not `keras.InputSpec(ndim=4)`: Keras checks a spec
        # only in `__call__` (not in a direct `build`), and its message cannot
        # name the expected layout.
        if len(input_shape) != 4:
            raise utils.invalid_value(
                "input_shape",
                "a 4D shape (batch, rows, cols, channels) for a 2D layer",
                tuple(input_shape),
            )
        spatial = (
            input_shape[1:3]
            if self.data_format == "channels_last"
            else (input_shape[2:4])
        )
        if any(d is None for d in spatial):
            raise utils.invalid_value(
                "input_shape", "static rows and cols", tuple(input_shape)
            )
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        return drop_block_2d(
            inputs,
            self.rate,
            self.block_size,
            seed=self.seed_generator,
            data_format=self.data_format,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = {
            "rate": self.rate,
            "block_size": self.block_size,
            "data_format": self.data_format,
            "seed": self.seed,
        }
        return {**base_config, **config}
