"""Early stopping decided on a smoothed validation curve."""

from __future__ import annotations

import collections
import math

from kerasreg import utils
from kerasreg.callbacks._base import ConfigurableCallback, print_msg
from kerasreg.callbacks._monitor import Monitor, is_finite
from kerasreg.callbacks._weight_swap import assign_values, read_values


class StopReason:
    """Why `SmoothedEarlyStopping` stopped training."""

    PATIENCE = "patience"
    NON_FINITE = "non_finite"


@utils.register
class SmoothedEarlyStopping(ConfigurableCallback):
    """Stops training when a *smoothed* metric has stopped improving.

    The validation curve is noisy: `keras.callbacks.EarlyStopping` compares
    raw values, so one lucky or unlucky epoch decides when training ends.
    This callback takes the decision on the curve's temporal smoothing:

    - `smoothing="ema"`: `s_t = alpha * x_t + (1 - alpha) * s_(t-1)`, with
      `s_0 = x_0`;
    - `smoothing="window"`: `s_t` is the mean of the last `window` values
      (fewer at the start).

    `s_t` is written into `logs` as `<monitor>_smoothed` (e.g.
    `val_loss_smoothed`), so `History`, the progress bar and `CSVLogger`
    (placed after this callback) show it. Training stops when `s_t` has not
    improved on its best value by more than `min_delta` for `patience`
    epochs, or at once when the monitored value is NaN or infinite. The
    weights kept (and put back at the end of `fit` with
    `restore_best_weights`) are those of the epoch with the best smoothed
    value. `stopped_epoch`, `best_epoch`, `best` and `stop_reason` (with
    `stop_message`) record what happened.

    Args:
        monitor: Metric to monitor. Defaults to `"val_loss"`.
        smoothing: `"ema"` or `"window"`. Defaults to `"ema"`.
        alpha: Weight of the newest value for `"ema"`, in (0, 1].
            Defaults to `0.3`.
        window: Number of values averaged for `"window"`. Defaults to `5`.
        patience: Number of epochs without improvement of the smoothed value
            after which training stops. Defaults to `3`.
        min_delta: Minimum change of the smoothed value that counts as an
            improvement. Defaults to `0.0`.
        mode: `"min"`, `"max"` or `"auto"` (from the metric's name).
            Defaults to `"auto"`.
        restore_best_weights: Put back the weights of the best smoothed epoch
            at the end of `fit`. With `EMAWeights`, list `EMAWeights` first
            so that the EMA weights are the ones kept. Defaults to `True`.
        start_from_epoch: Number of epochs to wait before counting patience
            (the smoothing runs from the first epoch). Defaults to `0`.
        verbose: Verbosity mode, 0 or 1. Mode 1 prints a message (as Keras's
            callbacks print theirs) when training stops; it is kept in
            `stop_message` in any case. Defaults to `0`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> stopper = SmoothedEarlyStopping(patience=2)
    >>> history = model.fit(np.ones((16, 4)), np.ones((16, 1)), epochs=3,
    ...                     validation_split=0.25, verbose=0,
    ...                     callbacks=[stopper])
    >>> "val_loss_smoothed" in history.history
    True

    Reference:
        Prechelt, Early stopping - but when?, Neural Networks: Tricks of the
        Trade (1998).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        smoothing: str = "ema",
        alpha: float = 0.3,
        window: int = 5,
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
        start_from_epoch: int = 0,
        verbose: int = 0,
    ):
        super().__init__()
        self._monitor = Monitor(monitor, mode, min_delta)
        self.monitor = monitor
        self.mode = mode
        self.min_delta = self._monitor.min_delta
        self.smoothing = utils.check_choice("smoothing", smoothing, ("ema", "window"))
        self.alpha = utils.check_float("alpha", alpha, 0.0, 1.0, low_inclusive=False)
        self.window = utils.check_int("window", window, 1)
        self.patience = utils.check_int("patience", patience, 0)
        self.restore_best_weights = utils.check_bool(
            "restore_best_weights", restore_best_weights
        )
        self.start_from_epoch = utils.check_int("start_from_epoch", start_from_epoch, 0)
        self.verbose = utils.check_verbose("verbose", verbose)
        self._reset()

    @property
    def smoothed_name(self) -> str:
        return f"{self.monitor}_smoothed"

    def _reset(self):
        self.wait = 0
        self.best = self._monitor.worst
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.stop_reason = None
        self.stop_message = None
        self.smoothed = None
        self.history = []  # smoothed values, one per epoch
        self._values = collections.deque(maxlen=self.window)
        self._monitor.reset()

    def get_config(self):
        return {
            "monitor": self.monitor,
            "smoothing": self.smoothing,
            "alpha": self.alpha,
            "window": self.window,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch,
            "verbose": self.verbose,
        }

    # -- pure parts ----------------------------------------------------------

    def smooth(self, value: float) -> float:
        """Adds `value` to the curve and returns the new smoothed value."""
        if self.smoothing == "ema":
            if self.smoothed is None or not is_finite(self.smoothed):
                self.smoothed = value
            else:
                self.smoothed = self.alpha * value + (1.0 - self.alpha) * self.smoothed
        else:
            self._values.append(value)
            self.smoothed = sum(self._values) / len(self._values)
        return self.smoothed

    # -- hooks ---------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        value = self._monitor.get(logs, "SmoothedEarlyStopping")
        if value is None:
            return
        if not is_finite(value):
            logs[self.smoothed_name] = math.nan
            self.history.append(math.nan)
            self._stop(
                epoch,
                StopReason.NON_FINITE,
                f"`{self.monitor}` = {value} is not finite",
            )
            return
        s = self.smooth(value)
        logs[self.smoothed_name] = s
        self.history.append(s)
        if self.best_epoch is None or self._monitor.improved(s, self.best):
            self.best = s
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = read_values(self.model.weights)
            return
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self.wait >= self.patience:
            self._stop(
                epoch,
                StopReason.PATIENCE,
                f"`{self.smoothed_name}` did not improve on {self.best:.6g} "
                f"(epoch {self.best_epoch}) by more than {self.min_delta:g} for "
                f"{self.wait} epochs",
            )

    def _stop(self, epoch, reason, message):
        self.stopped_epoch = epoch
        self.stop_reason = reason
        self.stop_message = message
        self.model.stop_training = True

    def on_train_end(self, logs=None):
        restored = False
        if self.restore_best_weights and self.best_weights is not None:
            assign_values(self.model.weights, self.best_weights)
            restored = True
        if self.stopped_epoch is not None and self.verbose:
            print_msg(
                f"\nSmoothedEarlyStopping: stopped at epoch {self.stopped_epoch}: "
                f"{self.stop_message}."
                + (
                    f" Restored the weights of epoch {self.best_epoch}."
                    if restored
                    else ""
                )
            )
