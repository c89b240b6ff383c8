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

A `fit` that raises (Ctrl-C, a full disk, a failing callback) never runs the
callbacks' `on_train_end`, so a hook cannot rely on it to be removed. While a
hook is installed the model's `train_function` and `make_train_function` are
guarded instead: an exception raised by a train step aborts every hook of the
model at once (the callbacks' `on_abort` puts the learning rate and the
training weights back, then the model's own `train_step` returns), and
any later `make_train_function` call that is not the hooks' own (the start of
the next `fit`, with or without the callback, or a `train_on_batch`) aborts
hooks left over from a `fit` that raised elsewhere (in a callback) before it
builds the train function. `remove_train_step_hooks(model)` does the same
explicitly, e.g. to inspect a model right after a `fit` that raised.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import keras

# model -> the setups waiting for the model to be built (TensorFlow only).
_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# model -> the TrainStepHooks installed on it, in installation order.
_INSTALLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Models whose train function the hooks are rebuilding (not a new fit).
_REBUILDING: set = set()


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
    """`model.make_train_function(force=True)`, keeping waiting setups and guards."""
    _REBUILDING.add(id(model))
    try:
        model.make_train_function(force=True)
    finally:
        _REBUILDING.discard(id(model))
    if _INSTALLED.get(model):
        _guard_train_function(model)
    if model in _PENDING:
        _wrap_train_function(model)


def remove_train_step_hooks(model) -> int:
    """Aborts every `TrainStepHook` still installed on `model`.

    A `fit` that ends normally removes its hooks itself. After a `fit` that
    raised, the hooks are removed when a train step raised, and otherwise at
    the start of the model's next `fit`; call this to put the model back at
    once (its own `train_step`, and whatever the callbacks' `on_abort` puts
    back: the learning rate, the training weights).

    Returns:
        The number of hooks removed.
    """
    hooks = list(_INSTALLED.get(model, ()))
    errors = []
    for hook in reversed(hooks):  # the last installed first
        try:
            hook.abort()
        except Exception as e:  # noqa: BLE001 - abort the others, then raise
            errors.append(e)
    if errors:
        raise errors[0]
    return len(hooks)


def _guard_train_function(model) -> None:
    """Wraps `model.train_function`: a raising step aborts the model's hooks."""
    function = model.train_function
    if function is None or getattr(function, "_kerasreg_guarded", False):
        return

    def guarded_train_function(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except BaseException:
            if _INSTALLED.get(model):
                _sync_jax_state(model)
                try:
                    remove_train_step_hooks(model)
                except Exception:  # noqa: BLE001 - the step's error matters
                    pass
            raise

    guarded_train_function._kerasreg_guarded = True
    model.train_function = guarded_train_function


def _guard_make_train_function(model) -> None:
    """A `make_train_function` that first aborts hooks left by a failed fit."""
    if "make_train_function" in model.__dict__:
        return

    def make_train_function(force=False):
        if id(model) not in _REBUILDING and _INSTALLED.get(model):
            # Not the hooks' own rebuild: a new fit (or train_on_batch)
            # started, so the fit that installed them ended with an error.
            remove_train_step_hooks(model)
        return type(model).make_train_function(model, force=force)

    model.make_train_function = make_train_function


def _sync_jax_state(model) -> None:
    """On JAX, writes the training loop's state back into the variables."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        try:
            sync()
        except Exception:  # noqa: BLE001 - best effort while unwinding
            pass


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

    The contract:

    - `install(model)` from a callback's `on_train_begin` (after `fit` built
      its train function), `remove()` from its `on_train_end`. A hook
      installed outside a `fit` counts as left over from a `fit` that
      raised: the next `fit`'s `make_train_function` aborts it.
    - `update` runs once per train step, traced into the compiled step
      (Python side effects happen at tracing only), after the optimizer
      update: it sees the new weights.
    - Several hooks on one model compose in installation order; removing
      one keeps the others running.
    - On JAX the step is stateless: `train_step(state, data)` returns
      `(logs, state)`, `state` being `(trainable, non_trainable, optimizer,
      metrics)` value lists in the order of `model.trainable_variables`,
      `model.non_trainable_variables`, `model.optimizer.variables` and
      `model.metrics_variables`. The hook reads and writes `variables` at
      their positions in the optimizer values (a test pins this layout).
    - If the `fit` raises, the hook is aborted (see the module docstring):
      `on_abort()` runs (on JAX after the training loop's state was written
      back to the variables), then the model's own `train_step` is put back.

    Args:
        variables: Optimizer variables the hook reads and writes.
        update: `update(values, trainable, non_trainable) -> new_values`,
            written with `keras.ops`: `values` are the current values of
            `variables`, `trainable` / `non_trainable` the model's variable
            values after the step (lists in `model.trainable_variables` /
            `model.non_trainable_variables` order). Returns the new values
            of `variables`, in order.
        on_abort: Called without arguments when a `fit` that installed the
            hook ended with an error: puts back what the owner changed for
            the `fit` (a learning rate, the training weights). Defaults to
            `None` (nothing but the `train_step`).
    """

    def __init__(
        self,
        variables: Sequence,
        update: Callable,
        on_abort: Callable[[], None] | None = None,
    ):
        self.variables = list(variables)
        self.update = update
        self.on_abort = on_abort
        self._model = None

    @property
    def installed(self) -> bool:
        return self._model is not None

    def install(self, model) -> None:
        """Wraps `model.train_step` and rebuilds the train function."""
        if self.installed:
            self.remove()
        self._model = model
        _INSTALLED.setdefault(model, []).append(self)
        _guard_make_train_function(model)
        _wrap_train_steps(model)
        rebuild_train_function(model)

    def _wrap(self, model, original):
        """The train step `original` followed by this hook's update."""
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

            return train_step

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

        return train_step

    def abort(self) -> None:
        """Runs `on_abort`, then `remove()` (a `fit` that raised)."""
        if not self.installed:
            return
        try:
            if self.on_abort is not None:
                self.on_abort()
        finally:
            self.remove()

    def remove(self) -> None:
        """Puts the model's own `train_step` back (and the other hooks')."""
        model, self._model = self._model, None
        if model is None:
            return
        hooks = _INSTALLED.get(model, [])
        hooks[:] = [h for h in hooks if h is not self]
        if not hooks:
            _INSTALLED.pop(model, None)
            model.__dict__.pop("make_train_function", None)
            model.__dict__.pop("train_step", None)
        else:
            _wrap_train_steps(model)
        rebuild_train_function(model)


def _wrap_train_steps(model) -> None:
    """`model.train_step`: the model's own, wrapped by each installed hook."""
    model.__dict__.pop("train_step", None)
    step = model.train_step
    for hook in _INSTALLED.get(model, ()):
        step = hook._wrap(model, step)
    model.train_step = step
