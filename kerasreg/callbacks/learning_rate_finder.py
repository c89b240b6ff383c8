"""The learning-rate range test (Smith 2017; fastai's `lr_find`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import keras
import numpy as np

from kerasreg import _figures, utils
from kerasreg.callbacks._base import ConfigurableCallback
from kerasreg.callbacks._monitor import is_finite
from kerasreg.callbacks._train_step_hook import call_when_built, cancel_when_built
from kerasreg.callbacks._weight_swap import TrainingState


@dataclass
class LearningRateFinderResult:
    """What the range test found.

    Attributes:
        lrs: The learning rate of each step.
        losses: The bias-corrected, smoothed loss after each step.
        raw_losses: The loss of each step's batch.
        suggestion: The suggested learning rate (None if the test was too
            short to tell).
        rule: How `suggestion` was chosen: `"steepest"` (where the smoothed
            loss falls fastest against log(lr), before its minimum) or
            `"minimum/10"` (a tenth of the rate at the minimum loss).
        suggestions: Both rules' values.
        stop_reason: Why the sweep ended (`"steps"`, `"diverged"`,
            `"non_finite"`, `"data"`).
    """

    lrs: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    raw_losses: list = field(default_factory=list)
    suggestion: float | None = None
    rule: str | None = None
    suggestions: dict = field(default_factory=dict)
    stop_reason: str | None = None

    def plot(self, path: str | os.PathLike | None = None, ax=None):
        """Plots the smoothed loss against the learning rate (log scale).

        Needs matplotlib (imported here, not at import time). Saves the
        figure to `path` when given (atomically) and returns the figure:
        then, without `ax`, a figure apart from pyplot (no window opens);
        with neither, a pyplot figure (`plt.show()` displays it).
        """
        if ax is not None:
            fig = ax.figure
        elif path is not None:
            fig = _figures.new_figure(figsize=(6, 4))
            ax = fig.subplots()
        else:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        if self.suggestion is not None:
            ax.axvline(
                self.suggestion,
                color="tab:red",
                linestyle="--",
                label=f"suggestion ({self.rule}): {self.suggestion:.2g}",
            )
        ax.legend()
        ax.set_title("Learning-rate range test")
        if path is not None:
            _figures.save_figure(fig, path)
        return fig


def suggest_learning_rate(lrs, losses) -> tuple[float | None, str | None, dict]:
    """Suggestions from a range test: `(suggestion, rule, all_rules)`."""
    lrs = np.asarray(lrs, dtype="float64")
    losses = np.asarray(losses, dtype="float64")
    ok = np.isfinite(losses)
    lrs, losses = lrs[ok], losses[ok]
    if len(lrs) < 2:
        return None, None, {}
    i_min = int(np.argmin(losses))
    rules = {"minimum/10": float(lrs[i_min] / 10.0)}
    if i_min >= 2:
        slope = np.gradient(losses[: i_min + 1], np.log(lrs[: i_min + 1]))
        rules["steepest"] = float(lrs[int(np.argmin(slope))])
    rule = "steepest" if "steepest" in rules else "minimum/10"
    return rules[rule], rule, rules


@utils.register
class LearningRateFinder(ConfigurableCallback):
    """The learning-rate range test, as a callback.

    From the first batch on, the learning rate grows exponentially from
    `min_lr` to `max_lr` over `steps` batches. After each batch the batch's
    loss (recovered from Keras's running epoch mean) is smoothed with an
    exponential moving average with bias correction
    (`s_k = avg_k / (1 - beta ** (k + 1))`). The sweep stops after `steps`
    batches, or when the smoothed loss exceeds `diverge` x its best value
    (or is NaN / inf). At the end of `fit` the model's weights and the
    optimizer's state (moments, iteration counter, learning rate) are put
    back exactly as they were before. `result` holds `lrs`, `losses`, a
    `suggestion` with the `rule` used, and `plot()`.

    A model that is not built before `fit` (`keras.Sequential()` filled with
    `add`, a subclassed model) is built from the first batch's shapes; its
    freshly initialised weights and optimizer state are the ones put back.

    The optimizer needs a float (variable) learning rate. Most users call
    `find_learning_rate(model, data)`, which runs the `fit` for them.

    Args:
        min_lr: First learning rate, > 0. Defaults to `1e-7`.
        max_lr: Last learning rate, > `min_lr`. Defaults to `10.0`.
        steps: Number of batches of the sweep. Defaults to `100`.
        beta: Smoothing of the loss, in [0, 1). Defaults to `0.98`.
        diverge: Stop when the smoothed loss exceeds this multiple of its
            best value, > 1. Defaults to `4.0`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> finder = LearningRateFinder(min_lr=1e-4, max_lr=1.0, steps=20)
    >>> _ = model.fit(np.ones((320, 4)), np.ones((320, 1)), batch_size=16,
    ...               epochs=1, verbose=0, callbacks=[finder])
    >>> len(finder.result.lrs) <= 20
    True

    Reference:
        Smith, Cyclical learning rates for training neural networks,
        WACV 2017.
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        steps: int = 100,
        beta: float = 0.98,
        diverge: float = 4.0,
    ):
        super().__init__()
        self.min_lr = utils.check_float("min_lr", min_lr, 0.0, low_inclusive=False)
        self.max_lr = utils.check_float("max_lr", max_lr, 0.0, low_inclusive=False)
        if self.min_lr >= self.max_lr:
            raise utils.invalid_value(
                "min_lr", f"a float value < max_lr={self.max_lr:g}", min_lr
            )
        self.steps = utils.check_int("steps", steps, 2)
        self.beta = utils.check_float("beta", beta, 0.0, 1.0, high_inclusive=False)
        self.diverge = utils.check_float("diverge", diverge, 1.0, low_inclusive=False)
        self.result = None
        self._state = None

    def get_config(self):
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "steps": self.steps,
            "beta": self.beta,
            "diverge": self.diverge,
        }

    def lr_at(self, k: int) -> float:
        """The learning rate of step `k` (exponential sweep)."""
        return self.min_lr * (self.max_lr / self.min_lr) ** (k / (self.steps - 1))

    def on_train_begin(self, logs=None):
        model = self.model
        if model.optimizer is None:
            raise ValueError("LearningRateFinder needs a compiled model.")
        lr = model.optimizer.learning_rate
        if not isinstance(lr, keras.Variable):
            raise ValueError(
                "LearningRateFinder sets the learning rate itself: use an "
                "optimizer with a float `learning_rate`, not a schedule."
            )
        self._lr_var = lr
        # The deferred copy below is taken after the first batch has set
        # the sweep's rate: keep the user's rate from here.
        self._lr_before = np.array(lr.numpy(), copy=True)
        self._state = None
        # An unbuilt model (TensorFlow) is built from the first batch just
        # before the first step: its initial weights are the ones restored.
        call_when_built(model, self._save_state)
        self.result = LearningRateFinderResult()
        self._k = 0
        self._avg = 0.0
        self._best = math.inf
        self._prev_mean = None
        self._done = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self._done:
            # On JAX, reading `self.model` syncs the training state into the
            # variables, so the step that follows reads the new rate.
            _ = self.model
            self._lr_var.assign(self.lr_at(self._k))

    def on_train_batch_end(self, batch, logs=None):
        if self._done or not logs or "loss" not in logs:
            return
        mean = float(logs["loss"])
        # Keras reports the running mean of the epoch: recover this batch's.
        if batch == 0 or self._prev_mean is None:
            loss = mean
        else:
            loss = (batch + 1) * mean - batch * self._prev_mean
        self._prev_mean = mean
        res = self.result
        res.lrs.append(self.lr_at(self._k))
        res.raw_losses.append(loss)
        if not is_finite(loss):
            res.losses.append(math.nan)
            return self._finish("non_finite")
        self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
        smoothed = self._avg / (1.0 - self.beta ** (self._k + 1))
        res.losses.append(smoothed)
        self._best = min(self._best, smoothed)
        self._k += 1
        if self._k > 1 and smoothed > self.diverge * self._best:
            return self._finish("diverged")
        if self._k >= self.steps:
            return self._finish("steps")

    def on_epoch_end(self, epoch, logs=None):
        self._prev_mean = None

    def _finish(self, reason):
        self._done = True
        self.result.stop_reason = reason
        self.model.stop_training = True

    def _save_state(self):
        model = self.model
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        self._state = TrainingState(model)

    def on_train_end(self, logs=None):
        cancel_when_built(self.model, self._save_state)
        if self._state is not None:
            self._state.restore(self.model)
            self._state = None
        self._lr_var.assign(self._lr_before)
        res = self.result
        if res.stop_reason is None:
            res.stop_reason = "data"
        res.suggestion, res.rule, res.suggestions = suggest_learning_rate(
            res.lrs, res.losses
        )


