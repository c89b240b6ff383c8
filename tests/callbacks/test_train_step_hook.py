"""Direct tests of the train-step hook that `EMAWeights` and `SnapshotEnsemble`
fold their per-step work into, and of the Keras internals it relies on."""

import keras
import numpy as np
import pytest

from kerasreg.callbacks import remove_train_step_hooks
from kerasreg.callbacks._train_step_hook import (
    TrainStepHook,
    call_when_built,
    cancel_when_built,
    model_is_built,
    release_optimizer_variables,
)
from tests import toolkit

STEPS = 4  # 32 examples, batch size 8
requires_jax = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the JAX backend's stateless step"
)


def _data():
    return toolkit.classification_data(32, 8, 3)


def _fit(model, epochs=1, callbacks=()):
    x, y = _data()
    return model.fit(
        x, y, batch_size=8, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks
    )


def _model():
    keras.utils.set_random_seed(0)
    model = toolkit.tiny_model()
    model.optimizer.build(model.trainable_variables)
    return model


def _counter(model, name="steps"):
    return model.optimizer.add_variable((), dtype="int32", name=name)


def _count_update(values, trainable, non_trainable):
    return [values[0] + 1]


class _Hooked(keras.callbacks.Callback):
    """Installs `hooks` for the duration of a fit, as the callbacks do."""

    def __init__(self, *hooks, remove=True):
        super().__init__()
        self.hooks, self.remove = hooks, remove

    def on_train_begin(self, logs=None):
        for hook in self.hooks:
            hook.install(self.model)
            assert hook.installed and "train_step" in self.model.__dict__

    def on_train_end(self, logs=None):
        if self.remove:
            for hook in self.hooks:
                hook.remove()


# -- the JAX state layout the hook relies on ----------------------------------


@requires_jax
def test_jax_train_step_state_layout():
    """`train_step(state, data) -> (logs, state)`, `state` a 4-tuple.

    `TrainStepHook` on JAX reads and writes the optimizer values at the
    positions of `model.optimizer.variables`; a Keras release that changes
    this layout must fail here, not in a user's run.
    """
    model = _model()
    seen = []
    original = model.train_step

    def train_step(state, data):
        assert isinstance(state, tuple) and len(state) == 4
        logs, new_state = original(state, data)
        seen.append((state, new_state))
        return logs, new_state

    model.train_step = train_step
    try:
        model.make_train_function(force=True)
        _fit(model)
    finally:
        del model.train_step
        model.make_train_function(force=True)
    assert seen
    for state in seen[0]:
        assert isinstance(state, tuple) and len(state) == 4
        trainable, non_trainable, optimizer, metrics = state
        groups = [
            (trainable, model.trainable_variables),
            (non_trainable, model.non_trainable_variables),
            (optimizer, model.optimizer.variables),
            (metrics, model.metrics_variables),
        ]
        for values, variables in groups:
            assert len(values) == len(variables)
            for value, variable in zip(values, variables):
                assert tuple(value.shape) == tuple(variable.shape)
    # The iteration counter is in the optimizer values, where the hook
    # expects it (index of `optimizer.iterations` in `optimizer.variables`).
    index = [id(v) for v in model.optimizer.variables].index(
        id(model.optimizer.iterations)
    )
    assert seen[0][1][2][index].dtype == model.optimizer.iterations.dtype


@requires_jax
def test_jax_hook_needs_optimizer_variables():
    model = _model()
    outside = keras.Variable(0, dtype="int32")
    hook = TrainStepHook([outside], _count_update)
    with pytest.raises(ValueError, match="optimizer variables"):
        _fit(model, callbacks=[_Hooked(hook)])
    remove_train_step_hooks(model)


# -- the contract ------------------------------------------------------------


def test_update_runs_once_per_step_inside_the_train_function():
    model = _model()
    steps = _counter(model)
    hook = TrainStepHook([steps], _count_update)
    _fit(model, epochs=2, callbacks=[_Hooked(hook)])
    assert int(steps.numpy()) == 2 * STEPS
    assert not hook.installed
    assert "train_step" not in model.__dict__
    assert "make_train_function" not in model.__dict__
    _fit(model)  # the model's own train step: nothing counts
    assert int(steps.numpy()) == 2 * STEPS


