"""Stochastic weight averaging (Izmailov et al. 2018) and BatchNorm re-estimation."""

from __future__ import annotations

import warnings

import keras

from kerasreg import utils
from kerasreg._batches import input_batches
from kerasreg._walk import walk_layers
from kerasreg.callbacks._base import ConfigurableCallback
from kerasreg.callbacks._weight_swap import assign_values, read_values


def _batch_norm_layers(layer) -> list:
    """Every `keras.layers.BatchNormalization` inside `layer` (recursively)."""
    return [
        sub
        for sub in walk_layers(layer)
        if isinstance(sub, keras.layers.BatchNormalization)
    ]


def update_batch_norm(
    model: keras.Model, data, batch_size: int = 32, steps=None
) -> int:
    """Recomputes BatchNormalization moving statistics on `data`.

    After weight averaging the moving statistics belong to none of the
    averaged models. As `torch.optim.swa_utils.update_bn` does, each
    BatchNormalization layer's moving mean and variance are replaced by the
    cumulative (equal-weight) average of the batch statistics over one pass
    of `data` in training mode: batch `k` gets momentum `k / (k + 1)`.

    Args:
        model: The model (its BatchNormalization layers are found
            recursively).
        data: Input arrays, `(x, y)` arrays, or a dataset / iterable of
            batches (`x` or `(x, y, ...)`).
        batch_size: Batch size for array data. Defaults to `32`.
        steps: Stop after this many batches (None: one full pass).
            Defaults to `None`.

    Returns:
        The number of batches used (0 if the model has no BatchNormalization).
    """
    layers = _batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    n = 0
    try:
        for batch in input_batches(data, batch_size):
            if steps is not None and n >= steps:
                break
            for layer in layers:
                layer.momentum = n / (n + 1.0)
            model(batch, training=True)
            n += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return n


@utils.register
class SWA(ConfigurableCallback):
    """Stochastic weight averaging: the equal-weight average of late weights.

    From epoch `start_epoch` on, the trainable weights at the end of each
    epoch are added to a running equal-weight average (SWA with one
    average per epoch, Izmailov et al. 2018). With `swa_lr`, the learning
    rate is held at `swa_lr` from `start_epoch` on (the paper's constant SWA
    schedule; the optimizer's rate of before `fit` is put back at the end).
    At the end of `fit` the model holds the averaged weights, and with
    `update_batch_norm=True` its BatchNormalization moving statistics are
    recomputed on `data` (see `update_batch_norm`); the last training weights
    stay available as `training_weights`.

    Per-epoch Python work only (no batch hook): the average is updated from
    `on_epoch_end`.

    Args:
        start_epoch: First epoch whose weights are averaged, >= 0.
        swa_lr: Learning rate from `start_epoch` on, or None to leave the
            schedule alone. Defaults to `None`.
        update_batch_norm: Recompute BatchNormalization statistics at the
            end. Defaults to `True`.
        data: Training inputs for that (arrays, `(x, y)` or a dataset).
            Without them, a model with BatchNormalization keeps the last
            training statistics and a warning says so. Defaults to `None`.
        batch_size: Batch size for `data` arrays. Defaults to `32`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
    ...                           keras.layers.BatchNormalization(),
    ...                           keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> x, y = np.random.rand(64, 4), np.random.rand(64, 1)
    >>> swa = SWA(start_epoch=1, swa_lr=0.01, data=x)
    >>> _ = model.fit(x, y, epochs=3, verbose=0, callbacks=[swa])
    >>> swa.n_averaged
    2

    Reference:
        Izmailov et al., Averaging weights leads to wider optima and better
        generalization, UAI 2018.
    """

    def __init__(
        self,
        start_epoch: int,
        swa_lr: float | None = None,
        update_batch_norm: bool = True,
        data=None,
        batch_size: int = 32,
    ):
        super().__init__()
        self.start_epoch = utils.check_int("start_epoch", start_epoch, 0)
        if swa_lr is not None:
            swa_lr = utils.check_float("swa_lr", swa_lr, 0.0, low_inclusive=False)
        self.swa_lr = swa_lr
        self.update_batch_norm = utils.check_bool(
            "update_batch_norm", update_batch_norm
        )
        self.data = data
        self.batch_size = utils.check_int("batch_size", batch_size, 1)
        self._reset()

    def _reset(self):
        self.n_averaged = 0
        self.swa_weights = None
        self.training_weights = None
        self._average = None
        self._lr_before = None

    def get_config(self):
        # `data` is not serializable configuration.
        return {
            "start_epoch": self.start_epoch,
            "swa_lr": self.swa_lr,
            "update_batch_norm": self.update_batch_norm,
            "batch_size": self.batch_size,
        }

    def _copy_kwargs(self) -> dict:
        return {**self.get_config(), "data": self.data}

    def _variables(self):
        return [v for v in self.model.trainable_variables if "float" in str(v.dtype)]

    def on_train_begin(self, logs=None):
        self._reset()
        if self.swa_lr is not None:
            lr = self.model.optimizer.learning_rate
            if not isinstance(lr, keras.Variable):
                raise ValueError(
                    "SWA(swa_lr=...) sets the learning rate: use an optimizer "
                    "with a float `learning_rate`, or swa_lr=None."
                )
            self._lr_var = lr
            self._lr_before = float(lr.numpy())
        if (
            self.update_batch_norm
            and self.data is None
            and _batch_norm_layers(self.model)
        ):
            warnings.warn(
                "SWA: the model has BatchNormalization layers but no `data` "
                "was given, so their statistics will not be recomputed for "
                "the averaged weights; pass SWA(data=x_train) or call "
                "kerasreg.callbacks.update_batch_norm(model, x_train).",
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        if self.swa_lr is not None and epoch >= self.start_epoch:
            self._lr_var.assign(self.swa_lr)

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_epoch:
            return
        current = read_values(self._variables())
        if self._average is None:
            self._average = [w.astype("float64") for w in current]
        else:
            n = self.n_averaged
            self._average = [
                a + (w - a) / (n + 1.0) for a, w in zip(self._average, current)
            ]
        self.n_averaged += 1

    def on_train_end(self, logs=None):
        if self._lr_before is not None:
            self._lr_var.assign(self._lr_before)
        self.training_weights = read_values(self.model.weights)
        if self._average is None:
            return
        variables = self._variables()
        assign_values(
            variables, [a.astype(v.dtype) for a, v in zip(self._average, variables)]
        )
        if self.update_batch_norm and self.data is not None:
            update_batch_norm(self.model, self.data, self.batch_size)
        self.swa_weights = read_values(self.model.weights)
