"""Bootstrap estimates of the bias/variance decomposition of a model family.

For squared error, with `y` the prediction of a model trained on a random
training set, `t` the target and `y* = E[t | x]` the best possible
prediction:

    E[(y - t)^2] = (y* - E[y])^2 + Var(y) + Var(t)
                 =     bias^2    + variance + Bayes error (noise)

For the 0-1 loss of classifiers, Domingos (2000) defines the *main
prediction* `y_m` (the most frequent class over training sets), the bias
`B = [y_m != y*]` and the variance `V = P(y != y_m)`; the expected loss is
`B + c V` with `c = 1` where `B = 0` (variance hurts) and
`c = -P(y = y* | y != y_m)` where `B = 1` (variance helps).

`bias_variance` trains `n_models` models, each on a bootstrap resample of
the training set (the stand-in for "a random training set"), and measures
these quantities on a test set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kerasreg import utils
from kerasreg.diagnostics import _common as C

__all__ = ["BiasVarianceResult", "bias_variance"]


@dataclasses.dataclass
class BiasVarianceResult:
    """The estimates of `bias_variance`.

    Attributes:
        task: `"regression"` (squared error) or `"classification"` (0-1 loss).
        n_models: the number of models trained.
        expected_loss: the test loss averaged over the models (mean squared
            error, or 0-1 error).
        bias: bias^2 (regression) or Domingos' bias (classification). For
            regression without `noise` or `true_fn`, it is bias^2 + noise
            (the two cannot be told apart from one label per input).
        variance: the variance of the predictions across models (regression),
            or Domingos' variance `mean P(y != y_m)` (classification).
        noise: the Bayes error estimate, or None when unknown. For
            classification it is assumed to be 0 (each label is taken as the
            optimal prediction).
        noise_source: how `noise` was obtained.
        net_variance: classification only: the variance's net contribution
            to the loss (unbiased minus biased variance), so that
            `expected_loss == bias + net_variance`.
        unbiased_variance: classification only: variance on examples where
            the main prediction is right (it adds to the loss).
        biased_variance: classification only: variance on examples where the
            main prediction is wrong (it can reduce the loss).
        reading: a one-line interpretation.
        predictions: the test predictions, shape `(n_models, n_test, ...)`.
    """

    task: str
    n_models: int
    expected_loss: float
    bias: float
    variance: float
    noise: float | None
    noise_source: str
    reading: str
    net_variance: float | None = None
    unbiased_variance: float | None = None
    biased_variance: float | None = None
    predictions: Any = dataclasses.field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("predictions")
        return out

    def __str__(self) -> str:
        if self.task == "regression":
            bias_name = "bias^2" if self.noise is not None else "bias^2 + noise"
            rows = [
                ["expected loss (MSE)", C.fmt(self.expected_loss)],
                [bias_name, C.fmt(self.bias)],
                ["variance", C.fmt(self.variance)],
                ["noise", C.fmt(self.noise) + f" ({self.noise_source})"],
            ]
        else:
            rows = [
                ["expected 0-1 loss", C.fmt(self.expected_loss)],
                ["bias", C.fmt(self.bias)],
                ["variance", C.fmt(self.variance)],
                ["  unbiased (adds)", C.fmt(self.unbiased_variance)],
                ["  biased (subtracts)", C.fmt(self.biased_variance)],
                ["net variance", C.fmt(self.net_variance)],
                ["noise", C.fmt(self.noise) + f" ({self.noise_source})"],
            ]
        table = C.format_table(["quantity", "value"], rows)
        return (
            f"Bias/variance ({self.task}, {self.n_models} bootstrap models)\n"
            f"{table}\nReading: {self.reading}"
        )


def _regression_reading(bias: float, variance: float, noise: float | None) -> str:
    if noise is not None and bias + variance < 0.1 * noise:
        return (
            "close to the noise floor: bias^2 + variance is under 10% of the "
            "noise; little is left to gain."
        )
    if variance > bias:
        return (
            f"high variance (variance {C.fmt(variance)} > bias^2 {C.fmt(bias)}): "
            "regularize, add data or average several models."
        )
    return (
        f"high bias (bias^2 {C.fmt(bias)} >= variance {C.fmt(variance)}): use a "
        "bigger model, train longer or regularize less."
    )


def _classification_reading(bias: float, variance: float) -> str:
    if variance > bias:
        return (
            f"high variance (variance {C.fmt(variance)} > bias {C.fmt(bias)}): "
            "regularize, add data or average several models."
        )
    return (
        f"high bias (bias {C.fmt(bias)} >= variance {C.fmt(variance)}): use a "
        "bigger model, train longer or regularize less."
    )


def _labels(pred: np.ndarray, threshold: float) -> np.ndarray:
    if pred.ndim >= 2 and pred.shape[-1] > 1:
        return pred.argmax(-1)
    return (pred.reshape(pred.shape[0], -1)[:, 0] > threshold).astype("int64")


def _domingos(labels: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Domingos' 0-1 decomposition from `labels[m, i]` and targets `t[i]`."""
    n_models, n = labels.shape
    classes = int(max(labels.max(), target.max())) + 1
    counts = np.zeros((n, classes), dtype="int64")
    for m in range(n_models):
        counts[np.arange(n), labels[m]] += 1
    main = counts.argmax(-1)  # Ties go to the smallest class index.
    bias = (main != target).astype("float64")
    variance = (labels != main[None, :]).mean(0)
    # c = P(y = y* | y != y_m) on biased examples: every model that disagrees
    # with the main prediction and agrees with the target.
    disagree = (labels != main[None, :]).sum(0)
    right = (labels == target[None, :]).sum(0)
    c = np.where(disagree > 0, right / np.maximum(disagree, 1), 0.0)
    net = (1 - bias) * variance - bias * c * variance
    return {
        "expected_loss": float((labels != target[None, :]).mean()),
        "bias": float(bias.mean()),
        "variance": float(variance.mean()),
        "unbiased_variance": float(((1 - bias) * variance).mean()),
        "biased_variance": float((bias * variance).mean()),
        "net_variance": float(net.mean()),
    }


