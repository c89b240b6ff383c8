"""Model ensembles: averaging members' class probabilities, bagging, snapshots.

An `Ensemble` is a `keras.Model` over member models that all map the same
input to class probabilities (or logits, with `from_logits=True`); it is
saved and loaded as one `.keras` model. `bagging` trains members on
bootstrap resamples (Breiman 1996); `Ensemble.from_snapshots` rebuilds the
members saved by `kerasreg.callbacks.SnapshotEnsemble` (Huang et al. 2017).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras
import numpy as np

from kerasreg import utils
from kerasreg._batches import take
from kerasreg._reduce import REDUCTIONS, reduce_probabilities
from kerasreg._snapshots import (
    last_snapshots,
    load_snapshots,
    snapshot_paths,
)

# "max" is a reduction over views (`TestTimeAugmentation`): a maximum over
# weighted members has no weighted form.
_ENSEMBLE_REDUCTIONS = tuple(r for r in REDUCTIONS if r != "max")


def _check_same_classes(models) -> None:
    """Refuses members whose outputs have different sizes (class counts)."""
    sizes = []
    for m in models:
        try:
            outputs = m.outputs if m.built else None
        except (AttributeError, ValueError):  # a subclassed model
            outputs = None
        if outputs and len(outputs) == 1 and outputs[0].shape[-1] is not None:
            sizes.append(int(outputs[0].shape[-1]))
    if len(set(sizes)) > 1:
        raise ValueError(
            "Invalid value received for argument `models`. Expected models "
            "that all output the same number of classes. Received models "
            f"with output sizes {sizes}"
        )


@utils.register
class Ensemble(keras.Model):
    """A model that combines its members' class probabilities.

    Each member maps the input to class probabilities along the last axis
    (softmax outputs), or to logits with `from_logits=True`. The ensemble
    returns probabilities:

    - `reduce="mean"`: the (weighted) arithmetic mean of the probabilities;
    - `reduce="geometric_mean"`: the (weighted) geometric mean, renormalised
      to sum to one (a product of experts, less sensitive to one confident
      member);
    - `reduce="vote"`: the (weighted) fraction of members whose top class is
      each class (majority vote; `argmax` gives the winner).

    Members are used as they are (not copied); `training` is passed on to
    them. The ensemble is compiled and evaluated like any model, and saved
    and loaded as one `.keras` file (the members' configs and weights
    inside).

    Args:
        models: The member models (at least one), with a common input and
            the same number of classes.
        weights: One non-negative weight per member (normalised to sum 1),
            or None for equal weights. Defaults to `None`.
        reduce: `"mean"`, `"geometric_mean"` or `"vote"`. Defaults to
            `"mean"`.
        from_logits: Whether members output logits (a softmax is applied
            first). Defaults to `False`.

    Call arguments:
        inputs: The members' input.
        training: Passed to the members. Defaults to `False`.

    Input shape:
        The members' input shape.

    Output shape:
        `(batch, ..., classes)`, the members' output shape.

    Example:

    >>> import numpy as np
    >>> def member():
    ...     return keras.Sequential([keras.Input((4,)),
    ...                              keras.layers.Dense(3, activation="softmax")])
    >>> ens = Ensemble([member(), member()])
    >>> ens.predict(np.ones((2, 4)), verbose=0).sum(axis=-1).round(5)
    array([1., 1.], dtype=float32)

    Reference:
        Dietterich, Ensemble methods in machine learning, MCS 2000;
        Huang et al., Snapshot ensembles: train 1, get M for free, ICLR 2017.
    """

    def __init__(
        self,
        models: Sequence[keras.Model],
        weights: Sequence[float] | None = None,
        reduce: str = "mean",
        from_logits: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(models, keras.Model) or not isinstance(models, (list, tuple)):
            raise utils.invalid_value(
                "models",
                "a non-empty list of keras.Model (for one model, pass [model])",
                models,
            )
        models = list(models)
        if not models or not all(isinstance(m, keras.Model) for m in models):
            raise utils.invalid_value(
                "models", "a non-empty list of keras.Model", models
            )
        _check_same_classes(models)
        if weights is not None:
            expected = (
                f"a list of {len(models)} finite non-negative numbers, one per "
                "model, with a positive sum"
            )
            if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
                raise utils.invalid_value("weights", expected, weights)
            try:
                w = [utils.check_float("weights", v, 0.0) for v in weights]
            except ValueError:
                raise utils.invalid_value("weights", expected, weights) from None
            if len(w) != len(models) or sum(w) <= 0:
                raise utils.invalid_value("weights", expected, weights)
            weights = w
        self.members = models
        self.member_weights = weights
        self.reduce = utils.check_choice("reduce", reduce, _ENSEMBLE_REDUCTIONS)
        self.from_logits = utils.check_bool("from_logits", from_logits)

    def build(self, input_shape=None):
        self.built = True

    @property
    def input_shape(self):
        """The members' input shape (they all read the same input)."""
        return self.members[0].input_shape

    def _normalised_weights(self):
        n = len(self.members)
        w = self.member_weights or [1.0] * n
        total = sum(w)
        return [v / total for v in w]

    def call(self, inputs, training=False):
        outputs = [m(inputs, training=training) for m in self.members]
        return reduce_probabilities(
            keras.ops.stack(outputs, axis=0),
            self.reduce,
            self._normalised_weights(),
            from_logits=self.from_logits,
        )

    def compute_output_shape(self, input_shape):
        return self.members[0].compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "models": [keras.saving.serialize_keras_object(m) for m in self.members],
            "weights": self.member_weights,
            "reduce": self.reduce,
            "from_logits": self.from_logits,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["models"] = [
            keras.saving.deserialize_keras_object(m, custom_objects=custom_objects)
            for m in config["models"]
        ]
        return cls(**config)

    @classmethod
    def from_snapshots(
        cls,
        directory: str | os.PathLike,
        build_fn: Callable[[], keras.Model],
        last: int | None = None,
        **kwargs,
    ) -> Ensemble:
        """Builds an ensemble from the snapshots saved in `directory`.

        Args:
            directory: The folder `SnapshotEnsemble` wrote
                `snapshot_XXX.weights.h5` files into.
            build_fn: Returns a fresh (uncompiled or compiled) model of the
                architecture the snapshots were taken from.
            last: Use only the last `last` snapshots. Defaults to all.
            **kwargs: Passed to `Ensemble` (`weights`, `reduce`, ...).
        """
        paths = last_snapshots(snapshot_paths(directory), last)
        if not paths:
            raise ValueError(
                f"No snapshot (snapshot_*.weights.h5) found in {os.fspath(directory)!r}."
            )
        return cls(load_snapshots(paths, build_fn), **kwargs)


