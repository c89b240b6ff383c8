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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras


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
        model.make_train_function(force=True)
        self._model = model

    def remove(self) -> None:
        """Puts the model's own `train_step` back."""
        model, self._model = self._model, None
        if model is None:
            return
        model.__dict__.pop("train_step", None)
        model.make_train_function(force=True)