def test_update_sees_the_weights_after_the_step():
    model = _model()
    kernel = model.trainable_variables[0]
    copy = model.optimizer.add_variable(tuple(kernel.shape), name="kernel_copy")

    def update(values, trainable, non_trainable):
        assert len(trainable) == len(model.trainable_variables)
        assert len(non_trainable) == len(model.non_trainable_variables)
        return [trainable[0]]

    _fit(model, callbacks=[_Hooked(TrainStepHook([copy], update))])
    np.testing.assert_allclose(copy.numpy(), kernel.numpy(), rtol=0, atol=0)


def test_two_hooks_compose_and_come_off_in_any_order():
    model = _model()
    a, b = _counter(model, "a"), _counter(model, "b")
    first = TrainStepHook([a], _count_update)
    second = TrainStepHook([b], _count_update)

    class RemoveFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                first.remove()  # the second one keeps running

    _fit(
        model, epochs=2, callbacks=[_Hooked(first, second, remove=False), RemoveFirst()]
    )
    assert (int(a.numpy()), int(b.numpy())) == (STEPS, 2 * STEPS)
    assert second.installed
    second.remove()
    assert "train_step" not in model.__dict__
    assert "make_train_function" not in model.__dict__


def test_raising_step_aborts_every_hook():
    model = _model()
    aborted = []
    steps = _counter(model)
    hook = TrainStepHook([steps], _count_update, on_abort=lambda: aborted.append(1))
    data = toolkit.failing_data(*_data())
    callbacks = [_Hooked(hook), toolkit.arm_at(data, 1)]
    with pytest.raises(BaseException) as info:  # noqa: B017 - TF wraps it
        model.fit(data, epochs=3, verbose=0, callbacks=callbacks)
    assert info.type is KeyboardInterrupt or "KeyboardInterrupt" in str(info.value)
    assert aborted == [1] and not hook.installed
    assert "train_step" not in model.__dict__
    assert remove_train_step_hooks(model) == 0


def test_hooks_left_by_a_failed_fit_come_off_at_the_next_fit():
    model = _model()
    aborted = []
    hook = TrainStepHook(
        [_counter(model)], _count_update, on_abort=lambda: aborted.append(1)
    )

    class Fail(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise OSError("disk full")  # a callback fails: no on_train_end

    with pytest.raises(OSError, match="disk full"):
        _fit(model, callbacks=[_Hooked(hook), Fail()])
    assert hook.installed and aborted == []
    _fit(model)  # the next fit's make_train_function aborts it first
    assert aborted == [1] and not hook.installed
    assert "train_step" not in model.__dict__


def test_hook_installed_outside_a_fit_is_undone_by_the_next_fit():
    model = _model()
    aborted = []
    steps = _counter(model)
    hook = TrainStepHook([steps], _count_update, on_abort=lambda: aborted.append(1))
    hook.install(model)
    _fit(model)
    assert aborted == [1] and not hook.installed
    assert int(steps.numpy()) == 0


def test_remove_train_step_hooks_is_explicit():
    model = _model()
    hooks = [TrainStepHook([_counter(model, n)], _count_update) for n in "ab"]
    _fit(model, callbacks=[_Hooked(*hooks, remove=False)])
    assert remove_train_step_hooks(model) == 2
    assert not any(h.installed for h in hooks)
    assert remove_train_step_hooks(model) == 0


# -- building and optimizer variables -------------------------------------------


def test_model_is_built_checks_nested_models():
    inner = keras.Sequential([keras.layers.Dense(2)])
    outer = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    assert model_is_built(outer)
    outer.add(inner)  # built with the outer model's shapes
    assert model_is_built(outer) and model_is_built(inner)
    assert not model_is_built(keras.Sequential([keras.layers.Dense(2)]))


def test_call_when_built_runs_at_once_for_a_built_model():
    model = _model()
    ran = []
    assert call_when_built(model, lambda: ran.append(1)) is True
    assert ran == [1]
    cancel_when_built(model, lambda: None)  # nothing waits: a no-op


@toolkit.requires_tensorflow
def test_call_when_built_waits_for_the_first_step_of_an_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    ran = []

    class Setup(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            ran.append(call_when_built(self.model, lambda: ran.append(model.built)))

    _fit(model, callbacks=[Setup()])
    assert ran == [False, True]  # waited, then ran on the built model


def test_release_optimizer_variables():
    model = _model()
    n = len(model.optimizer.variables)
    extra = [_counter(model, "x"), _counter(model, "y")]
    assert len(model.optimizer.variables) == n + 2
    assert release_optimizer_variables(model.optimizer, extra) is True
    assert len(model.optimizer.variables) == n
    extra[0].assign(3)  # the variables live on, outside the optimizer
    assert int(extra[0].numpy()) == 3
