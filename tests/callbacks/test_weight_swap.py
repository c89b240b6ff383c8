"""Direct tests of the weight copying and swapping shared by the callbacks."""

import copy

import keras
import numpy as np
import pytest

from kerasreg.callbacks._weight_swap import (
    TrainingState,
    WeightSwapper,
    assign_values,
    read_values,
)
from tests import toolkit


def _variables():
    return [keras.Variable(np.full((2, 2), 1.0)), keras.Variable(np.arange(3.0))]


def test_read_values_copies():
    variables = _variables()
    values = read_values(variables)
    variables[0].assign(np.zeros((2, 2)))
    np.testing.assert_array_equal(values[0], np.ones((2, 2)))  # not a view
    assert all(isinstance(v, np.ndarray) for v in values)


def test_assign_values_checks_lengths():
    variables = _variables()
    assign_values(variables, [np.zeros((2, 2)), np.ones(3)])
    np.testing.assert_array_equal(variables[1].numpy(), np.ones(3))
    with pytest.raises(ValueError, match="Cannot assign 1 values to 2 variables"):
        assign_values(variables, [np.zeros((2, 2))])


def test_training_state_restores_weights_and_optimizer():
    model = toolkit.tiny_model()
    x, y = toolkit.classification_data(32, 8, 3)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    state = TrainingState(model)
    weights = model.get_weights()
    opt = [v.numpy().copy() for v in model.optimizer.variables]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 8
    state.restore(model)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    for v, b in zip(model.optimizer.variables, opt):
        np.testing.assert_array_equal(v.numpy(), b)


def test_training_state_without_optimizer():
    model = toolkit.tiny_model()
    x, y = toolkit.classification_data(32, 8, 3)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    state = TrainingState(model, include_optimizer=False)
    assert state.optimizer is None
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    state.restore(model)
    assert int(model.optimizer.iterations.numpy()) == 8  # left as it is


def test_training_state_of_an_unbuilt_optimizer():
    model = toolkit.tiny_model()  # compiled, no step yet
    state = TrainingState(model)
    assert state.optimizer == []
    state.restore(model)


def test_weight_swapper_swaps_once_when_nested():
    variables = _variables()
    training = read_values(variables)
    other = [np.full((2, 2), 7.0), np.full(3, 7.0)]
    swapper = WeightSwapper()
    assert not swapper.swapped
    swapper.swap_in(variables, other)  # fit's validation ...
    swapper.swap_in(variables, [np.zeros((2, 2)), np.zeros(3)])  # ... evaluate
    assert swapper.swapped
    np.testing.assert_array_equal(variables[0].numpy(), other[0])  # one level
    swapper.swap_out(variables)
    assert swapper.swapped  # still inside the outer swap
    np.testing.assert_array_equal(variables[0].numpy(), other[0])
    swapper.swap_out(variables)
    assert not swapper.swapped
    for v, t in zip(variables, training):
        np.testing.assert_array_equal(v.numpy(), t)
    swapper.swap_out(variables)  # unbalanced: a no-op
    np.testing.assert_array_equal(variables[0].numpy(), training[0])


def test_weight_swapper_reset_and_deepcopy():
    variables = _variables()
    swapper = WeightSwapper()
    swapper.swap_in(variables, [np.zeros((2, 2)), np.zeros(3)])
    clone = copy.deepcopy(swapper)
    assert clone.swapped
    swapper.reset()
    assert not swapper.swapped
    swapper.swap_out(variables)  # forgets the saved values: nothing assigned
    np.testing.assert_array_equal(variables[0].numpy(), np.zeros((2, 2)))
