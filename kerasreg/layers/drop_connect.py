"""DropConnect layers: `DropConnectDense` and `DropConnectConv2D`.

DropConnect (Wan et al., 2013) drops *connections* (individual weights)
instead of activations. Both layers subclass the Keras layer they generalise
(`keras.layers.Dense`, `keras.layers.Conv2D`), so every Keras argument
(initializers, regularizers, constraints, `use_bias`, ...) works unchanged,
and with `rate=0` they compute exactly what the parent computes. The maths
lives in `kerasreg.ops.drop_connect`.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasreg import utils
from kerasreg.ops import drop_connect as dc_ops

_INFERENCE_MODES = ("mean", "sampling")


def _check_common(layer, rate, inference, num_samples, seed):
    layer.rate = utils.check_rate("rate", rate)
    layer.inference = utils.check_choice("inference", inference, _INFERENCE_MODES)
    layer.num_samples = utils.check_int("num_samples", num_samples, low=1)
    seed = utils.check_seed("seed", seed)
    layer.seed = seed
    layer.seed_generator = keras.random.SeedGenerator(seed)


def _common_config(layer):
    return {
        "rate": layer.rate,
        "mask": layer.mask,
        "inference": layer.inference,
        "num_samples": layer.num_samples,
        "seed": layer.seed,
    }


class _DropConnect:
    """What the two DropConnect layers share: the call and the configuration.

    Mixed in before the Keras layer (`Dense` / `Conv2D`), whose `call` is the
    inference ("mean") path; subclasses provide `_linear(inputs, kernel)`,
    `_add_bias(x)` and `_masked_linear(inputs)` (the training path).
    """

    def _finish(self, x):
        x = self._add_bias(x)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def call(self, inputs, training=None):
        if self.rate == 0:
            return super().call(inputs)
        if training:
            return self._finish(self._masked_linear(inputs))
        if self.inference == "sampling":
            return _sampling_inference(self, inputs)
        return super().call(inputs)

    def get_config(self):
        return {**super().get_config(), **_common_config(self)}


@utils.register
class DropConnectDense(_DropConnect, keras.layers.Dense):
    """A densely-connected layer whose weights are dropped during training.

    During training every weight of the kernel is kept with probability
    `1 - rate` and the kept weights are rescaled by `1 / (1 - rate)`; the bias
    is never dropped. (To halve the random numbers drawn, the realised rate is
    `rate` rounded to a multiple of 1/2048 for rates above about 0.05, and the
    rescaling uses the realised rate, so the expectation is exact; see
    `kerasreg.ops.drop_connect.drop_connect_mask`.) Because of this inverted convention the expected
    training-time kernel equals the kernel itself, so with the default
    `inference="mean"` inference is the plain `Dense` computation, at the cost
    of a `Dense`.

    `mask="batch"` (default) draws one kernel mask per training step, shared
    by every example of the batch: it costs one random draw the size of the
    kernel. `mask="example"` draws a fresh mask for every example, as in the
    paper; it is computed as one batched contraction over per-example masked
    kernels, which needs a `(batch, input_dim, units)` mask in memory and
    `batch` times the multiply-adds of a shared-mask step.

    `inference="sampling"` is the paper's inference: the pre-activation `u`
    is moment-matched by a Gaussian with `E[u] = x @ W + b` and
    `Var[u] = rate / (1 - rate) * (x * x) @ (W * W)`; the layer's own
    `activation` is applied to each of `num_samples` draws and the results
    are averaged. It is random at inference (use a `seed` for repeatability)
    and is only meaningful with a non-linear `activation`: for a linear layer
    the average converges to the `"mean"` output.

    With `rate=0` the layer is exactly a `keras.layers.Dense`.

    Args:
        units: positive integer, dimensionality of the output space.
        rate: float in `[0, 1)`, fraction of the kernel's weights to drop.
            Defaults to `0.5`.
        activation: activation function, owned by the layer so that
            `inference="sampling"` can average it. Defaults to `None`.
        mask: `"batch"` (one mask per step) or `"example"` (one mask per
            example). Defaults to `"batch"`.
        inference: `"mean"` (plain kernel) or `"sampling"` (Gaussian moment
            matching). Defaults to `"mean"`.
        num_samples: number of Gaussian draws per unit for
            `inference="sampling"`. Defaults to `100`.
        seed: integer seed of the random masks and draws. Defaults to `None`.
        **kwargs: any other `keras.layers.Dense` argument (`use_bias`,
            `kernel_initializer`, `kernel_regularizer`, `name`, ...).

    Call arguments:
        inputs: input tensor.
        training: Python boolean, whether to drop weights. Defaults to `None`
            (Keras sets it in `fit`).

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`.

    Output shape:
        N-D tensor with shape `(batch_size, ..., units)`.

    Example:

    >>> layer = DropConnectDense(4, rate=0.3, seed=0)
    >>> x = np.ones((2, 3), "float32")
    >>> tuple(layer(x, training=True).shape)
    (2, 4)

    >>> dense = keras.layers.Dense(4)
    >>> _ = dense(x)
    >>> dc = DropConnectDense.from_dense(dense, rate=0.3)
    >>> bool(np.allclose(dc(x), dense(x)))
    True

    Reference:
        - [Wan et al., 2013](https://proceedings.mlr.press/v28/wan13.html),
          "Regularization of Neural Networks using DropConnect".
    """

    def __init__(
        self,
        units,
        rate=0.5,
        activation=None,
        mask="batch",
        inference="mean",
        num_samples=100,
        seed=None,
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        _check_common(self, rate, inference, num_samples, seed)
        self.mask = utils.check_choice("mask", mask, ("batch", "example"))

    def _linear(self, inputs, kernel):
        return ops.matmul(inputs, kernel)

    def _add_bias(self, x):
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return x

    def _masked_linear(self, inputs):
        if self.mask == "example":
            return dc_ops.drop_connect_matmul_per_example(
                inputs, self.kernel, self.rate, self.seed_generator
            )
        masked = dc_ops.drop_connect_kernel(self.kernel, self.rate, self.seed_generator)
        return ops.matmul(inputs, masked)

    @classmethod
    def from_dense(cls, layer, rate=0.5, **kwargs):
        """Builds a `DropConnectDense` from a built `keras.layers.Dense`.

        The new layer takes the Dense layer's configuration (units,
        activation, bias, initializers, regularizers, constraints, dtype
        policy) and a copy of its weights, so that its inference output
        (`inference="mean"`) equals the Dense layer's output.

        Args:
            layer: a built `keras.layers.Dense` (LoRA, if enabled, is merged
                into the copied kernel).
            rate: the DropConnect rate. Defaults to `0.5`.
            **kwargs: other `DropConnectDense` arguments (`mask`,
                `inference`, `num_samples`, `seed`, `name`, ...).

        Returns:
            A built `DropConnectDense`.
        """
        rate = utils.check_rate("rate", rate)
        if not isinstance(layer, keras.layers.Dense):
            raise utils.invalid_value("layer", "a `keras.layers.Dense`", layer)
        if not layer.built:
            raise ValueError(
                "Invalid value received for argument `layer`. Expected a built "
                "`keras.layers.Dense` (call it on data first). "
                f"Received: layer={layer.name!r} (not built)"
            )
        if layer.quantization_mode:
            raise ValueError(
                "Invalid value received for argument `layer`. Expected a "
                "non-quantized `keras.layers.Dense`. Received: layer with "
                f"quantization_mode={layer.quantization_mode!r}"
            )
        config = layer.get_config()
        for key in ("name", "lora_rank", "lora_alpha", "quantization_config"):
            config.pop(key, None)
        config.update(kwargs)
        config["rate"] = rate
        new = cls.from_config(config)
        kernel = ops.convert_to_numpy(layer.kernel)
        new.build((None, kernel.shape[0]))
        new.kernel.assign(kernel)
        if layer.use_bias:
            new.bias.assign(ops.convert_to_numpy(layer.bias))
        return new


@utils.register
class DropConnectConv2D(_DropConnect, keras.layers.Conv2D):
    """A 2D convolution whose kernel weights are dropped during training.

    During training each weight of the convolution kernel is kept with
    probability `1 - rate` and the kept weights are rescaled by
    `1 / (1 - rate)` (the inverted convention: inference with
    `inference="mean"` uses the plain kernel, at the cost of a `Conv2D`); the
    bias is never dropped. The realised rate is that of
    `kerasreg.ops.drop_connect.drop_connect_mask` (`rate` to 1/2048). One kernel mask is drawn per training step and
    shared by the batch (`mask="batch"`, the only mode for convolutions: a
    per-example mask would turn the convolution into a per-example grouped
    convolution).

    `inference="sampling"` applies the paper's Gaussian moment matching to
    the convolution: `E[u] = conv(x, W) + b`,
    `Var[u] = rate / (1 - rate) * conv(x * x, W * W)`, and averages the
    layer's `activation` over `num_samples` draws.

    With `rate=0` the layer is exactly a `keras.layers.Conv2D`. Inputs must
    be 4D; anything else raises a `ValueError` when the layer is built.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of 2 ints, size of the convolution window.
        rate: float in `[0, 1)`, fraction of the kernel's weights to drop.
            Defaults to `0.5`.
        activation: activation function, owned by the layer so that
            `inference="sampling"` can average it. Defaults to `None`.
        mask: only `"batch"` (one kernel mask per step). Defaults to
            `"batch"`.
        inference: `"mean"` or `"sampling"`. Defaults to `"mean"`.
        num_samples: number of Gaussian draws per unit for
            `inference="sampling"`. Defaults to `100`.
        seed: integer seed of the random masks and draws. Defaults to `None`.
        **kwargs: any other `keras.layers.Conv2D` argument (`strides`,
            `padding`, `data_format`, `dilation_rate`, `groups`, `use_bias`,
            initializers, regularizers, constraints, `name`, ...).

    Call arguments:
        inputs: 4D input tensor.
        training: Python boolean, whether to drop weights. Defaults to `None`.

    Input shape:
        4D tensor `(batch, rows, cols, channels)` (`"channels_last"`) or
        `(batch, channels, rows, cols)` (`"channels_first"`).

    Output shape:
        4D tensor, as for `keras.layers.Conv2D`.

    Example:

    >>> layer = DropConnectConv2D(8, 3, rate=0.2, padding="same", seed=0)
    >>> tuple(layer(np.ones((2, 16, 16, 3), "float32"), training=True).shape)
    (2, 16, 16, 8)

    Reference:
        - [Wan et al., 2013](https://proceedings.mlr.press/v28/wan13.html),
          "Regularization of Neural Networks using DropConnect".
    """

    def __init__(
        self,
        filters,
        kernel_size,
        rate=0.5,
        activation=None,
        mask="batch",
        inference="mean",
        num_samples=100,
        seed=None,
        **kwargs,
    ):
        super().__init__(filters, kernel_size, activation=activation, **kwargs)
        _check_common(self, rate, inference, num_samples, seed)
        self.mask = utils.check_choice("mask", mask, ("batch",))
        # Our own rank check in `build` replaces the parent's `min_ndim=4`
        # spec, so that a 5D input is refused too, with our error message (as
        # in `DropBlock2D`: an `InputSpec(ndim=4)` would skip a direct `build`
        # and cannot name the expected layout).
        self.input_spec = None

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise utils.invalid_value(
                "input_shape",
                "a 4D shape (batch, rows, cols, channels) for a 2D layer",
                tuple(input_shape),
            )
        super().build(input_shape)

    def _linear(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)

    def _add_bias(self, x):
        if self.use_bias:
            if self.data_format == "channels_last":
                bias_shape = (1, 1, 1, self.filters)
            else:
                bias_shape = (1, self.filters, 1, 1)
            x = ops.add(x, ops.reshape(self.bias, bias_shape))
        return x

    def _masked_linear(self, inputs):
        masked = dc_ops.drop_connect_kernel(self.kernel, self.rate, self.seed_generator)
        return self.convolution_op(inputs, masked)


def _sampling_inference(layer, inputs):
    """The paper's Gaussian moment-matching inference for either layer."""
    kernel = layer.kernel
    mean = layer._linear(inputs, kernel)
    variance = dc_ops._drop_connect_variance(
        ops.cast(inputs, "float32"),
        ops.cast(kernel, "float32"),
        dc_ops._realised_rate(layer.rate),
        layer._linear,
    )
    return dc_ops._gaussian_moment_sampling(
        layer._add_bias(mean),
        variance,
        layer.activation,
        layer.num_samples,
        layer.seed_generator,
    )
