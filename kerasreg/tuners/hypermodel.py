"""A keras-tuner HyperModel that adds the common regularization knobs."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner

from kerasreg import utils

# name -> (default sampling, lowest allowed value, highest allowed value,
#          whether the highest value itself is allowed)
_FLOAT_KNOBS = {
    "learning_rate": ("log", 0.0, None, True),
    "l2": ("log", 0.0, None, True),
    "dropout": ("linear", 0.0, 1.0, False),
    "drop_connect": ("linear", 0.0, 1.0, False),
    "augmentation": ("linear", 0.0, None, True),
}
KNOBS = (*_FLOAT_KNOBS, "ema")
# Knobs the hypermodel applies itself when it compiles the model (`loss` set).
_OPTIMIZER_KNOBS = ("learning_rate", "ema")


def _parse_float_knob(name: str, spec: Any) -> dict:
    sampling, low, high, high_ok = _FLOAT_KNOBS[name]
    bounds = (
        f"in [{low:g}, "
        + ("inf)" if high is None else f"{high:g}")
        + ("]" if high_ok and high is not None else ")")
    )
    if spec is None:
        return {"kind": "off"}
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        value = utils.check_float(
            name,
            spec,
            low,
            high,
            low_inclusive=name != "learning_rate",
            high_inclusive=high_ok,
        )
        return {"kind": "fixed", "value": value}
    expected = (
        f"None (off), a number (fixed) or a tuple (min, max) or (min, max, "
        f"sampling) with min < max, values {bounds}, sampling 'linear' or 'log'"
        " (log needs min > 0)"
    )
    if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
        raise utils.invalid_value(name, expected, spec)
    if len(spec) == 3:
        sampling = spec[2]
        if sampling not in ("linear", "log"):
            raise utils.invalid_value(name, expected, spec)
    lo, hi = utils.check_range(name, spec[:2], low, high, allow_equal=False)
    if high is not None and not high_ok and hi >= high:
        raise utils.invalid_value(name, expected, spec)
    if sampling == "log" and lo <= 0:
        raise utils.invalid_value(
            name,
            f"min > 0 for log sampling (use (min, max, 'linear') to include 0, "
            f"or None to switch `{name}` off). Expected {expected}",
            spec,
        )
    return {"kind": "range", "min": lo, "max": hi, "sampling": sampling}


def _parse_ema(spec: Any) -> dict:
    if spec is None:
        return {"kind": "off"}
    if isinstance(spec, bool):
        return {"kind": "fixed", "value": spec}
    if isinstance(spec, (tuple, list)) and sorted(spec) == [False, True]:
        return {"kind": "boolean"}
    raise utils.invalid_value(
        "ema", "None (off), True/False (fixed) or (False, True) (searched)", spec
    )


def _accepted(build_fn: Callable) -> tuple[bool, set[str] | None]:
    """(takes `hp` first, keyword names it accepts or None for **kwargs)."""
    try:
        params = list(inspect.signature(build_fn).parameters.values())
    except (TypeError, ValueError):  # Builtins / C callables: assume keywords.
        return False, None
    takes_hp = bool(params) and params[0].name == "hp"
    if takes_hp:
        params = params[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return takes_hp, None
    names = {
        p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return takes_hp, names


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Adds learning rate, L2, dropout, DropConnect, augmentation and EMA knobs.

    Wraps a model builder and declares the common regularization
    hyper-parameters for it, so a search over them needs no `hp.Float`
    boilerplate. Each knob is one of:

    - a tuple `(min, max)` or `(min, max, sampling)`: searched as
      `hp.Float(name, min, max, sampling=...)`. Learning rate and L2 sample in
      log space by default (their ranges span decades); the rates and the
      augmentation strength sample linearly by default because their ranges
      usually start at 0, which log sampling cannot reach: pass
      `(0.05, 0.5, "log")` to search a rate in log space;
    - a number: fixed (`hp.Fixed`, so it still shows in the results);
    - `None`: switched off, not declared, passed to the builder as `None`.

    `ema` is `None` (off), `True`/`False` (fixed) or `(False, True)`
    (searched as `hp.Boolean`). Names in `hp`: `"learning_rate"`, `"l2"`,
    `"dropout"`, `"drop_connect"`, `"augmentation"`, `"ema"`.

    How `build_fn` receives the knobs: as keyword arguments with those names,
    each one it declares (or all with `**kwargs`). It may be a plain builder,
    `build_fn(l2, dropout, ...)`, or a keras-tuner one whose first parameter
    is named `hp`, `build_fn(hp, l2, dropout, ...)`, which can declare more
    hyper-parameters of its own on `hp`. Switched-off knobs arrive as `None`.

    Who compiles: when `loss` is given, `build_fn` returns an uncompiled model
    and the hypermodel compiles it with `optimizer` (a name, config or
    instance, re-created per trial) at the trial's `learning_rate`, with
    `use_ema` = the trial's `ema`; `build_fn` then does not receive
    `learning_rate` or `ema` unless it asks for them. Without `loss`,
    `build_fn` compiles the model itself and must accept every knob that is
    not off. A knob that is on but that `build_fn` cannot receive is an error
    at construction. When a trial uses EMA, `fit` adds
    `keras.callbacks.SwapEMAWeights(swap_on_epoch=True)` so that validation
    scores the averaged weights.

    Args:
        build_fn: The model builder (see above).
        learning_rate: Knob spec, > 0. Defaults to `(1e-6, 1e-1)`.
        l2: L2 strength knob spec, >= 0. Defaults to `(1e-6, 1e1)`.
        dropout: Dropout rate knob spec, in [0, 1). Defaults to `(0.0, 0.7)`.
        drop_connect: DropConnect rate knob spec, in [0, 1). Defaults to
            `None`.
        augmentation: Augmentation strength knob spec, >= 0 (its meaning is
            the builder's, e.g. a `RandAugment` factor). Defaults to `None`.
        ema: EMA of the weights on/off. Defaults to `None`.
        optimizer: Optimizer used when the hypermodel compiles. Defaults to
            `"adam"`.
        loss: Loss; when given, the hypermodel compiles. Defaults to `None`.
        metrics: Metrics for that compile. Defaults to `None`.
        name: Name of the hypermodel. Defaults to `None`.
        tunable: As in `keras_tuner.HyperModel`. Defaults to `True`.

    Example:

    >>> def build(l2, dropout):
    ...     reg = keras.regularizers.L2(l2)
    ...     return keras.Sequential([
    ...         keras.Input((3072,)),
    ...         keras.layers.Dense(50, activation="relu", kernel_regularizer=reg),
    ...         keras.layers.Dropout(dropout),
    ...         keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg),
    ...     ])
    >>> hypermodel = RegularizationHyperModel(
    ...     build, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    >>> sorted(hypermodel.knob_names)
    ['dropout', 'l2', 'learning_rate']

    Reference:
        Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization",
        JMLR 2012 (sample learning rate and regularization strength in log
        space).
    """

    def __init__(
        self,
        build_fn: Callable,
        *,
        learning_rate: Any = (1e-6, 1e-1),
        l2: Any = (1e-6, 1e1),
        dropout: Any = (0.0, 0.7),
        drop_connect: Any = None,
        augmentation: Any = None,
        ema: Any = None,
        optimizer: Any = "adam",
        loss: Any = None,
        metrics: Any = None,
        name: str | None = None,
        tunable: bool = True,
    ):
        super().__init__(name=name, tunable=tunable)
        if not callable(build_fn):
            raise utils.invalid_value("build_fn", "a callable", build_fn)
        if learning_rate is None and loss is not None:
            raise utils.invalid_value(
                "learning_rate",
                "a number or a range when `loss` is given (the hypermodel "
                "compiles and sets the learning rate)",
                learning_rate,
            )
        specs = {
            "learning_rate": _parse_float_knob("learning_rate", learning_rate),
            "l2": _parse_float_knob("l2", l2),
            "dropout": _parse_float_knob("dropout", dropout),
            "drop_connect": _parse_float_knob("drop_connect", drop_connect),
            "augmentation": _parse_float_knob("augmentation", augmentation),
            "ema": _parse_ema(ema),
        }
        self.build_fn = build_fn
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self._specs = specs
        self._takes_hp, accepted = _accepted(build_fn)
        handled = set(_OPTIMIZER_KNOBS) if loss is not None else set()
        # Knobs go to `build_fn` by name (all of them to a `**kwargs` builder).
        self._passed = [k for k in specs if accepted is None or k in accepted]
        for knob, spec in specs.items():
            if spec["kind"] != "off" and knob not in self._passed + list(handled):
                raise utils.invalid_value(
                    knob,
                    f"None: `build_fn` ({getattr(build_fn, '__name__', build_fn)})"
                    f" takes no `{knob}` argument (add it to its signature, or "
                    f"switch the knob off with {knob}=None)",
                    _spec_repr(spec),
                )

    @property
    def knob_names(self) -> list[str]:
        """The knobs that are on (declared in `hp`)."""
        return [k for k, s in self._specs.items() if s["kind"] != "off"]

    def declare(self, hp) -> dict[str, Any]:
        """Declares the knobs on `hp` and returns their values (None if off)."""
        values = {}
        for knob, spec in self._specs.items():
            kind = spec["kind"]
            if kind == "off":
                values[knob] = None
            elif kind == "fixed":
                values[knob] = hp.Fixed(knob, spec["value"])
            elif kind == "boolean":
                values[knob] = hp.Boolean(knob)
            else:
                values[knob] = hp.Float(
                    knob, spec["min"], spec["max"], sampling=spec["sampling"]
                )
        return values

    def build(self, hp):
        knobs = self.declare(hp)
        kwargs = {k: knobs[k] for k in self._passed}
        if self._takes_hp:
            model = self.build_fn(hp, **kwargs)
        else:
            model = self.build_fn(**kwargs)
        if self.loss is not None:
            model.compile(
                optimizer=self._make_optimizer(knobs["learning_rate"], knobs["ema"]),
                loss=self.loss,
                metrics=self.metrics,
            )
        return model

    def _make_optimizer(self, learning_rate: float, ema: bool | None):
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            # Never share one optimizer (and its state) between trials.
            optimizer = keras.optimizers.serialize(optimizer)
        optimizer = keras.optimizers.get(optimizer)
        config = optimizer.get_config()
        config["learning_rate"] = float(learning_rate)
        if ema is not None:
            config["use_ema"] = bool(ema)
        return type(optimizer).from_config(config)

    def fit(self, hp, model, *args, **kwargs):
        optimizer = getattr(model, "optimizer", None)
        if hp.values.get("ema") and getattr(optimizer, "use_ema", False):
            callbacks = list(kwargs.get("callbacks") or [])
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
            kwargs["callbacks"] = callbacks
        return model.fit(*args, **kwargs)


def _spec_repr(spec: dict) -> Any:
    if spec["kind"] == "fixed":
        return spec["value"]
    if spec["kind"] == "boolean":
        return (False, True)
    if spec["kind"] == "range":
        return (spec["min"], spec["max"])
    return None
