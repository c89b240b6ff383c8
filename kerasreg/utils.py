"""Small shared helpers: argument validation and serialization registration.

Every public layer and callback validates its arguments in `__init__` with
these helpers, so that errors read the same everywhere::

    Invalid value received for argument `rate`. Expected a float value in
    [0, 1). Received: rate=1.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np

PACKAGE = "kerasreg"


def register(cls):
    """Registers `cls` for `.keras` saving under the `kerasreg` package."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def invalid_value(name: str, expected: str, value: Any) -> ValueError:
    """Builds the standard error for a bad argument value."""
    return ValueError(
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}={value!r}"
    )


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Checks that `value` is a finite real number within the given bounds.

    Returns the value as a Python float.
    """
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = (
        f"{'[' if low_inclusive and low is not None else '('}{lo}, "
        f"{hi}{']' if high_inclusive and high is not None else ')'}"
    )
    expected = f"a float value in {interval}"
    if not _is_real(value) or not math.isfinite(float(value)):
        raise invalid_value(name, expected, value)
    v = float(value)
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise invalid_value(name, expected, value)
    if high is not None and (v > high or (v == high and not high_inclusive)):
        raise invalid_value(name, expected, value)
    return v


def check_rate(name: str, value: Any) -> float:
    """Checks a drop rate: a float in [0, 1)."""
    return check_float(name, value, 0.0, 1.0, high_inclusive=False)


def check_int(
    name: str, value: Any, low: int | None = None, high: int | None = None
) -> int:
    """Checks that `value` is an integer within [low, high]."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        if low is not None and high is not None:
            expected = f"an integer in [{low}, {high}]"
        elif low is not None:
            expected = f"an integer >= {low}"
        elif high is not None:
            expected = f"an integer <= {high}"
        else:
            expected = "an integer"
        raise invalid_value(name, expected, value)
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """Checks a boolean flag: `True` / `False` or a NumPy boolean.

    Strings, numbers and other objects are refused rather than converted:
    `bool("False")` is `True`.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise invalid_value(name, "a boolean (True or False)", value)


def check_verbose(name: str, value: Any) -> int:
    """Checks a callback's verbosity: `"auto"` (1), a boolean or an int >= 0."""
    if value == "auto" and isinstance(value, str):
        return 1
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral) and value >= 0:
        return int(value)
    raise invalid_value(name, '"auto", a boolean or an integer >= 0', value)


#: Seeds are unsigned 32-bit integers on every backend (JAX's keys take no
#: more, and no negative value).
SEED_MAX = 2**32 - 1


def check_seed(name: str, value: Any) -> int | None:
    """Checks a random seed: None, or an integer in [0, 2**32 - 1]."""
    if value is None:
        return None
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and 0 <= value <= SEED_MAX
    ):
        return int(value)
    raise invalid_value(name, f"None or an integer in [0, {SEED_MAX}]", value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Checks that `value` is one of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise invalid_value(name, f"one of {options}", value)
    return value


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    allow_equal: bool = True,
    low_exclusive: bool = False,
) -> tuple[float, float]:
    """Checks a `(min, max)` pair of numbers with `low <= min <= max <= high`.

    With `allow_equal=False` the range must not be empty (`min < max`); with
    `low_exclusive=True` its minimum must be above `low` (`min > low`).
    """
    expected = "a tuple `(min, max)` of two numbers with min " + (
        "<= max" if allow_equal else "< max"
    )
    if low is not None:
        expected += f", min {'>' if low_exclusive else '>='} {low:g}"
    if high is not None:
        expected += f", max <= {high:g}"
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise invalid_value(name, expected, value) from None
    if not (_is_real(lo) and _is_real(hi)) or not (
        math.isfinite(lo) and math.isfinite(hi)
    ):
        raise invalid_value(name, expected, value)
    if lo > hi or (lo == hi and not allow_equal):
        raise invalid_value(name, expected, value)
    if low is not None and (lo < low or (lo == low and low_exclusive)):
        raise invalid_value(name, expected, value)
    if high is not None and hi > high:
        raise invalid_value(name, expected, value)
    return float(lo), float(hi)
