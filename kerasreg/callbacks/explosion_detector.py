"""Stops training when the cost explodes, and puts the last good weights back."""

from __future__ import annotations

import math
import threading

import keras

from kerasreg import utils
from kerasreg.callbacks._base import BackupOwnerCallback, print_msg
from kerasreg.callbacks._monitor import Monitor, is_finite
from kerasreg.callbacks._weight_swap import TrainingState


class TrainingExplodedError(RuntimeError):
    """Raised by `ExplosionDetector(raise_error=True)` when the cost explodes."""


@utils.register
class ExplosionDetector(BackupOwnerCallback):
    """Stops training when the cost explodes or becomes NaN / infinite.

    The reference is the original cost: the value of `monitor` at the first
    batch of training (the loss of the initial weights, before any update),
    or the mean of the first `warmup_batches` batches (Keras reports the
    running mean of the epoch in batch logs). During the warm-up every batch
    is already checked against the first batch's cost, so an explosion in the
    very first steps stops training too. If `monitor` is only reported per
    epoch (e.g. `"val_loss"`), or the first epoch is shorter than the
    warm-up, the reference is the first epoch's value.

    The cost has exploded when it is NaN / inf, or when it rose above the
    reference by more than `factor - 1` times the reference's magnitude:
    `value > reference + (factor - 1) * max(|reference|, min_scale)`. For a
    positive reference (cross-entropy, MSE) larger than `min_scale` that is
    the classic "cost > `factor` x the original cost"; it keeps its meaning
    for costs that start at zero or below (cosine-similarity losses, losses
    with a negative offset), where a plain ratio would stop stable runs.
    Training then stops at that batch, the weights (and the optimizer state)
    kept at the start of the epoch are put back, and a message says what
    happened and suggests a smaller learning rate. The event is recorded in
    `exploded_at_epoch`, `exploded_at_batch`, `value`, `reference` and
    `message`.

    With `keras.callbacks.BackupAndRestore`, give the backup to the detector
    (`backup=`) instead of passing it to `fit`: the detector then runs the
    backup's hooks itself, at its own place in the callback list, checking
    each batch and epoch before the backup may save it. Once training has
    exploded, the backup saves nothing more and is not deleted at the end
    (a known pitfall of `keras.callbacks.TerminateOnNaN`, whose graceful
    stop runs `BackupAndRestore.on_train_end`, which deletes the backup), so
    a restart (with a smaller learning rate, and the same `backup_dir`)
    resumes from the last good epoch. Without an explosion the backup
    behaves exactly as it does in `callbacks`. A `BackupAndRestore` passed
    to `fit` directly is not known to the detector: Keras gives a callback
    no link to its siblings, so it saves the exploded epoch and deletes its
    backup when the stopped `fit` ends.

    The batch check only reads the logs Keras already computed, so the
    callback is declared `async_safe`: it does not disable Keras's
    asynchronous callback dispatch. Keras then runs the batch hooks in a
    thread pool, in any order within an epoch (it waits for all of them at
    the end of the epoch); the detector keys every value by its batch index,
    so the reference is always that of the first batches and the batch
    reported is the first one that exploded, whatever order they arrive in.
    Training may run one or two more batches before it stops; the weights
    put back are those of the epoch start in any case. (With a `backup`
    that saves every few batches, an integer `save_freq`, the detector is
    not `async_safe`: its batch hooks then run in order, in the training
    loop's thread.)

    Args:
        monitor: The cost to watch (a loss: lower is better). Defaults to
            `"loss"`.
        factor: Explosion threshold, relative to the reference, > 1.
            Defaults to `3.0`.
        warmup_batches: Number of first batches whose mean cost is the
            reference (1: the first batch's cost, the original cost).
            Defaults to `1`.
        min_scale: Smallest magnitude of the reference, in the cost's units,
            used for the threshold (see above), >= 0. Defaults to `0.1`.
        restore_weights: Whether to put the weights and optimizer state of the
            start of the exploded epoch back. Defaults to `True`.
        raise_error: Raise `TrainingExplodedError` (after restoring the
            weights) instead of stopping gracefully. Defaults to `False`.
        backup: A `keras.callbacks.BackupAndRestore` that the detector runs
            (see above) and that is then not passed to `fit`; it is not part
            of the config (a deep copy gets a new one with the same
            arguments). Defaults to `None`.
        verbose: Verbosity mode, 0 or 1. Mode 1 prints the message (as
            Keras's callbacks print theirs) when training stops; it is kept
            in `message` in any case. Defaults to `1`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(1e3), "mse")  # far too large
    >>> detector = ExplosionDetector(factor=3.0, warmup_batches=1, verbose=0)
    >>> x, y = np.ones((64, 4)), np.ones((64, 1))
    >>> _ = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
    ...               callbacks=[detector])
    >>> detector.exploded_at_epoch
    0

    With a backup, so that a restart resumes from the last good epoch:

    >>> import tempfile
    >>> backup_dir = tempfile.mkdtemp()
    >>> backup = keras.callbacks.BackupAndRestore(backup_dir)
    >>> detector = ExplosionDetector(backup=backup, verbose=0)
    >>> _ = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
    ...               callbacks=[detector])  # not callbacks=[backup, ...]

    Reference:
        Goodfellow, Bengio and Courville, Deep Learning (2016), section 8.2.4
        (cliffs and exploding gradients); Keras `TerminateOnNaN`.
    """

    def __init__(
        self,
        monitor: str = "loss",
        factor: float = 3.0,
        warmup_batches: int = 1,
        min_scale: float = 0.1,
        restore_weights: bool = True,
        raise_error: bool = False,
        backup: keras.callbacks.BackupAndRestore | None = None,
        verbose: int = 1,
    ):
        super().__init__(backup)
        self._monitor = Monitor(monitor, "min")
        self.monitor = monitor
        self.factor = utils.check_float("factor", factor, 1.0, low_inclusive=False)
        self.warmup_batches = utils.check_int("warmup_batches", warmup_batches, 1)
        self.min_scale = utils.check_float("min_scale", min_scale, 0.0)
        self.restore_weights = utils.check_bool("restore_weights", restore_weights)
        self.raise_error = utils.check_bool("raise_error", raise_error)
        self.verbose = utils.check_verbose("verbose", verbose)
        self._target = None
        self._reset()

    def _reset(self):
        self.reference = None
        self.exploded = False
        self.exploded_at_epoch = None
        self.exploded_at_batch = None
        self.value = None
        self.message = None
        self._epoch = 0
        self._first_epoch = None
        self._good_state = None
        self._reason = None
        self._first_cost = None  # the first batch's cost: the warm-up reference
        self._pending = {}  # batch -> cost seen before the first batch's cost
        self._lock = threading.Lock()
        self._monitor.reset()

    # -- configuration -----------------------------------------------------

    def get_config(self):
        return {
            "monitor": self.monitor,
            "factor": self.factor,
            "warmup_batches": self.warmup_batches,
            "min_scale": self.min_scale,
            "restore_weights": self.restore_weights,
            "raise_error": self.raise_error,
            "verbose": self.verbose,
        }

    # -- decision ------------------------------------------------------------

    def threshold(self, reference: float | None = None) -> float | None:
        """The cost above which training has exploded (None: no reference)."""
        reference = self.reference if reference is None else reference
        if reference is None:
            return None
        return reference + (self.factor - 1.0) * max(abs(reference), self.min_scale)

    def check(self, value: float, reference: float | None = None) -> str | None:
        """The reason to stop for `value`, or None. Pure: changes nothing.

        Args:
            value: The monitored cost.
            reference: The reference to compare with. Defaults to
                `self.reference`.
        """
        if not is_finite(value):
            return f"`{self.monitor}` = {value} is not finite"
        reference = self.reference if reference is None else reference
        limit = self.threshold(reference)
        if limit is None or value <= limit:
            return None
        scale = max(abs(reference), self.min_scale)
        if reference == scale:  # a positive reference: the classic ratio
            return (
                f"`{self.monitor}` = {value:.6g} is above {self.factor:g} x the "
                f"reference {reference:.6g} (= {limit:.6g})"
            )
        return (
            f"`{self.monitor}` = {value:.6g} is above the reference {reference:.6g} "
            f"+ {self.factor - 1:g} x {scale:.6g} (= {limit:.6g})"
        )

    # -- hooks ---------------------------------------------------------------

    def set_model(self, model):
        super().set_model(model)
        self._target = model

    def on_train_begin(self, logs=None):
        self._reset()
        self._backup.train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._first_epoch is None:
            self._first_epoch = epoch
        if self.restore_weights and self.model is not None:
            self._good_state = TrainingState(self.model)

    def on_train_batch_end(self, batch, logs=None):
        # Runs in Keras's callback thread pool, in any order within an epoch:
        # record and ask to stop, no more. (In order, in the training loop's
        # thread, when the backup saves per batch: see `async_safe`.)
        if logs and self.monitor in logs:
            self._batch(batch, float(logs[self.monitor]))
        if not self.exploded:
            self._backup.train_batch_end(batch, logs)

    def _batch(self, batch: int, value: float) -> None:
        with self._lock:
            first = self._epoch == self._first_epoch
            if first and batch == 0:
                self._first_cost = value
            if first and self._first_cost is None:
                if is_finite(value):
                    self._pending[batch] = value  # checked once batch 0 is in
                else:
                    self._see(first, batch, value)
                return
            todo = {**self._pending, batch: value}
            self._pending = {}
            for b, v in sorted(todo.items()):
                self._see(first, b, v)

    def _see(self, first: bool, batch: int, value: float) -> None:
        """Checks one batch's cost, in batch order within the first epoch."""
        reference = self.reference
        if reference is None and first:
            reference = self._first_cost  # the warm-up's reference
        reason = self.check(value, reference)
        if reason is not None:
            self._explode(self._epoch, batch, value, reason)
        elif first and self.reference is None and batch == self.warmup_batches - 1:
            self.reference = value

    def on_epoch_end(self, epoch, logs=None):
        self._pending = {}  # Keras has run every batch hook of the epoch
        if not self.exploded:
            value = self._monitor.get(logs, "ExplosionDetector")
            if value is not None:
                reason = self.check(value)
                if reason is not None:
                    self._explode(epoch, None, value, reason)
                elif self.reference is None:
                    self.reference = value
        if not self.exploded:
            self._backup.epoch_end(epoch, logs)
        elif self.message is None:
            self._finish()

    def on_train_end(self, logs=None):
        if self.exploded and self.message is None:
            self._finish()
        self._backup.train_end(logs)  # skipped after an explosion

    # -- the event -------------------------------------------------------------

    def _explode(self, epoch, batch, value, reason):
        if self.exploded:
            # Out-of-order hooks: report the first batch that exploded.
            if (
                epoch == self.exploded_at_epoch
                and batch is not None
                and self.exploded_at_batch is not None
                and batch < self.exploded_at_batch
            ):
                self.exploded_at_batch, self.value, self._reason = batch, value, reason
            return
        self.exploded = True
        self.exploded_at_epoch = epoch
        self.exploded_at_batch = batch
        self.value = value
        self._reason = reason
        self._backup.hold()  # keeps the last good epoch's backup
        # Not `self.model`: on JAX that property syncs the training state,
        # which from Keras's callback thread races with the training loop.
        if self._target is not None:
            self._target.stop_training = True

    def _finish(self):
        restored = False
        if self.restore_weights and self._good_state is not None:
            self._good_state.restore(self.model)
            restored = True
        where = f"epoch {self.exploded_at_epoch}" + (
            f", batch {self.exploded_at_batch}"
            if self.exploded_at_batch is not None
            else " (end)"
        )
        lr = _current_lr(self.model)
        hint = (
            f"Try a smaller learning rate (e.g. {lr / 3:.3g} instead of {lr:.3g})"
            if lr is not None
            else "Try a smaller learning rate"
        ) + ", gradient clipping or a learning-rate warm-up."
        self.message = (
            f"ExplosionDetector: training exploded at {where}: {self._reason}. "
            "Training stopped"
            + (
                f"; weights and optimizer state restored to the start of epoch "
                f"{self.exploded_at_epoch}. "
                if restored
                else ". "
            )
            + hint
        )
        if self.raise_error:
            raise TrainingExplodedError(self.message)
        if self.verbose:
            print_msg("\n" + self.message)


def _current_lr(model):
    try:
        lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - a schedule or a missing optimizer
        return None
    return lr if math.isfinite(lr) and lr > 0 else None
