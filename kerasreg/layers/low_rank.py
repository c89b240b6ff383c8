"""`LowRankDense`: a dense layer factorised through a linear bottleneck."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from kerasreg import utils


@dataclasses.dataclass(frozen=True)
class LowRankReport:
    """What `LowRankDense.from_dense` gained and lost.

    Attributes:
        rank: the rank kept.
        full_rank: `min(input_dim, units)`, the rank of a general kernel.
        dense_params: parameters of the original Dense layer (bias included).
        low_rank_params: parameters of the `LowRankDense` (bias included).
        parameter_saving: `1 - low_rank_params / dense_params`, the fraction
            of parameters saved (negative when the factorisation is larger).
        reconstruction_error: `||W - U V||_F`, the Frobenius norm of the
            kernel's approximation error.
        relative_error: `||W - U V||_F / ||W||_F` (0 for an all-zero kernel).
        singular_values: all singular values of `W`, largest first.
    """

    rank: int
    full_rank: int
    dense_params: int
    low_rank_params: int
    parameter_saving: float
    reconstruction_error: float
    relative_error: float
    singular_values: tuple[float, ...]

    def __str__(self) -> str:
        return (
            f"rank {self.rank}/{self.full_rank}: {self.low_rank_params} params "
            f"instead of {self.dense_params} "
            f"({100 * self.parameter_saving:.1f}% saved), relative kernel "
            f"error {self.relative_error:.3g}"
        )


@utils.register
class LowRankDense(keras.layers.Layer):
    """A dense layer whose kernel is the product of two thin matrices.

    Computes `activation(x @ U @ V + b)` with `U` of shape
    `(input_dim, rank)` and `V` of shape `(rank, units)`: the kernel
    `W = U V` has rank at most `rank`. This is the classic linear
    bottleneck: a `Dense(rank)` without activation followed by a
    `Dense(units)`, in one layer. It has `rank * (input_dim + units)`
    kernel parameters instead of `input_dim * units`, and can represent
    strictly fewer functions than a full `Dense`, which is the point: fewer
    effective parameters, less overfitting.

    `LowRankDense.from_dense(dense, rank)` compresses a trained `Dense` by
    truncated SVD (the best rank-`rank` approximation of its kernel in
    Frobenius norm, Eckart-Young) and attaches a `LowRankReport` as
    `layer.compression_report` (not serialized).

    Args:
        units: positive integer, dimensionality of the output space.
        rank: positive integer, the bottleneck width; at most
            `min(input_dim, units)` (checked against `units` here and against
            the input when the layer is built).
        activation: activation function. Defaults to `None`.
        use_bias: whether to add a bias. Defaults to `True`.
        kernel_initializer: initializer of `U` and `V`.
            Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.
        kernel_regularizer: regularizer applied to `U` and to `V`.
            Defaults to `None`.
        bias_regularizer: regularizer of the bias. Defaults to `None`.
        kernel_constraint: constraint on `U` and `V`. Defaults to `None`.
        bias_constraint: constraint on the bias. Defaults to `None`.
        **kwargs: base layer arguments (`name`, `dtype`,
            `activity_regularizer`, ...).

    Call arguments:
        inputs: input tensor.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Example:

    >>> dense = keras.layers.Dense(32)
    >>> x = np.random.default_rng(0).normal(size=(4, 64)).astype("float32")
    >>> _ = dense(x)
    >>> low = LowRankDense.from_dense(dense, rank=8)
    >>> low.compression_report.low_rank_params
    800
    >>> full = LowRankDense.from_dense(dense, rank=32)
    >>> bool(np.allclose(full(x), dense(x), atol=1e-4))
    True

    Reference:
        - [Sainath et al., 2013](https://doi.org/10.1109/ICASSP.2013.6638949),
          "Low-rank matrix factorization for deep neural network training
          with high-dimensional output targets".
    """

    def __init__(
        self,
        units,
        rank,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = utils.check_int("units", units, low=1)
        self.rank = utils.check_int("rank", rank, low=1, high=self.units)
        self.activation = keras.activations.get(activation)
        self.use_bias = utils.check_bool("use_bias", use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.InputSpec(min_ndim=2)
        self.supports_masking = True
        self.compression_report = None

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise utils.invalid_value(
                "input_shape", "a known last dimension", tuple(input_shape)
            )
        limit = min(int(input_dim), self.units)
        if self.rank > limit:
            raise utils.invalid_value(
                "rank",
                f"an integer in [1, min(input_dim, units)] = [1, {limit}] "
                f"(input_dim={input_dim}, units={self.units})",
                self.rank,
            )
        self.u = self.add_weight(
            name="u",
            shape=(input_dim, self.rank),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.v = self.add_weight(
            name="v",
            shape=(self.rank, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: input_dim})
        self.built = True

    @property
    def kernel(self):
        """The equivalent full kernel `U V`, of shape `(input_dim, units)`."""
        return ops.matmul(self.u, self.v)

    def call(self, inputs):
        x = ops.matmul(ops.matmul(inputs, self.u), self.v)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        base_config = super().get_config()
        config = {
            "units": self.units,
            "rank": self.rank,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }
        return {**base_config, **config}

    @classmethod
    def from_dense(cls, layer, rank, **kwargs):
        """Compresses a built `keras.layers.Dense` by truncated SVD.

        With `W = P diag(s) Q^T` the SVD of the Dense kernel, the new layer
        gets `U = P_r diag(sqrt(s_r))` and `V = diag(sqrt(s_r)) Q_r^T` (the
        singular values split evenly between the factors), the Dense bias,
        activation, initializers, regularizers, constraints and dtype
        policy. With `rank = min(input_dim, units)` it reproduces the Dense
        outputs up to float rounding.

        Args:
            layer: a built `keras.layers.Dense` (LoRA, if enabled, merged).
            rank: the rank to keep, in `[1, min(input_dim, units)]`.
            **kwargs: other `LowRankDense` arguments (e.g. `name`).

        Returns:
            A built `LowRankDense` whose `compression_report` attribute is a
            `LowRankReport` (parameter saving, reconstruction error,
            singular values).
        """
        if not isinstance(layer, keras.layers.Dense):
            raise utils.invalid_value("layer", "a `keras.layers.Dense`", layer)
        if not layer.built:
            raise ValueError(
                "Invalid value received for argument `layer`. Expected a built "
                f"`keras.layers.Dense`. Received: layer={layer.name!r} (not built)"
            )
        mode = getattr(layer, "quantization_mode", None)
        if mode is not None:
            raise ValueError(
                "Invalid value received for argument `layer`. Expected a float "
                "`keras.layers.Dense` (factorize before quantizing). Received: "
                f"layer={layer.name!r} quantized with mode {mode!r}"
            )
        kernel = np.asarray(ops.convert_to_numpy(layer.kernel), dtype="float64")
        if not np.all(np.isfinite(kernel)):
            raise ValueError(
                "Invalid value received for argument `layer`. Expected a Dense "
                "layer with a finite kernel. Received: "
                f"layer={layer.name!r} whose kernel holds "
                f"{int(np.sum(~np.isfinite(kernel)))} NaN/inf values"
            )
        in_dim, units = kernel.shape
        full_rank = min(in_dim, units)
        rank = utils.check_int("rank", rank, low=1, high=full_rank)
        p, s, qt = np.linalg.svd(kernel, full_matrices=False)
        root = np.sqrt(s[:rank])
        u = p[:, :rank] * root[None, :]
        v = root[:, None] * qt[:rank]
        dense_config = layer.get_config()
        config = {
            "units": units,
            "rank": rank,
            "activation": dense_config["activation"],
            "use_bias": layer.use_bias,
            "kernel_initializer": dense_config["kernel_initializer"],
            "bias_initializer": dense_config["bias_initializer"],
            "kernel_regularizer": dense_config["kernel_regularizer"],
            "bias_regularizer": dense_config["bias_regularizer"],
            "kernel_constraint": dense_config["kernel_constraint"],
            "bias_constraint": dense_config["bias_constraint"],
            "dtype": dense_config.get("dtype"),
            **kwargs,
        }
        new = cls.from_config(config)
        new.build((None, in_dim))
        new.u.assign(u.astype(new.u.dtype))
        new.v.assign(v.astype(new.v.dtype))
        bias_params = 0
        if layer.use_bias:
            new.bias.assign(ops.convert_to_numpy(layer.bias))
            bias_params = units
        error = float(np.sqrt(np.sum(s[rank:] ** 2)))
        norm = float(np.sqrt(np.sum(s**2)))
        dense_params = in_dim * units + bias_params
        low_params = rank * (in_dim + units) + bias_params
        new.compression_report = LowRankReport(
            rank=rank,
            full_rank=full_rank,
            dense_params=dense_params,
            low_rank_params=low_params,
            parameter_saving=1.0 - low_params / dense_params,
            reconstruction_error=error,
            relative_error=error / norm if norm > 0 else 0.0,
            singular_values=tuple(float(x) for x in s),
        )
        return new
