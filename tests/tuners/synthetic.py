"""Helpers shared by the tuner tests: a search on a synthetic objective.

`SyntheticSearch` is a `CoarseToFineSearch` whose `run_trial` trains nothing:
it returns a known function of the hyper-parameters, so the oracle's logic
(stages, narrowing, resume, distribution) is tested in milliseconds per trial.
"""

from __future__ import annotations

import math

import keras_tuner

from kerasreg.tuners import CoarseToFineSearch, trial_epochs, trial_stage

OPTIMUM = {"learning_rate": 1e-3, "l2": 1e-2, "activation": "relu"}


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Float("learning_rate", 1e-6, 1e-1, sampling="log")
    hp.Float("l2", 1e-6, 1e1, sampling="log")
    hp.Choice("activation", ["relu", "tanh", "elu"])
    return hp


def objective_value(values: dict) -> float:
    """A quadratic bowl in log10 space, minimum 0 at `OPTIMUM`."""
    lr = math.log10(values["learning_rate"]) - math.log10(OPTIMUM["learning_rate"])
    l2 = math.log10(values["l2"]) - math.log10(OPTIMUM["l2"])
    penalty = 0.0 if values["activation"] == OPTIMUM["activation"] else 0.5
    return lr * lr + 0.5 * l2 * l2 + penalty


class SyntheticSearch(CoarseToFineSearch):
    """Scores each trial with `objective_value`; logs (trial_id, stage, epochs)."""

    def __init__(self, *args, interrupt_at=None, **kwargs):
        self.calls = []
        self.interrupt_at = interrupt_at
        kwargs.setdefault("objective", keras_tuner.Objective("score", "min"))
        kwargs.setdefault("hyperparameters", space())
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt("simulated interruption")
        hp = trial.hyperparameters
        self.calls.append((trial.trial_id, trial_stage(hp), trial_epochs(hp)))
        return {"score": objective_value(values)}
