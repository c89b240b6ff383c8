"""The monitor / mode / min_delta logic shared by kerasreg's callbacks.

Keras keeps the equivalent private inside `EarlyStopping` and
`ModelCheckpoint`; this is a small public version that our callbacks
(`SmoothedEarlyStopping`, `ExplosionDetector`, ...) share instead of
repeating it.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from kerasreg import utils

_MAX_HINTS = ("acc", "auc", "precision", "recall", "f1", "iou", "top_k", "fbeta")


def resolve_mode(monitor: str, mode: str) -> str:
    """Turns `"auto"` into `"min"` or `"max"` from the metric's name.

    Accuracy-like metrics (names containing `acc`, `auc`, `precision`,
    `recall`, `f1`, `iou`, `top_k`, `fbeta`) are maximised, everything else
    (losses, errors) is minimised.
    """
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(h in name for h in _MAX_HINTS) else "min"


def is_finite(value: Any) -> bool:
    """Whether `value` is a finite real number (False for NaN, inf, None)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class Monitor:
    """Reads a metric from `logs` and decides whether it improved.

    A plain Python object (it survives `copy.deepcopy`), owned by a callback,
    which calls `reset()` in its `on_train_begin`. `get(logs)` returns the
    value as a float, or None with one `UserWarning` per `fit` naming the
    metrics that are in the logs (as Keras's `EarlyStopping` does).
    `improved(current, reference)` applies `mode` and `min_delta` (its sign
    is ignored); `better(a, b)` compares without `min_delta`. NaN and
    infinite values never improve, and `worst` is improved on by every
    finite value.

    Args:
        monitor: Name of the metric in `logs`. Defaults to `"val_loss"`.
        mode: `"min"`, `"max"` or `"auto"` (guessed from the name). Defaults
            to `"auto"`.
        min_delta: Smallest change that counts as an improvement.
            Defaults to `0.0`.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta=0.0):
        if not isinstance(monitor, str) or not monitor:
            raise utils.invalid_value("monitor", "a non-empty metric name", monitor)
        utils.check_choice("mode", mode, ("auto", "min", "max"))
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = abs(utils.check_float("min_delta", min_delta))
        self._warned = False

    @property
    def worst(self) -> float:
        """The value every finite value improves on."""
        return math.inf if self.mode == "min" else -math.inf

    def reset(self) -> None:
        self._warned = False

    def get(self, logs: dict | None, caller: str = "callback") -> float | None:
        """The monitored value as a float, or None (with one warning) if absent."""
        logs = logs or {}
        if self.monitor not in logs:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"{caller}: the monitored metric `{self.monitor}` is not in "
                    f"the logs. Available metrics are: "
                    f"{', '.join(sorted(logs)) or '(none)'}.",
                    stacklevel=3,
                )
            return None
        return float(logs[self.monitor])

    def improved(self, current: float, reference: float) -> bool:
        """Whether `current` beats `reference` by more than `min_delta`.

        NaN and infinite values never improve.
        """
        if not is_finite(current):
            return False
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is strictly better than `b` (no `min_delta`)."""
        if not is_finite(a):
            return False
        if not is_finite(b):
            return True
        return a < b if self.mode == "min" else a > b
