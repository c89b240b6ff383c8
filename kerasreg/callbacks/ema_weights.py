"""Exponential moving average (Polyak averaging) of the weights, for any optimizer."""

from __future__ import annotations

import keras

from kerasreg import utils
from kerasreg.callbacks._base import BackupOwnerCallback
from kerasreg.callbacks._train_step_hook import (
    TrainStepHook,
    call_when_built,
    cancel_when_built,
    model_is_built,
    release_optimizer_variables,
)
from kerasreg.callbacks._weight_swap import assign_values, read_values


def ema_decay(
    count, decay: float, warmup: bool = True, warmup_power: float = 2.0 / 3.0
):
    """The decay used by the `count`-th EMA update (0-based), as a tensor.

    With `warmup`, timm's `ModelEmaV3` schedule (gamma = 1):
    `min(decay, 1 - (1 + count) ** -warmup_power)`, which is 0 at the first
    update (the average starts as a copy of the weights) and grows towards
    `decay`. Without it, the constant `decay`.
    """
    count = keras.ops.cast(count, "float32")
    if not warmup:
        return keras.ops.full_like(count, decay)
    return keras.ops.minimum(
        keras.ops.convert_to_tensor(decay, "float32"),
        1.0 - keras.ops.power(1.0 + count, -warmup_power),
    )


def _is_float(variable) -> bool:
    return "float" in str(variable.dtype)