def find_learning_rate(
    model: keras.Model,
    data,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int = 100,
    *,
    batch_size: int = 32,
    beta: float = 0.98,
    diverge: float = 4.0,
    verbose: int = 0,
) -> LearningRateFinderResult:
    """Runs the learning-rate range test on a compiled model.

    The model's weights and optimizer state are the same afterwards as
    before. See `LearningRateFinder` for the procedure.

    Args:
        model: A compiled model (optimizer with a float learning rate).
        data: `(x, y)` arrays, or a `tf.data.Dataset` / `keras.utils.PyDataset`
            of `(x, y)` batches (repeated as needed).
        min_lr: First learning rate. Defaults to `1e-7`.
        max_lr: Last learning rate. Defaults to `10.0`.
        steps: Number of batches. Defaults to `100`.
        batch_size: Batch size for array data. Defaults to `32`.
        beta: Loss smoothing. Defaults to `0.98`.
        diverge: Stop factor over the best smoothed loss. Defaults to `4.0`.
        verbose: Passed to `fit`. Defaults to `0`.

    Returns:
        A `LearningRateFinderResult` (`lrs`, `losses`, `suggestion`, `rule`,
        `plot()`).
    """
    finder = LearningRateFinder(min_lr, max_lr, steps, beta, diverge)
    if isinstance(data, tuple) and len(data) in (2, 3):
        x, y = data[0], data[1]
        n = len(y)
        per_epoch = max(1, math.ceil(n / batch_size))
        epochs = math.ceil(steps / per_epoch)
        model.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            verbose=verbose,
            callbacks=[finder],
        )
    else:
        if hasattr(data, "repeat"):
            data = data.repeat()
        model.fit(
            data,
            epochs=1,
            steps_per_epoch=steps,
            shuffle=False,
            verbose=verbose,
            callbacks=[finder],
        )
    return finder.result
