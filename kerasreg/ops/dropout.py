"""Inverted dropout, as taught: scale the kept units by `1 / keep` at training
time so that nothing changes at test time.

    mask = (uniform(shape) >= rate) / (1 - rate)
    out  = x * mask            # training (or Monte-Carlo inference)
    out  = x                   # ordinary inference

The random draw itself is `keras.random.dropout`, which implements exactly this
on every backend; this module adds the `noise_shape` resolution (`None`
entries take the input's dimension, as in `keras.layers.Dropout`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


def _resolve_noise_shape(inputs, noise_shape: Sequence[int | None] | None):
    """Replaces the `None` entries of `noise_shape` by the input's dimensions.

    Returns `None` when `noise_shape` is `None` (a mask the input's shape).
    """
    if noise_shape is None:
        return None
    shape = ops.shape(inputs)
    return tuple(shape[i] if d is None else d for i, d in enumerate(noise_shape))


def inverted_dropout(
    inputs, rate: float, noise_shape: Sequence[int | None] | None = None, seed=None
):
    """Zeroes units with probability `rate` and scales the rest by `1/(1-rate)`.

    Args:
        inputs: input tensor.
        rate: drop probability, in `[0, 1)`.
        noise_shape: shape of the binary mask, broadcast against `inputs`;
            `None` entries take the input's dimension (e.g.
            `(None, 1, 1, None)` drops whole feature maps). `None` for a mask
            of the input's shape.
        seed: a `keras.random.SeedGenerator` or an integer.

    Returns:
        A tensor shaped like `inputs` whose expectation equals `inputs`.
    """
    if rate == 0:
        return inputs
    return keras.random.dropout(
        inputs, rate, noise_shape=_resolve_noise_shape(inputs, noise_shape), seed=seed
    )