@utils.register
class EMAWeights(BackupOwnerCallback):
    """Keeps an exponential moving average (EMA) of the weights, for any optimizer.

    After each optimizer step `t` (from `start_step` on, every `update_every`
    steps), every floating-point weight `w` of the model updates its average
    `e <- d_n * e + (1 - d_n) * w`, where `n` counts the updates and `d_n` is
    the decay, warmed up as in timm's `ModelEmaV3`:
    `d_n = min(decay, 1 - (1 + n) ** -warmup_power)` (`d_0 = 0`, so the
    average starts from the weights, and `d_n` grows towards `decay`). Before
    `start_step` the average follows the weights exactly. Trainable weights
    and, by default, non-trainable float weights such as BatchNormalization
    moving statistics are averaged; integer state (seed generators, counters)
    is never averaged: the model keeps its current values, i.e. they are
    copied.

    The update runs inside the compiled train step: for the duration of
    `fit` the callback folds it into `model.train_step` (see
    `kerasreg.callbacks._train_step_hook`; on JAX the averages travel in the
    stateless step's optimizer state), so there is no Python work per batch
    and Keras's asynchronous callback dispatch stays on. Unlike the optimizer's `use_ema=True`, it works with any
    optimizer object, averages BatchNormalization statistics, warms the decay
    up and swaps correctly around `predict`.

    During `fit` the averages live in the optimizer's variables (as with
    `use_ema=True`), with the update counters and a flag saying which set
    the model holds, so checkpoints written during `fit` carry the whole
    state. Swapping the EMA weights in *exchanges* them with the training
    weights (the training weights wait in the optimizer variables), so any
    checkpoint, also one written while the model holds the EMA weights
    (`BackupAndRestore` placed after this callback, `ExplosionDetector`'s
    epoch-start copy), restores both sets: with a
    `keras.callbacks.BackupAndRestore` placed *after* this callback in
    `callbacks`, or given to it as `backup=` (the callback then runs the
    backup's hooks itself, loading it once the averages exist), a run killed
    or crashed mid-way and resumed ends with the weights and averages of an
    uninterrupted run. (A backup placed *before* this callback in
    `callbacks` loads before the averages exist: Keras warns that it skips
    the optimizer state, and the resumed run does not match. Keras gives a
    callback no link to its siblings, so this callback cannot see it.) At
    the end of `fit` the averages are taken out of the optimizer again (the
    callback keeps them): repeated `fit`s, with the same or a new
    `EMAWeights`, do not pile up optimizer variables, and a model saved after
    `fit` has the optimizer state of a plain `fit` and loads with it. A
    model saved *during* `fit` (`ModelCheckpoint` with full models) has the
    extra optimizer variables; Keras loads its weights but not its
    optimizer state.

    A `fit` that raises (Ctrl-C, a failing callback) does not run
    `on_train_end`; the callback's train-step hook is then aborted (at once
    if a train step raised, else at the start of the model's next `fit`, or
    by `kerasreg.callbacks.remove_train_step_hooks(model)`):
    the model gets its training weights back (never the EMA weights), the
    averages are taken out of the optimizer, and `training_weights` /
    `ema_weights` hold both sets.

    Models that are not built before `fit` (`keras.Sequential()` filled with
    `add`, subclassed models) work too: on TensorFlow, where `fit` builds
    such a model while tracing the first step, the callback builds it from
    the first batch's shapes just before that step and starts averaging
    there, exactly as for a built model.

    With `swap_for_eval=True`, validation at the end of each epoch, `evaluate`
    and `predict` (when the callback is passed to them, or during `fit`) and
    the `on_epoch_end` of callbacks placed after this one (e.g.
    `ModelCheckpoint`) see the EMA weights; the training weights come back
    afterwards (at the end of `evaluate` / `predict`, at the next epoch's
    start). At the end of `fit`, the model holds the EMA weights if
    `ema_at_end=True` (whatever `swap_for_eval`), else the training weights;
    the other set stays available as `training_weights` / `ema_weights`.

    Callback order matters: put `EMAWeights` *before* callbacks that read or
    restore weights at the end of an epoch or of training
    (`SmoothedEarlyStopping` / `EarlyStopping` with `restore_best_weights`,
    `ModelCheckpoint`), so that they see, keep and restore the EMA weights.
    Placed after it, early stopping keeps training weights and the final
    EMA weights overwrite what it restored.

    Args:
        decay: The EMA decay, in (0, 1). Defaults to `0.999`.
        warmup: Warm the decay up (timm's schedule). Defaults to `True`.
        warmup_power: Exponent of the warm-up schedule (timm: 2/3 for long
            runs, 3/4 for short ones). Defaults to `2/3`.
        update_every: Update the average every this many steps.
            Defaults to `1`.
        start_step: Optimizer step at which averaging starts.
            Defaults to `0`.
        average_non_trainable: Also average non-trainable float weights
            (BatchNormalization moving statistics); if False they are taken
            from the training model as they are. Defaults to `True`.
        swap_for_eval: Use the EMA weights for validation, `evaluate`,
            `predict` and end-of-epoch checkpoints. Defaults to `True`.
        ema_at_end: Leave the EMA weights in the model after `fit`.
            Defaults to `True`.
        backup: A `keras.callbacks.BackupAndRestore` that the callback runs
            at its own place in the callback list (see above), instead of
            passing it to `fit`. It is not part of the config (a deep copy
            gets a new one with the same arguments); the model must be built
            before `fit`. Defaults to `None`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("adam", "mse")
    >>> ema = EMAWeights(decay=0.99)
    >>> _ = model.fit(np.ones((32, 4)), np.ones((32, 2)), epochs=2,
    ...               verbose=0, callbacks=[ema])
    >>> len(ema.ema_weights) == len(model.weights)
    True

    Reference:
        Polyak and Juditsky, Acceleration of stochastic approximation by
        averaging, SIAM J. Control Optim. 1992; timm `ModelEmaV3`.
    """

    def __init__(
        self,
        decay: float = 0.999,
        warmup: bool = True,
        warmup_power: float = 2.0 / 3.0,
        update_every: int = 1,
        start_step: int = 0,
        average_non_trainable: bool = True,
        swap_for_eval: bool = True,
        ema_at_end: bool = True,
        backup: keras.callbacks.BackupAndRestore | None = None,
    ):
        super().__init__(backup)
        self.decay = utils.check_float(
            "decay", decay, 0.0, 1.0, low_inclusive=False, high_inclusive=False
        )
        self.warmup = utils.check_bool("warmup", warmup)
        self.warmup_power = utils.check_float(
            "warmup_power", warmup_power, 0.0, low_inclusive=False
        )
        self.update_every = utils.check_int("update_every", update_every, 1)
        self.start_step = utils.check_int("start_step", start_step, 0)
        self.average_non_trainable = utils.check_bool(
            "average_non_trainable", average_non_trainable
        )
        self.swap_for_eval = utils.check_bool("swap_for_eval", swap_for_eval)
        self.ema_at_end = utils.check_bool("ema_at_end", ema_at_end)
        self._clear()

    def _clear(self):
        self._owner = None  # (model, optimizer) the variables belong to
        self._ema_vars = []
        self._step = None
        self._count = None
        self._swapped = None  # 1 while the model holds the EMA weights
        self._tracked = []
        self._slots = []  # ("t" | "n", index in model.(non_)trainable_variables)
        self._depth = 0  # nesting of swap_in (fit -> evaluate -> ...)
        self._initialized = False
        self._hook = None
        self.training_weights = None
        self.ema_weights = None

    def get_config(self):
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "warmup_power": self.warmup_power,
            "update_every": self.update_every,
            "start_step": self.start_step,
            "average_non_trainable": self.average_non_trainable,
            "swap_for_eval": self.swap_for_eval,
            "ema_at_end": self.ema_at_end,
        }

    # -- variables ---------------------------------------------------------

    @property
    def averaged_variables(self) -> list:
        """The model variables that are averaged (in the order of the EMA)."""
        return list(self._tracked)

    def _setup(self, model):
        optimizer = model.optimizer
        if optimizer is None:
            raise ValueError("EMAWeights needs a compiled model (no optimizer).")
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        slots, tracked = [], []
        for i, v in enumerate(model.trainable_variables):
            if _is_float(v):
                slots.append(("t", i))
                tracked.append(v)
        if self.average_non_trainable:
            for i, v in enumerate(model.non_trainable_variables):
                if _is_float(v):
                    slots.append(("n", i))
                    tracked.append(v)
        opt_vars = optimizer.variables
        reuse = (
            self._owner is not None
            and self._owner[0] is model
            and self._owner[1] is optimizer
            and len(self._ema_vars) == len(tracked)
            and self._step is not None
            and self._swapped is not None
            and any(v is self._step for v in opt_vars)
            and any(v is self._swapped for v in opt_vars)
        )
        if not reuse:
            strategy = getattr(model, "distribute_strategy", None)
            scope = strategy.scope() if strategy is not None else _null()
            with scope:
                self._ema_vars = [
                    optimizer.add_variable(
                        tuple(v.shape),
                        dtype=v.dtype,
                        aggregation="only_first_replica",
                        name=f"ema_{i}",
                    )
                    for i, v in enumerate(tracked)
                ]
                self._step = optimizer.add_variable(
                    (), dtype="int32", aggregation="only_first_replica", name="ema_step"
                )
                self._count = optimizer.add_variable(
                    (),
                    dtype="int32",
                    aggregation="only_first_replica",
                    name="ema_count",
                )
                self._swapped = optimizer.add_variable(
                    (),
                    dtype="int32",
                    aggregation="only_first_replica",
                    name="ema_swapped",
                )
            self._owner = (model, optimizer)
        self._slots, self._tracked = slots, tracked
        # The average starts as a copy of the weights.
        assign_values(self._ema_vars, read_values(tracked))
        self._step.assign(0)
        self._count.assign(0)
        self._swapped.assign(0)
        self._depth = 0
        self._initialized = True

    def _state_variables(self) -> list:
        """The optimizer variables of the callback (averages, counters, flag)."""
        return [*self._ema_vars, self._step, self._count, self._swapped]

    def _updated(self, emas, values, step, count):
        """New (emas, step, count) after one train step; pure keras.ops."""
        if self.start_step == 0 and self.update_every == 1:
            # The common case: every step is an update (fewer scalar ops).
            due = None
            d = ema_decay(count, self.decay, self.warmup, self.warmup_power)
        else:
            active = keras.ops.greater_equal(step, self.start_step)
            due = keras.ops.logical_and(
                active,
                keras.ops.equal(
                    keras.ops.mod(step - self.start_step, self.update_every), 0
                ),
            )
            d = ema_decay(count, self.decay, self.warmup, self.warmup_power)
            # Before start_step: follow the weights (d = 0); between updates:
            # keep the average (d = 1).
            d = keras.ops.where(due, d, keras.ops.where(active, 1.0, 0.0))
        one_minus_d = 1.0 - d
        new_emas = [
            e + keras.ops.cast(one_minus_d, e.dtype) * (keras.ops.cast(v, e.dtype) - e)
            for e, v in zip(emas, values)
        ]
        new_count = count + (1 if due is None else keras.ops.cast(due, count.dtype))
        return new_emas, step + 1, new_count

    # -- the per-step update ---------------------------------------------------

    def _step_update(self, values, trainable, non_trainable):
        """The hook's update: values = emas + [step, count]; pure keras.ops."""
        emas, step, count = values[:-2], values[-2], values[-1]
        weights = [
            trainable[i] if kind == "t" else non_trainable[i] for kind, i in self._slots
        ]
        emas, step, count = self._updated(emas, weights, step, count)
        return [*emas, step, count]

    # -- swapping ----------------------------------------------------------------

    def _holds_ema(self) -> bool:
        return self._initialized and int(self._swapped.numpy()) == 1

    def _exchange(self):
        """Exchanges the model's tracked weights and the averages (and the flag)."""
        weights = read_values(self._tracked)
        assign_values(self._tracked, read_values(self._ema_vars))
        assign_values(self._ema_vars, weights)
        self._swapped.assign(1 - int(self._swapped.numpy()))

    def _swap_in(self):
        if not self._initialized:
            return
        self._depth += 1
        if self._depth == 1 and not self._holds_ema():
            self._exchange()

    def _swap_out(self):
        if not self._initialized:
            return
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0 and self._holds_ema():
            self._exchange()

    def _training_weights_in(self):
        """Puts the training weights in the model, whatever the nesting."""
        self._depth = 0
        if self._holds_ema():
            self._exchange()

    # -- hooks ---------------------------------------------------------------

    def on_train_begin(self, logs=None):
        model = self.model
        if self._hook is not None:
            self._hook.abort()  # an earlier fit that raised
            self._hook = None
        self._depth = 0
        self.training_weights = None
        self.ema_weights = None
        self._initialized = False
        if model.optimizer is None:
            raise ValueError("EMAWeights needs a compiled model (no optimizer).")
        if self.backup is not None and not model_is_built(model):
            # The backup must load now: it sets the epoch `fit` resumes at.
            raise ValueError(
                "EMAWeights(backup=...) needs a built model: build it before "
                "`fit` (start it with `keras.Input`, or call it on a batch)."
            )
        # Unbuilt models (TensorFlow): just before the first train step.
        call_when_built(model, self._begin)

    def _begin(self):
        model = self.model
        self._setup(model)
        # Loaded once the averages exist: the whole state comes back.
        self._backup.train_begin()
        self._hook = TrainStepHook(
            [*self._ema_vars, self._step, self._count],
            self._step_update,
            on_abort=self._abort,
        )
        self._hook.install(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.model  # noqa: B018 - on JAX, syncs the training state first
        # Training runs on the training weights, also right after a backup
        # written while the model held the EMA weights was loaded.
        self._training_weights_in()

    def on_train_batch_end(self, batch, logs=None):
        self._backup.train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_for_eval:
            self.model  # noqa: B018 - on JAX, syncs the training state first
            self._swap_in()
        # Saved with both sets: the EMA weights in the model (if swapped in),
        # the training weights in the optimizer variables.
        self._backup.epoch_end(epoch, logs)

    def on_test_begin(self, logs=None):
        if self.swap_for_eval:
            self._swap_in()

    def on_test_end(self, logs=None):
        if self.swap_for_eval:
            self._swap_out()

    def on_predict_begin(self, logs=None):
        if self.swap_for_eval:
            self._swap_in()

    def on_predict_end(self, logs=None):
        if self.swap_for_eval:
            self._swap_out()

    def on_train_end(self, logs=None):
        model = self.model
        cancel_when_built(model, self._begin)
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._finish(model, self.ema_at_end)
        self._backup.train_end(logs)

    def _abort(self):
        """The hook's `on_abort`: the fit raised; training weights back in."""
        model = self._model
        cancel_when_built(model, self._begin)
        self._hook = None
        self._finish(model, ema_at_end=False)

    def _finish(self, model, ema_at_end: bool):
        """Ends a fit: training weights, both sets kept, optimizer released."""
        # Back to a known state: the training weights in the model.
        self._training_weights_in()
        self.training_weights = read_values(model.weights)
        if not self._initialized:  # no train step ran
            return
        ema = read_values(self._ema_vars)
        if ema_at_end:
            assign_values(self._tracked, ema)
        self.ema_weights = _full_weights(model, self._tracked, ema)
        # Out of the optimizer until the next fit (the values stay here).
        release_optimizer_variables(self._owner[1], self._state_variables())


def _full_weights(model, tracked, values):
    """`model.weights` values with the tracked ones replaced by `values`."""
    by_id = {id(v): val for v, val in zip(tracked, values)}
    return [by_id.get(id(w), w.numpy()) for w in model.weights]


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
