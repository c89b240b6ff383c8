"""Narrowing a keras-tuner search space to the region of the best trials.

The coarse-to-fine recipe (CS231n, "Hyperparameter optimization"): search
coarsely over a wide range with short runs, then search again, with longer
runs, inside the region where the best runs were. These helpers compute that
region for one hyper-parameter at a time; `CoarseToFineOracle` applies them.

A numeric range is kept in the hyper-parameter's own *sampling space*: the
cumulative probability `p` in `[0, 1]` that keras-tuner's `value_to_prob` /
`prob_to_value` convert to and from values. `p` is linear in `log(value)` for
`sampling="log"`, in `value` for `"linear"`, so a narrowed range sampled
uniformly in `p` stays log-uniform where the declared range was. A range is a
JSON-ready dict:

- numeric (`Float`, `Int`): `{"kind": "numeric", "low": p_lo, "high": p_hi,
  "min_value": v_lo, "max_value": v_hi, "sampling": ...}`;
- categorical (`Choice`, `Boolean`): `{"kind": "choice", "values": [...]}`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from keras_tuner.engine.hyperparameters import Boolean, Choice, Float, Int

_EPS = 1e-12


def is_numeric(hp: Any) -> bool:
    """Whether `hp` is a keras-tuner `Float` or `Int`."""
    return isinstance(hp, (Float, Int))


def is_categorical(hp: Any) -> bool:
    """Whether `hp` is a keras-tuner `Choice` or `Boolean`."""
    return isinstance(hp, (Choice, Boolean))


def _n_steps(hp: Any) -> int | None:
    """Number of grid points of a stepped numeric hp, None when continuous."""
    if hp.step is None:
        return None
    return max(len(list(hp.values)), 1)


def value_bounds(hp: Any, low: float, high: float) -> tuple[Any, Any]:
    """The smallest and largest value `hp` can take for `p` in `[low, high]`."""
    top = high
    if _n_steps(hp) is not None or _is_int(hp):
        # `p` = 1 maps one grid cell past the end for discrete values.
        top = max(low, high - _EPS)
    a, b = hp.prob_to_value(low), hp.prob_to_value(top)
    return (a, b) if a <= b else (b, a)


def _is_int(hp: Any) -> bool:
    return isinstance(hp, Int)


def full_range(hp: Any) -> dict | None:
    """The declared range of `hp`, or None for a `Fixed` value."""
    if is_numeric(hp):
        lo, hi = value_bounds(hp, 0.0, 1.0)
        return {
            "kind": "numeric",
            "low": 0.0,
            "high": 1.0,
            "min_value": lo,
            "max_value": hi,
            "sampling": hp.sampling,
        }
    if is_categorical(hp):
        return {"kind": "choice", "values": list(hp.values)}
    return None


def narrow_numeric(
    hp: Any, values: Sequence[Any], previous: dict, margin: float
) -> dict:
    """Narrows a numeric range to the span of `values`, widened by `margin`.

    The span of the best values is taken in `hp`'s sampling space and widened
    on each side by `margin` times the width of the `previous` range (in the
    same space: decades for log sampling), then clipped to the declared range.
    For a stepped hp the range grows to whole grid cells, so every grid point
    the span touches stays reachable.

    Args:
        hp: A keras-tuner `Float` or `Int`.
        values: The values of the best trials (at least one).
        previous: The range of the stage before.
        margin: Widening on each side, a fraction of the previous width.

    Returns:
        The narrowed numeric range dict.
    """
    probs = [min(max(hp.value_to_prob(v), 0.0), 1.0) for v in values]
    width = previous["high"] - previous["low"]
    low = max(0.0, min(probs) - margin * width)
    high = min(1.0, max(probs) + margin * width)
    n = _n_steps(hp)
    if n is not None:
        low = math.floor(low * n + 1e-9) / n
        high = max(math.ceil(high * n - 1e-9) / n, low + 1.0 / n)
        high = min(high, 1.0)
    v_lo, v_hi = value_bounds(hp, low, high)
    return {
        "kind": "numeric",
        "low": low,
        "high": high,
        "min_value": v_lo,
        "max_value": v_hi,
        "sampling": hp.sampling,
    }


def narrow_choice(hp: Any, values: Sequence[Any]) -> dict:
    """Keeps the declared values of a `Choice`/`Boolean` seen in `values`."""
    seen = set(values)
    return {"kind": "choice", "values": [v for v in hp.values if v in seen]}


def sample(hp: Any, range_: dict | None, rng) -> Any:
    """Draws one value of `hp` inside `range_` (the declared space when None).

    `rng` is a `random.Random`. Numeric values are uniform in the sampling
    space (log-uniform for `sampling="log"`), categorical ones uniform over
    the kept values.
    """
    if range_ is None:
        return hp.random_sample(rng.randint(0, 2**31 - 1))
    return value_at(hp, range_, rng.random())


def value_at(hp: Any, range_: dict, u: float) -> Any:
    """The value of `hp` at quantile `u` in `[0, 1)` of `range_`.

    Numeric: the point a fraction `u` along the range in the sampling space
    (so a uniform `u` gives a log-uniform value for `sampling="log"`);
    categorical: the kept value number `floor(u * len(values))`. Equal
    strata of `u` thus give equal strata of the range (see
    `latin_hypercube`).
    """
    if range_["kind"] == "numeric":
        p = range_["low"] + (range_["high"] - range_["low"]) * u
        if _is_int(hp) and _n_steps(hp) is None:
            p = min(p, 1.0 - _EPS)
        return hp.prob_to_value(p)
    kept = range_["values"]
    return kept[min(int(u * len(kept)), len(kept) - 1)]


def latin_hypercube(names: Sequence[str], n: int, rng) -> dict:
    """A Latin hypercube of `n` points: `{name: [u_0, ..., u_{n-1}]}`.

    For every name, the `n` quantiles fall one in each of the strata
    `[k / n, (k + 1) / n)` (uniform inside its stratum), in an order drawn
    independently per name, so any one hyper-parameter covers its whole
    range evenly while the pairs stay random (McKay, Beckman and Conover,
    1979). `rng` is a `random.Random`.
    """
    design = {}
    for name in names:
        strata = list(range(n))
        rng.shuffle(strata)
        design[name] = [(k + rng.random()) / n for k in strata]
    return design


def format_range(range_: dict) -> str:
    """A short human-readable form of a range dict."""
    if range_["kind"] == "numeric":
        return (
            f"[{_fmt(range_['min_value'])}, {_fmt(range_['max_value'])}]"
            f" ({range_['sampling']})"
        )
    return "{" + ", ".join(repr(v) for v in range_["values"]) + "}"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
