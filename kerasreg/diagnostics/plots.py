"""Learning curves: training vs validation, raw and smoothed, gap shaded.

matplotlib is an optional extra (`pip install kerasreg[examples]`): it is
imported only when a plot is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kerasreg import _figures, utils

__all__ = ["plot_history", "smooth"]

_ACCURACY_KEYS = (
    "accuracy",
    "acc",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
)


def smooth(values: Sequence[float], smoothing: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's start-up debiasing.

    `s_t = smoothing * s_{t-1} + (1 - smoothing) * v_t`, divided by
    `1 - smoothing**t` so that the first points are not pulled towards 0.
    Non-finite values are carried over without entering the average.
    """
    smoothing = utils.check_float(
        "smoothing", smoothing, 0.0, 1.0, high_inclusive=False
    )
    values = np.asarray(values, dtype="float64")
    out = np.empty_like(values)
    last, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if not np.isfinite(v):
            out[i] = v
            continue
        last = smoothing * last + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out[i] = last / weight
    return out


def _as_dict(history: Any) -> dict[str, list[float]]:
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping):
        raise ValueError(
            "Expected a Keras `History` or a dict of per-epoch metrics. "
            f"Received: history={history!r}"
        )
    return {str(k): [float(v) for v in vals] for k, vals in logs.items()}


def plot_history(
    history: Any,
    *,
    smoothing: float = 0.6,
    metrics: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    dpi: int = 100,
):
    """Plots training vs validation curves with the generalization gap shaded.

    One panel per metric (by default the loss and the accuracy, when
    logged). Each panel shows the raw per-epoch values as thin lines and
    their exponential moving average (`smooth`) as thick ones, and shades
    the gap between the smoothed training and validation curves: the wider
    it grows, the more the model overfits.

    Args:
        history: a Keras `History` (from `fit`) or a dict `{name: values}`.
        smoothing: the moving-average factor in [0, 1) (0: no smoothing).
            Defaults to `0.6`.
        metrics: the metric names to plot, without the `val_` prefix.
            Defaults to `None` (the loss and the first accuracy metric).
        path: where to save a PNG (written atomically). Defaults to `None`
            (not saved).
        title: a title for the figure. Defaults to `None`.
        dpi: the resolution of the saved PNG. Defaults to `100`.

    Returns:
        The `matplotlib.figure.Figure`, not attached to pyplot (no window
        opens; display it in a notebook by returning it).

    Example:

    >>> import kerasreg
    >>> fig = kerasreg.diagnostics.plot_history(
    ...     {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.9]})
    >>> len(fig.axes)
    1
    """
    smoothing = utils.check_float(
        "smoothing", smoothing, 0.0, 1.0, high_inclusive=False
    )
    dpi = utils.check_int("dpi", dpi, 1)
    logs = _as_dict(history)
    if metrics is None:
        metrics = [k for k in ("loss",) if k in logs]
        metrics += [k for k in _ACCURACY_KEYS if k in logs][:1]
        if not metrics:
            metrics = [k for k in logs if not k.startswith("val_")][:1]
    metrics = list(metrics)
    missing = [m for m in metrics if m not in logs and f"val_{m}" not in logs]
    if not metrics or missing:
        raise ValueError(
            f"Metrics not found in the history: {missing or metrics}. "
            f"Available: {sorted(logs)}"
        )
    fig = _figures.new_figure(figsize=(5.0 * len(metrics), 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, name in zip(axes, metrics):
        curves = {}
        for label, key, color in (
            ("train", name, "tab:blue"),
            ("validation", f"val_{name}", "tab:orange"),
        ):
            if key not in logs or not logs[key]:
                continue
            values = np.asarray(logs[key])
            epochs = np.arange(1, len(values) + 1)
            smoothed = smooth(values, smoothing)
            ax.plot(epochs, values, color=color, alpha=0.3, linewidth=1)
            ax.plot(epochs, smoothed, color=color, linewidth=2, label=label)
            curves[label] = (epochs, smoothed)
        if len(curves) == 2:
            (e1, train), (e2, val) = curves["train"], curves["validation"]
            k = min(len(e1), len(e2))
            ax.fill_between(
                e1[:k],
                train[:k],
                val[:k],
                color="tab:red",
                alpha=0.15,
                label="generalization gap",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    if path is not None:
        _figures.save_figure(fig, path, format="png", dpi=dpi)
    return fig