def bias_variance(
    build_fn: Callable[[], keras.Model],
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    n_models: int = 10,
    *,
    task: str = "auto",
    noise: float | None = None,
    true_fn: Callable[[Any], Any] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
    bootstrap: bool = True,
    threshold: float = 0.5,
    seed: int | None = 0,
) -> BiasVarianceResult:
    """Estimates bias, variance and noise by training on bootstrap resamples.

    `build_fn()` must return a new compiled model; it is trained with
    `model.fit(x, y, **fit_kwargs)` on a bootstrap resample (n draws with
    replacement, seeded by `seed`) of the training set, `n_models` times,
    and predicts the test set.

    Regression (squared error), with predictions `p[m, i]`, their mean over
    models `p_bar[i]` and `M = n_models`:

    - `variance = mean_i var_m(p[m, i])` (unbiased, `ddof=1`);
    - with `true_fn` (the noise-free function, `y* = true_fn(x_test)`):
      `bias^2 = mean_i (p_bar - y*)^2 - variance / M` (the mean of `M`
      predictions still varies by `variance / M`) and
      `noise = mean_i (y_test - y*)^2`;
    - with `noise` (the known variance of the targets around `y*`):
      `bias^2 = mean_i (p_bar - y_test)^2 - noise - variance / M`;
    - with neither, noise cannot be separated from bias with one label per
      input: `bias` holds bias^2 + noise and `noise` is None.

    Classification (0-1 loss, Domingos 2000): predicted classes (argmax, or
    `> threshold` for a single output) give the main prediction, the bias,
    the variance and its unbiased / biased parts, with each test label taken
    as the optimal prediction (noise 0); `expected_loss == bias +
    net_variance` exactly.

    Args:
        build_fn: a function returning a new compiled Keras model.
        x_train: the training inputs.
        y_train: the training targets.
        x_test: the test inputs.
        y_test: the test targets (class indices for classification).
        n_models: the number of models, at least 2. Defaults to `10`.
        task: `"regression"`, `"classification"` or `"auto"` (integer
            targets mean classification). Defaults to `"auto"`.
        noise: the known noise variance (regression). Defaults to `None`.
        true_fn: the noise-free target function, applied to `x_test`
            (regression). Defaults to `None`.
        fit_kwargs: keyword arguments of `fit` (epochs, batch_size, ...).
            Defaults to `None` (`{"epochs": 10, "verbose": 0}`).
        bootstrap: train on bootstrap resamples; with `False` every model
            sees the whole training set and only the initialisation and the
            data order vary. Defaults to `True`.
        threshold: the decision threshold of single-output classifiers.
            Defaults to `0.5`.
        seed: the seed of the resampling. Defaults to `0`.

    Returns:
        A `BiasVarianceResult` with the numbers and a short reading.

    Example:

    >>> import numpy as np, keras, kerasreg
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(-1, 1, (256, 1)).astype("float32")
    >>> y = 2 * x[:, 0] + rng.normal(0, 0.5, 256).astype("float32")
    >>> def build():
    ...     m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    ...     m.compile(keras.optimizers.Adam(0.1), "mse")
    ...     return m
    >>> r = kerasreg.diagnostics.bias_variance(build, x[:128], y[:128],
    ...     x[128:], y[128:], n_models=3, true_fn=lambda x: 2 * x[:, 0],
    ...     fit_kwargs={"epochs": 3, "batch_size": 8, "verbose": 0})
    >>> 0.1 < r.noise < 0.5
    True

    Reference:
        - [Geman, Bienenstock and Doursat, Neural Networks and the
          Bias/Variance Dilemma, Neural Computation 1992](
          https://doi.org/10.1162/neco.1992.4.1.1)
        - [Domingos, A Unified Bias-Variance Decomposition, ICML 2000](
          https://homes.cs.washington.edu/~pedrod/papers/mlc00a.pdf)
    """
    n_models = utils.check_int("n_models", n_models, 2)
    task = utils.check_choice("task", task, ("auto", "regression", "classification"))
    threshold = utils.check_float("threshold", threshold)
    if noise is not None:
        noise = utils.check_float("noise", noise, 0.0)
    if noise is not None and true_fn is not None:
        raise ValueError("Pass either `noise` or `true_fn`, not both.")
    if not callable(build_fn):
        raise utils.invalid_value("build_fn", "a function returning a model", build_fn)
    n = C.check_xy(x_train, y_train)
    C.check_xy(x_test, y_test)
    y_train = np.asarray(y_train)
    y_test = np.asarray(y_test)
    if task == "auto":
        task = "classification" if y_test.dtype.kind in "uib" else "regression"
    if task == "classification" and (noise is not None or true_fn is not None):
        raise ValueError(
            "`noise` and `true_fn` apply to regression; the 0-1 decomposition "
            "takes each test label as the optimal prediction."
        )
    kwargs = {"epochs": 10, "verbose": 0}
    kwargs.update(fit_kwargs or {})
    rng = np.random.default_rng(seed)

    predictions = []
    for _ in range(n_models):
        index = rng.integers(0, n, size=n) if bootstrap else rng.permutation(n)
        model = build_fn()
        model.fit(C.take(x_train, index), y_train[index], **kwargs)
        predictions.append(np.asarray(model.predict(x_test, verbose=0)))
        del model
    preds = np.stack(predictions).astype("float64")

    if task == "classification":
        labels = np.stack([_labels(p, threshold) for p in preds])
        target = y_test.reshape(len(y_test), -1)
        target = target.argmax(-1) if target.shape[-1] > 1 else target[:, 0]
        target = target.astype("int64")
        if target.min() < 0:
            raise ValueError("Class labels `y_test` must be non-negative integers.")
        parts = _domingos(labels, target)
        return BiasVarianceResult(
            task="classification",
            n_models=n_models,
            noise=0.0,
            noise_source="assumed 0: each label is the optimal prediction",
            reading=_classification_reading(parts["bias"], parts["variance"]),
            predictions=labels,
            **parts,
        )

    m = n_models
    p = preds.reshape(m, len(y_test), -1)
    t = y_test.astype("float64").reshape(len(y_test), -1)
    if p.shape[1:] != t.shape:
        raise ValueError(
            f"Predictions of shape {preds.shape[1:]} do not match the targets "
            f"`y_test` of shape {y_test.shape}."
        )
    p_bar = p.mean(0)
    variance = float(p.var(0, ddof=1).mean())
    expected = float(((p - t[None]) ** 2).mean())
    if true_fn is not None:
        y_star = np.asarray(true_fn(x_test), dtype="float64").reshape(t.shape)
        bias = float(((p_bar - y_star) ** 2).mean()) - variance / m
        noise_value, source = float(((t - y_star) ** 2).mean()), "from true_fn"
    elif noise is not None:
        bias = float(((p_bar - t) ** 2).mean()) - noise - variance / m
        noise_value, source = noise, "given"
    else:
        bias = float(((p_bar - t) ** 2).mean()) - variance / m
        noise_value, source = None, "unknown: included in bias"
    return BiasVarianceResult(
        task="regression",
        n_models=n_models,
        expected_loss=expected,
        bias=bias,
        variance=variance,
        noise=noise_value,
        noise_source=source,
        reading=_regression_reading(bias, variance, noise_value),
        predictions=preds,
    )
