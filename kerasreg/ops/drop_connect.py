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
a convolution, replacing `@` by the convolution. `gaussian_moment_sampling`
draws `u ~ N(E[u], Var[u])`, applies the activation and averages.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops


def drop_connect_mask(
    shape,
    rate: float,
    seed=None,
    dtype: str = "float32",
):
    """A Bernoulli keep-mask already rescaled by `1 / (1 - rate)`.

    Args:
        shape: shape of the mask.
        rate: probability of dropping each entry, in `[0, 1)`.
        seed: a `keras.random.SeedGenerator` or an integer.
        dtype: dtype of the mask.

    Returns:
        A tensor whose entries are `0` with probability `rate` and
        `1 / (1 - rate)` otherwise.
    """
    keep = 1.0 - rate
    noise = keras.random.uniform(shape, seed=seed, dtype="float32")
    return ops.cast(noise >= rate, dtype) * ops.cast(1.0 / keep, dtype)


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
    batch = ops.shape(inputs)[0]
    flat = ops.reshape(inputs, (batch, -1, in_dim))
    mask = drop_connect_mask((batch, in_dim, out_dim), rate, seed, dtype=kernel.dtype)
    outputs = ops.einsum("bti,bio->bto", flat, mask * kernel[None, :, :])
    return ops.reshape(outputs, tuple(ops.shape(inputs)[:-1]) + (out_dim,))


def drop_connect_variance(inputs, kernel, rate: float, linear: Callable):
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


def gaussian_moment_sampling(
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
