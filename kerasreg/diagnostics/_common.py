"""Shared helpers of the diagnostics: loss detection, data slicing, cloning.

Private to `kerasreg.diagnostics`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

from kerasreg._batches import take  # noqa: F401  (the checks index with `C.take`)

# Loss kinds the diagnostics know a reference initial loss for.
SPARSE_CE = "sparse_categorical_crossentropy"
CATEGORICAL_CE = "categorical_crossentropy"
BINARY_CE = "binary_crossentropy"
MSE = "mean_squared_error"
MAE = "mean_absolute_error"
OTHER = "other"

_NAMES = {
    "sparse_categorical_crossentropy": SPARSE_CE,
    "sparsecategoricalcrossentropy": SPARSE_CE,
    "categorical_crossentropy": CATEGORICAL_CE,
    "categoricalcrossentropy": CATEGORICAL_CE,
    "binary_crossentropy": BINARY_CE,
    "binarycrossentropy": BINARY_CE,
    "mse": MSE,
    "mean_squared_error": MSE,
    "meansquarederror": MSE,
    "mae": MAE,
    "mean_absolute_error": MAE,
    "meanabsoluteerror": MAE,
}


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """What the diagnostics know about a loss.

    Attributes:
        kind: one of the module-level kinds (`SPARSE_CE`, ..., `OTHER`).
        from_logits: whether the loss applies a softmax / sigmoid itself.
        name: a readable name for reports.
        loss: the loss to compile a clone with (a fresh copy of the user's).
    """

    kind: str
    from_logits: bool
    name: str
    loss: Any

    @property
    def is_classification(self) -> bool:
        return self.kind in (SPARSE_CE, CATEGORICAL_CE, BINARY_CE)


def describe_loss(loss: Any) -> LossSpec:
    """Detects the kind of `loss` (a string, a `keras.losses.Loss` or a function)."""
    if loss is None:
        raise ValueError(
            "The model is not compiled and no `loss` was given: compile the "
            "model first or pass `loss=`."
        )
    if isinstance(loss, (dict, list, tuple)):
        raise ValueError(
            "Only single-output models with one loss are supported. "
            f"Received: loss={loss!r}"
        )
    if isinstance(loss, str):
        key = loss.lower()
        kind = _NAMES.get(key, OTHER)
        return LossSpec(kind, False, loss, loss)
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        key = type(loss).__name__.lower()
        kind = _NAMES.get(key, OTHER)
        from_logits = bool(config.get("from_logits", False))
        copy = keras.losses.deserialize(keras.losses.serialize(loss))
        label = type(loss).__name__ + ("(from_logits=True)" if from_logits else "")
        return LossSpec(kind, from_logits, label, copy)
    if callable(loss):
        name = getattr(loss, "__name__", type(loss).__name__)
        return LossSpec(_NAMES.get(name.lower(), OTHER), False, name, loss)
    raise ValueError(f"Unsupported loss. Received: loss={loss!r}")


def num_examples(x: Any) -> int:
    """The number of examples in an array or a nested structure of arrays."""
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("Received empty inputs `x`.")
    return int(np.shape(leaves[0])[0])


def check_xy(x: Any, y: Any) -> int:
    """Checks that `x` and `y` hold the same number of examples; returns it."""
    n = num_examples(x)
    ny = int(np.shape(y)[0])
    if n != ny:
        raise ValueError(
            "`x` and `y` must hold the same number of examples. "
            f"Received: {n} inputs and {ny} targets."
        )
    if n == 0:
        raise ValueError("Received no examples (`x` is empty).")
    return n


def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def fmt(value: float | None, digits: int = 4) -> str:
    """Formats a number for reports: fixed for ordinary values, else `g`."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{max(digits - 2, 1)}e}"
    return f"{value:.{digits}f}"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with left-aligned columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
