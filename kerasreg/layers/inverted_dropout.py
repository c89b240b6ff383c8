"""`InvertedDropout`: inverted dropout, optionally Monte-Carlo at inference."""

from __future__ import annotations

import keras

from kerasreg import utils
from kerasreg.ops.dropout import inverted_dropout


def _check_noise_shape(noise_shape):
    if noise_shape is None:
        return None
    expected = "a tuple of positive integers or None"
    if isinstance(noise_shape, str):
        raise utils.invalid_value("noise_shape", expected, noise_shape)
    try:
        noise_shape = tuple(noise_shape)
    except TypeError:
        raise utils.invalid_value("noise_shape", expected, noise_shape) from None
    for d in noise_shape:
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d <= 0):
            raise utils.invalid_value("noise_shape", expected, noise_shape)
    return noise_shape


@utils.register
class InvertedDropout(keras.layers.Layer):
    """Inverted dropout, with an optional Monte-Carlo mode kept at inference.

    During training each unit is zeroed with probability `rate` and the kept
    units are scaled by `1 / (1 - rate)` (the "inverted" implementation of
    the cs231n notes on dropout: the expected output equals the input, so
    nothing changes at test time, where the layer is the identity).

    With `mc=True` the layer keeps dropping at inference too (Monte-Carlo
    dropout, Gal & Ghahramani 2016): `model.predict` becomes a random draw
    from an ensemble, and `kerasreg.mc_predict` averages many draws into a
    mean prediction and a standard deviation (an uncertainty estimate).
    Unlike calling the model with `training=True`, this leaves every other
    layer, notably `BatchNormalization`, in inference mode.

    Args:
        rate: float in `[0, 1)`, probability of dropping a unit.
            Defaults to `0.5`.
        noise_shape: shape of the binary mask, broadcast against the input;
            `None` entries take the input's dimension, e.g.
            `(None, 1, 1, None)` drops whole feature maps. Defaults to `None`
            (the input's shape).
        seed: integer seed of the masks. Defaults to `None`.
        mc: whether to keep dropping at inference (Monte-Carlo dropout).
            Defaults to `False`.

    Call arguments:
        inputs: input tensor, of any shape.
        training: Python boolean, whether the layer runs in training mode.
            With `mc=True` the layer drops whatever its value.
            Defaults to `None`.

    Input shape:
        Arbitrary.

    Output shape:
        Same as the input shape.

    Example:

    >>> layer = InvertedDropout(0.5, seed=0)
    >>> x = np.ones((2, 4), "float32")
    >>> sorted(set(np.asarray(layer(x, training=True)).ravel().tolist()))
    [0.0, 2.0]
    >>> bool(np.all(np.asarray(layer(x)) == 1.0))
    True

    Reference:
        - [Srivastava et al., 2014](https://jmlr.org/papers/v15/srivastava14a.html),
          "Dropout: A Simple Way to Prevent Neural Networks from Overfitting".
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142),
          "Dropout as a Bayesian Approximation" (Monte-Carlo dropout).
    """

    def __init__(self, rate=0.5, noise_shape=None, seed=None, mc=False, **kwargs):
        super().__init__(**kwargs)
        self.rate = utils.check_rate("rate", rate)
        self.noise_shape = _check_noise_shape(noise_shape)
        seed = utils.check_seed("seed", seed)
        self.seed = seed
        self.mc = utils.check_bool("mc", mc)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        if (training or self.mc) and self.rate > 0:
            return inverted_dropout(
                inputs, self.rate, self.noise_shape, seed=self.seed_generator
            )
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = {
            "rate": self.rate,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
            "mc": self.mc,
        }
        return {**base_config, **config}
