"""DropConnect: dropping weights instead of activations (Wan et al., 2013).

Conventions. A DropConnect layer computes `u = x @ (W * M / keep) + b` during
training, with `M` a Bernoulli(`keep`) mask over the *weights* and
`keep = 1 - rate`. The division by `keep` is the inverted convention of
inverted dropout: `E[W * M / keep] = W`, so inference can use the plain kernel
(`inference="mean"`).

The paper's inference (its Algorithm 2) instead matches the first two moments
of the pre-activation under the mask distribution and averages the activation
over Gaussian draws. With the inverted convention, for one output unit

    E[u]   = x @ W + b
    Var[u] = sum_i Var(M_i / keep) * W_i**2 * x_i**2
           = rate / (1 - rate) * (x * x) @ (W * W)

(`Var(M / keep) = keep (1 - keep) / keep**2 = rate / keep`). The same holds for
a convolution, replacing `@` by the convolution. `_gaussian_moment_sampling`
draws `u ~ N(E[u], Var[u])`, applies the activation and averages.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

# Two mask entries are cut from each float32 uniform draw (see below).
_HALF_BITS = 11
_LEVELS = 1 << _HALF_BITS  # 2048


def _realised_rate(rate: float) -> float:
    """The drop probability `drop_connect_mask` actually realises for `rate`.

    `rate` rounded to a multiple of 1/2048 (|error| <= 1/4096), unless that
    is more than 1% off `rate` (rates below about 0.05), in which case
    `rate` itself: those masks take one uniform draw per entry.
    """
    if rate == 0:
        return 0.0
    q = round(rate * _LEVELS) / _LEVELS
    if q == 0 or abs(q - rate) > 0.01 * rate or q >= 1:
        return float(rate)
    return q


def drop_connect_mask(
    shape,
    rate: float,
    seed=None,
    dtype: str = "float32",
):
    """A Bernoulli keep-mask already rescaled by the inverse keep probability.

    Random numbers are the cost of DropConnect (one per weight, against one
    per activation for dropout), so two mask entries are cut from each
    float32 uniform draw: its 23 random mantissa bits hold two independent
    11-bit uniform integers `k` in `[0, 2048)`, and an entry is dropped when
    `k < round(rate * 2048)`. The realised drop probability is then
    `_realised_rate(rate)` (within 1/4096 of `rate`), and kept entries are
    scaled by `1 / (1 - _realised_rate(rate))`, so `E[mask] = 1` exactly.
    Rates the 1/2048 grid would miss by more than 1% (below about 0.05) use
    one full-precision uniform draw per entry instead.

    Args:
        shape: shape of the mask (the last axis must be static).
        rate: probability of dropping each entry, in `[0, 1)`.
        seed: a `keras.random.SeedGenerator` or an integer.
        dtype: dtype of the mask.

    Returns:
        A tensor whose entries are `0` with probability `_realised_rate(rate)`
        and `1 / (1 - _realised_rate(rate))` otherwise.
    """
    shape = tuple(shape)
    p = _realised_rate(rate)
    scale = ops.cast(1.0 / (1.0 - p), dtype)
    if round(p * _LEVELS) != p * _LEVELS:  # off the 1/2048 grid: exact path
        noise = keras.random.uniform(shape, seed=seed, dtype="float32")
        return ops.cast(noise >= rate, dtype) * scale
    last = int(shape[-1])
    half = (last + 1) // 2
    u = keras.random.uniform(shape[:-1] + (half,), seed=seed, dtype="float32")
    # u = m / 2**23 with m a uniform 23-bit integer: take its top 11 bits and
    # the next 11 bits (all exact in float32).
    high = ops.floor(u * _LEVELS)
    low = ops.floor(u * _LEVELS**2) - high * _LEVELS
    k = ops.concatenate([high, low], axis=-1)
    if 2 * half != last:
        k = k[..., :last]
    threshold = round(p * _LEVELS)
    return ops.cast(k >= threshold, dtype) * scale


def drop_connect_kernel(kernel, rate: float, seed=None):
    """Multiplies a kernel by one rescaled Bernoulli keep-mask (`mask="batch"`).

    Args:
        kernel: the weight tensor, of any shape.
        rate: fraction of weights to drop, in `[0, 1)`.
        seed: a `keras.random.SeedGenerator` or an integer.

    Returns:
        `kernel * M / (1 - rate)` with `M ~ Bernoulli(1 - rate)` elementwise.
    """
    if rate == 0:
        return kernel
    mask = drop_connect_mask(ops.shape(kernel), rate, seed, dtype=kernel.dtype)
    return kernel * mask


def drop_connect_matmul_per_example(inputs, kernel, rate: float, seed=None):
    """`inputs @ kernel` with a fresh weight mask for every example.

    This is the paper's formulation (`mask="example"`): row `b` of the batch
    sees `kernel * M_b / (1 - rate)`. It is computed as one batched
    contraction over per-example masked kernels, so it costs a
    `(batch, in, out)` mask in memory and `batch` times the multiply-adds of a
    shared-mask matmul would in a naive loop, without any Python loop.

    Args:
        inputs: tensor of shape `(batch, ..., in)`.
        kernel: tensor of shape `(in, out)`.
        rate: fraction of weights to drop, in `[0, 1)`.
        seed: a `keras.random.SeedGenerator` or an integer.

    Returns:
        A tensor of shape `(batch, ..., out)`.
    """
    if rate == 0:
        return ops.matmul(inputs, kernel)
    in_dim, out_dim = kernel.shape
    shape = ops.shape(inputs)
    inner = 1  # not -1: an empty batch has no size to infer it from
    for dim in shape[1:-1]:
        inner = inner * dim
    batch = shape[0]
    flat = ops.reshape(inputs, (batch, inner, in_dim))
    mask = drop_connect_mask((batch, in_dim, out_dim), rate, seed, dtype=kernel.dtype)
    outputs = ops.einsum("bti,bio->bto", flat, mask * kernel[None, :, :])
    return ops.reshape(outputs, tuple(ops.shape(inputs)[:-1]) + (out_dim,))


def _drop_connect_variance(inputs, kernel, rate: float, linear: Callable):
    """Variance of a DropConnect pre-activation under the weight mask.

    Args:
        inputs: the layer input.
        kernel: the (unmasked) kernel.
        rate: the drop rate, in `[0, 1)`.
        linear: the linear map of the layer, `linear(inputs, kernel)`
            (a matmul for a dense layer, a convolution for a conv layer).

    Returns:
        `rate / (1 - rate) * linear(inputs**2, kernel**2)`, the per-unit
        variance of `linear(inputs, kernel * M / (1 - rate))`.
    """
    factor = rate / (1.0 - rate)
    return factor * linear(ops.square(inputs), ops.square(kernel))


def _gaussian_moment_sampling(
    mean,
    variance,
    activation: Callable | None = None,
    num_samples: int = 100,
    seed=None,
):
    """The paper's inference: `E[f(u)]` for `u ~ N(mean, variance)`.

    Draws `num_samples` Gaussian pre-activations per unit, applies
    `activation` to each and returns their average (Wan et al., 2013,
    Algorithm 2). Computed in float32 and cast back to `mean.dtype`.

    Args:
        mean: the expected pre-activation `E[u]` (bias included).
        variance: `Var[u]`, same shape as `mean`.
        activation: the layer's activation; `None` for linear.
        num_samples: number of Gaussian draws per unit.
        seed: a `keras.random.SeedGenerator` or an integer.

    Returns:
        A tensor shaped like `mean`.
    """
    dtype = mean.dtype
    mean32 = ops.cast(mean, "float32")
    std32 = ops.sqrt(ops.maximum(ops.cast(variance, "float32"), 0.0))
    shape = (num_samples,) + tuple(ops.shape(mean))
    eps = keras.random.normal(shape, seed=seed, dtype="float32")
    samples = mean32[None] + std32[None] * eps
    if activation is not None:
        samples = activation(samples)
    return ops.cast(ops.mean(samples, axis=0), dtype)
