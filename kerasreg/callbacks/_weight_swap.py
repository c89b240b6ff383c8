"""Swapping weights in and out of a model, shared by kerasreg's callbacks.

`ExplosionDetector` and the learning-rate finder keep a copy of the model's
(and the optimizer's) state and put it back; `EMAWeights` and `SWA` swap
averaged weights in for evaluation and the training weights back afterwards.
All of it goes through the public `keras.Variable.assign` / `.numpy()`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _optimizer_variables(model) -> list:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return []
    return list(optimizer.variables)


class TrainingState:
    """A copy (NumPy arrays) of a model's weights and its optimizer's state.

    The copy is independent of the variables (later steps do not change it).
    `restore(model)` assigns the weights back in `model.weights` order, and
    the optimizer state only if the optimizer has as many variables as when
    the copy was taken (an optimizer built or changed since is left alone).
    An optimizer that is not built yet has no state: `optimizer == []`.

    Args:
        model: The model to copy from.
        include_optimizer: Also copy the optimizer variables (moments,
            iteration counter, ...). Defaults to `True`.
    """

    def __init__(self, model, include_optimizer: bool = True):
        self.weights = [np.array(v.numpy(), copy=True) for v in model.weights]
        self.optimizer = (
            [np.array(v.numpy(), copy=True) for v in _optimizer_variables(model)]
            if include_optimizer
            else None
        )

    def restore(self, model) -> None:
        """Assigns the copied values back (weights, then optimizer state)."""
        assign_values(model.weights, self.weights)
        if self.optimizer is not None:
            opt_vars = _optimizer_variables(model)
            if len(opt_vars) == len(self.optimizer):
                assign_values(opt_vars, self.optimizer)


def assign_values(variables: Sequence, values: Sequence) -> None:
    """Assigns `values[i]` to `variables[i]` (lengths must match)."""
    if len(variables) != len(values):
        raise ValueError(
            f"Cannot assign {len(values)} values to {len(variables)} variables."
        )
    for variable, value in zip(variables, values):
        variable.assign(value)


def read_values(variables: Sequence) -> list[np.ndarray]:
    """Copies the variables' current values into NumPy arrays."""
    return [np.array(v.numpy(), copy=True) for v in variables]


class WeightSwapper:
    """Swaps a set of values into variables and back, one level deep.

    `swap_in(variables, values)` stores the variables' current values and
    assigns `values`; `swap_out(variables)` puts the stored values back.
    Nested calls are counted so that `fit` -> validation `evaluate` -> ...
    only swaps once: an inner `swap_in` assigns nothing, and only the
    `swap_out` matching the outermost `swap_in` restores. A `swap_out`
    without a `swap_in` is a no-op; `reset()` (for `on_train_begin`) forgets
    the stored values without assigning them. A plain Python object: it
    survives `copy.deepcopy`.
    """

    def __init__(self):
        self._saved = None
        self._depth = 0

    @property
    def swapped(self) -> bool:
        return self._depth > 0

    def reset(self) -> None:
        self._saved = None
        self._depth = 0

    def swap_in(self, variables: Sequence, values: Sequence) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        self._saved = read_values(variables)
        assign_values(variables, values)

    def swap_out(self, variables: Sequence) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        assign_values(variables, self._saved)
        self._saved = None
