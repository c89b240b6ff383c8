"""Drop path (stochastic depth, per sample), Huang et al., 2016.

Applied to the residual branch `f(x)` of a block `x + f(x)`: during training
each *example* keeps its whole branch with probability `1 - rate`, rescaled by
`1 / (1 - rate)`, or drops it entirely (the block becomes the identity for that
example). The rescaling is the inverted convention (as timm's `drop_path` and
keras-cv's `DropPath`), so inference uses the branch unchanged; Huang et al.
instead multiply the branch by its survival probability at test time, which is
the same model in expectation.

Why "drop path" and not "DropConnect": DropConnect (Wan et al., 2013) drops
individual weights; this drops a whole residual path per example.
"""

from __future__ import annotations

import keras
from keras import ops


def drop_path(inputs, rate: float, seed=None):
    """Drops the whole tensor of each example with probability `rate`.

    Args:
        inputs: tensor of shape `(batch, ...)`, usually a residual branch.
        rate: probability of dropping an example's path, in `[0, 1)`.
        seed: a `keras.random.SeedGenerator` or an integer.

    Returns:
        `inputs * m / (1 - rate)` with one Bernoulli(`1 - rate`) `m` per
        example, broadcast over the other axes.
    """
    if rate == 0:
        return inputs
    ndim = len(inputs.shape)
    noise_shape = (ops.shape(inputs)[0],) + (1,) * (ndim - 1)
    return keras.random.dropout(inputs, rate, noise_shape=noise_shape, seed=seed)