def bagging(
    build_fn: Callable[[], keras.Model],
    x,
    y,
    n_models: int,
    *,
    seed: int | None = 0,
    reduce: str = "mean",
    from_logits: bool = False,
    **fit_kwargs,
) -> Ensemble:
    """Trains `n_models` members on bootstrap resamples and ensembles them.

    Each member is a fresh compiled model from `build_fn()`, trained with
    `fit(x[idx], y[idx], **fit_kwargs)` on `len(x)` examples drawn with
    replacement (about 63% distinct). The out-of-bag indices of each member
    are kept in the returned ensemble's `oob_indices`.

    Args:
        build_fn: Returns a fresh, compiled model.
        x: Training inputs (a NumPy array, or a list/dict of arrays).
        y: Training targets (a NumPy array).
        n_models: Number of members, >= 1.
        seed: Seed of the resampling. Defaults to `0`.
        reduce: See `Ensemble`. Defaults to `"mean"`.
        from_logits: See `Ensemble`. Defaults to `False`.
        **fit_kwargs: Passed to each member's `fit` (epochs, batch_size, ...).

    Returns:
        An `Ensemble` of the trained members.

    Reference:
        Breiman, Bagging predictors, Machine Learning 24 (1996).
    """
    n_models = utils.check_int("n_models", n_models, 1)
    rng = np.random.default_rng(seed)
    n = len(y)
    x_parts = (
        x.values()
        if isinstance(x, dict)
        else x
        if isinstance(x, (list, tuple))
        else [x]
    )
    lengths = [len(v) for v in x_parts]
    if any(length != n for length in lengths):
        raise ValueError(
            "Invalid value received for arguments `x` and `y`. Expected as many "
            f"inputs as targets. Received: {lengths if len(lengths) > 1 else lengths[0]} "
            f"inputs and {n} targets"
        )
    members, oob = [], []
    for _ in range(n_models):
        idx = rng.integers(0, n, size=n)
        model = build_fn()
        model.fit(take(x, idx), take(y, idx), **fit_kwargs)
        members.append(model)
        oob.append(np.setdiff1d(np.arange(n), idx))
    ensemble = Ensemble(members, reduce=reduce, from_logits=from_logits)
    ensemble.oob_indices = oob
    return ensemble
