"""Folding a small state update into the model's compiled train step.

Per-batch Python hooks cost: any `on_train_batch_*` method turns off Keras's
asynchronous callback dispatch, and a Python loop over variables per batch is
slow. `EMAWeights` and `SnapshotEnsemble` instead add their per-step work to
the compiled train step: `TrainStepHook` wraps `model.train_step` for the
duration of a `fit` and rebuilds the train function.

The state it updates must be optimizer variables (created with the public
`optimizer.add_variable`, or the optimizer's own learning rate): on the JAX
backend the train step is stateless and only the model's, the optimizer's and
the metrics' variables travel through it.

Models that are not built before `fit` (`keras.Sequential()` filled with
`add`, subclassed models): the JAX backend builds them from the first batch
before the callbacks' `on_train_begin`; the TensorFlow backend (without a
distribution strategy) only builds them while tracing the first train step,
after `on_train_begin`, so the model has no variables yet when a callback
starts. `call_when_built(model, setup)` runs `setup()` at once when the
model is built, and otherwise right before the first train step, once the
model has been built from the first batch's shapes (as Keras builds it:
called on symbolic inputs of the batch's shapes and dtypes; the optimizer is
left to the setup). `release_optimizer_variables` removes variables that a
callback added to the optimizer for the duration of a `fit`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import keras

# model -> the setups waiting for the model to be built (TensorFlow only).
_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_is_built(model) -> bool:
    """Whether `model` and its layers (recursively through sub-models) are built."""
    if not model.built:
        return False
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if not layer.built:
            return False
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
    return True


def call_when_built(model, setup: Callable[[], None]) -> bool:
    """Calls `setup()` now if `model` is built, else before its first train step.

    For use in `on_train_begin`. With an unbuilt model (TensorFlow backend),
    `model.train_function` is wrapped for one call: it builds the model from
    the first batch's shapes, runs the waiting setups (which may rebuild the
    train function, e.g. through `TrainStepHook`) and runs the step. Callbacks
    must call `cancel_when_built(model, setup)` in `on_train_end` (a `fit`
    with no train step never runs it).

    Returns:
        True if `setup` ran now, False if it waits for the first step.
    """
    if model_is_built(model):
        setup()
        return True
    if keras.backend.backend() != "tensorflow" or model.train_function is None:
        # JAX builds the model before `on_train_begin`; anything else is new.
        raise ValueError(
            "This callback needs the model's variables, and the model is not "
            "built. Build it before `fit` (start it with `keras.Input`, or "
            "call it on a batch)."
        )
    _PENDING.setdefault(model, []).append(setup)
    _wrap_train_function(model)
    return False


def cancel_when_built(model, setup: Callable[[], None]) -> None:
    """Forgets a `setup` waiting in `call_when_built` (no-op if it ran)."""
    pending = _PENDING.get(model)
    if pending is None:
        return
    pending[:] = [s for s in pending if s != setup]
    if not pending:
        del _PENDING[model]
        original = getattr(model.train_function, "_kerasreg_original", None)
        if original is not None:
            model.train_function = original


def rebuild_train_function(model) -> None:
    """`model.make_train_function(force=True)`, keeping waiting setups."""
    model.make_train_function(force=True)
    if model in _PENDING:
        _wrap_train_function(model)


def _wrap_train_function(model) -> None:
    original = model.train_function
    if getattr(original, "_kerasreg_original", None) is not None:
        return  # already wrapped

    def first_train_function(iterator):
        setups = _PENDING.pop(model, [])
        if model.train_function is first_train_function:
            model.train_function = original
        if not model_is_built(model):
            _build_from_iterator(model, iterator)
        for setup in setups:
            setup()
        return model.train_function(iterator)

    first_train_function._kerasreg_original = original
    model.train_function = first_train_function


def _build_from_iterator(model, iterator) -> None:
    """Builds `model` on symbolic inputs shaped like the iterator's batches."""
    spec = getattr(iterator, "element_spec", None)
    if spec is None:
        raise ValueError(
            "This callback needs the model's variables before the first train "
            "step, and the model is not built. Build it before `fit` (start it "
            "with `keras.Input`, or call it on a batch)."
        )
    x, _, _ = keras.utils.unpack_x_y_sample_weight(spec)
    inputs = keras.tree.map_structure(
        lambda s: (
            None if s is None else keras.KerasTensor(tuple(s.shape), dtype=s.dtype.name)
        ),
        x,
    )
    model(inputs, training=False)


def release_optimizer_variables(optimizer, variables: Sequence) -> bool:
    """Removes `variables` (added with `optimizer.add_variable`) from `optimizer`.

    Keras has no public way to remove an optimizer variable; this uses the
    optimizer's own `_untrack_variable` (what Keras uses to drop a replaced
    learning-rate variable). The variables keep their values.

    Returns:
        False if this Keras version has no such method (nothing removed).
    """
    untrack = getattr(optimizer, "_untrack_variable", None)
    if untrack is None:
        return False
    known = {id(v) for v in optimizer.variables}
    for variable in variables:
        if variable is not None and id(variable) in known:
            untrack(variable)
    return True


class TrainStepHook:
    """Runs `update` after every train step, inside the compiled function.

    Args:
        variables: Optimizer variables the hook reads and writes.
        update: `update(values, trainable, non_trainable) -> new_values`,
            written with `keras.ops`: `values` are the current values of
            `variables`, `trainable` / `non_trainable` the model's variable
            values after the step (lists in `model.trainable_variables` /
            `model.non_trainable_variables` order). Returns the new values
            of `variables`, in order.
    """

    def __init__(self, variables: Sequence, update: Callable):
        self.variables = list(variables)
        self.update = update
        self._model = None

    @property
    def installed(self) -> bool:
        return self._model is not None

    def install(self, model) -> None:
        """Wraps `model.train_step` and rebuilds the train function."""
        if self.installed:
            self.remove()
        original = model.train_step
        variables, update = self.variables, self.update

        if keras.backend.backend() == "jax":
            index = {id(v): i for i, v in enumerate(model.optimizer.variables)}
            try:
                positions = [index[id(v)] for v in variables]
            except KeyError:
                raise ValueError(
                    "TrainStepHook variables must be optimizer variables."
                ) from None

            def train_step(state, data):
                logs, state = original(state, data)
                trainable, non_trainable, opt_values, metrics = state
                opt_values = list(opt_values)
                new = update(
                    [opt_values[i] for i in positions], trainable, non_trainable
                )
                for i, value in zip(positions, new):
                    opt_values[i] = value
                return logs, (trainable, non_trainable, opt_values, metrics)

        else:

            def train_step(data):
                logs = original(data)
                new = update(
                    [v.value for v in variables],
                    [v.value for v in model.trainable_variables],
                    [v.value for v in model.non_trainable_variables],
                )
                for var, value in zip(variables, new):
                    var.assign(keras.ops.cast(value, var.dtype))
                return logs

        model.train_step = train_step
        rebuild_train_function(model)
        self._model = model

    def remove(self) -> None:
        """Puts the model's own `train_step` back."""
        model, self._model = self._model, None
        if model is None:
            return
        model.__dict__.pop("train_step", None)
        rebuild_train_function(model)
