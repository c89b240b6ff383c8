"""Sanity checks of a training pipeline, before any long training.

The checks of the classic CNN training recipe (cs231n, "babysitting the
learning process"; Karpathy, "A Recipe for Training Neural Networks", 2019):

1. **Initial loss.** With regularization disabled, an untrained classifier
   that predicts every class with equal probability has a cross-entropy of
   ln(C) (2.303 for 10 classes). A loss far from the reference reveals logits
   given to a loss that expects probabilities, a badly scaled initialisation,
   or a leak.
2. **Regularization raises the loss.** Scaling every regularizer up (or
   attaching an L2 penalty where the model has none) must raise the loss.
3. **Learning-rate bracket.** A short sweep names the rates where the loss
   barely moves (too low) and where it explodes or turns NaN (too high).
4. **Overfit a tiny subset.** With regularization off, a capable model
   reaches training accuracy 1.0 *and* a loss near 0 on ~20 examples. A
   double softmax passes check 1 (its initial loss is exactly ln C) but fails
   here: its loss cannot fall near 0. (It runs last: one of the optimizers
   it tries is SGD at the bracket's best rate.)

Each check is one function returning its typed result (`InitialLossResult`,
`RegularizationResult`, `LearningRateBracketResult`, `TinyOverfitResult`, all
`CheckResult`s); `sanity_check` runs them in that order into a `SanityReport`.
Every check runs on clones of the model: the model passed in, its weights,
its optimizer state and its regularizers are left exactly as they were.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kerasreg import utils
from kerasreg._regularizer_slots import KERNEL_REGULARIZER_SLOTS as _KERNEL_SLOTS
from kerasreg.diagnostics import _common as C

__all__ = [
    "CheckResult",
    "FitAttempt",
    "InitialLossResult",
    "LearningRateBracketResult",
    "RegularizationResult",
    "SanityReport",
    "SweepRun",
    "TinyOverfitResult",
    "sanity_check",
]

PASS = "pass"
FAIL = "fail"
SKIP = "skip"

DEFAULT_LEARNING_RATES = tuple(10.0**k for k in range(-6, 7))


@dataclasses.dataclass
class CheckResult:
    """The outcome of one sanity check: the fields every check has.

    Each check returns its own subclass (`InitialLossResult`,
    `RegularizationResult`, `LearningRateBracketResult`,
    `TinyOverfitResult`) whose typed fields hold the measured values.

    Attributes:
        name: the check (`"initial loss"`, `"regularization"`, `"lr bracket"`,
            `"tiny overfit"`).
        status: `"pass"`, `"fail"` or `"skip"` (not applicable).
        summary: the numbers in one line, for the report table.
        hint: what to look at when the check fails (empty when it passes).
    """

    name: str
    status: str
    summary: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status != FAIL

    @property
    def numbers(self) -> dict[str, Any]:
        """The measured values (the fields of the subclass), by name."""
        common = {f.name for f in dataclasses.fields(CheckResult)}
        values = dataclasses.asdict(self)
        return {key: value for key, value in values.items() if key not in common}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "numbers": self.numbers,
            "hint": self.hint,
        }


@dataclasses.dataclass(kw_only=True)
class InitialLossResult(CheckResult):
    """The initial-loss check.

    Attributes:
        loss: the untrained model's loss, regularization removed.
        reference: the expected loss (e.g. ln C), or None for a loss without
            one (the check is then skipped).
        reference_formula: how the reference is derived (`"ln(10)"`).
        relative_deviation: `(loss - reference) / reference`, or None.
    """

    loss: float
    reference: float | None
    reference_formula: str
    relative_deviation: float | None = None


@dataclasses.dataclass(kw_only=True)
class RegularizationResult(CheckResult):
    """The regularization check.

    Attributes:
        loss: the loss without regularization.
        regularized_loss: the loss with the boosted regularizers.
        increase: `regularized_loss - loss`.
        attached: the number of kernels given an L2 penalty.
        scaled: the number of existing regularizers scaled up.
    """

    loss: float
    regularized_loss: float
    increase: float
    attached: int
    scaled: int


@dataclasses.dataclass
class SweepRun:
    """One learning rate of the sweep.

    Attributes:
        lr: the learning rate.
        final_loss: the loss after the run, or None when the rate was not run
            (its verdict follows from a neighbour's).
        verdict: `"too low"`, `"ok"` or `"too high"`.
    """

    lr: float
    final_loss: float | None
    verdict: str | None = None


@dataclasses.dataclass(kw_only=True)
class LearningRateBracketResult(CheckResult):
    """The learning-rate bracket check (all None or empty when skipped).

    Attributes:
        start_loss: the loss every run starts from.
        runs: the `SweepRun`s, by increasing rate.
        too_low: the rates whose loss barely moved.
        too_high: the rates whose loss exploded, or went up.
        bracket: `(lowest, highest)` of the other rates, or None.
        best: the rate with the lowest final loss in the bracket, or None.
    """

    start_loss: float | None = None
    runs: list[SweepRun] = dataclasses.field(default_factory=list)
    too_low: list[float] = dataclasses.field(default_factory=list)
    too_high: list[float] = dataclasses.field(default_factory=list)
    bracket: tuple[float, float] | None = None
    best: float | None = None


@dataclasses.dataclass
class FitAttempt:
    """One optimizer's attempt at overfitting the tiny subset.

    Attributes:
        loss: the final loss (inference mode).
        accuracy: the final accuracy (None for regression).
        epochs: the epochs trained.
        passed: whether the goal was met.
        stopped: why training stopped: `"reached"`, `"plateau"`,
            `"non-finite"` or `"epochs"`.
        train_loss: the last step's loss in training mode (before its update).
        train_accuracy: the last step's accuracy in training mode.
        batch_norm_refreshed: whether BatchNorm statistics were re-estimated.
        optimizer: the optimizer, described (`"Adam(lr=0.001) (Adam)"`).
    """

    loss: float
    accuracy: float | None
    epochs: int
    passed: bool
    stopped: str
    train_loss: float
    train_accuracy: float | None
    batch_norm_refreshed: bool
    optimizer: str = ""


@dataclasses.dataclass(kw_only=True)
class TinyOverfitResult(CheckResult):
    """The tiny-overfit check.

    Attributes:
        tiny: the number of examples.
        goal_loss: the loss they must reach.
        loss: the loss of the reported attempt (the successful one, or else
            the closest).
        accuracy: its accuracy (None for regression).
        epochs: its epochs.
        optimizer: its optimizer, described.
        attempts: every `FitAttempt`, in the order they ran.
    """

    tiny: int
    goal_loss: float
    loss: float
    accuracy: float | None
    epochs: int
    optimizer: str
    attempts: list[FitAttempt]


@dataclasses.dataclass
class SanityReport:
    """The result of `sanity_check`: one `CheckResult` per check.

    `report.passed` is True when no check failed (skipped checks do not
    count). `print(report)` shows a table with the numbers of each check and
    the hints of the failed ones; `report["tiny overfit"]` is one check.

    Attributes:
        loss: a readable name of the loss the checks used.
        checks: the `CheckResult`s, in the order they ran.
        notes: remarks that are not checks (e.g. regularization that could
            not be disabled).
    """

    loss: str
    checks: list[CheckResult]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def __getitem__(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"No check named {name!r}. Checks: {self.names()}")

    def names(self) -> list[str]:
        return [c.name for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        rows = [[c.name, c.status.upper(), c.summary] for c in self.checks]
        lines = [
            f"Sanity check ({self.loss}): {verdict}",
            C.format_table(["check", "status", "numbers"], rows),
        ]
        hints = [c for c in self.checks if c.hint and c.status == FAIL]
        if hints:
            lines.append("Hints:")
            lines.extend(f"- {c.name}: {c.hint}" for c in hints)
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines)

    __repr__ = __str__


class _ScaledRegularizer(keras.regularizers.Regularizer):
    """`factor` times an existing regularizer (used on clones only)."""

    def __init__(self, base, factor: float):
        self.base = base
        self.factor = float(factor)

    def __call__(self, x):
        return self.factor * self.base(x)

    def get_config(self):
        return {
            "base": keras.regularizers.serialize(self.base),
            "factor": self.factor,
        }


def _clone(model: keras.Model, edit) -> keras.Model:
    """A clone of `model` whose layer configs went through `edit(config)`."""

    def clone_function(layer):
        config = edit(dict(layer.get_config()))
        return layer.__class__.from_config(config)

    try:
        clone = keras.models.clone_model(
            model, clone_function=clone_function, recursive=True
        )
    except Exception as e:  # Subclassed models cannot be cloned this way.
        raise ValueError(
            "sanity_check needs a Sequential or Functional model it can clone "
            f"with `keras.models.clone_model`; cloning failed with: {e}"
        ) from e
    clone.set_weights(model.get_weights())
    return clone


def _strip_regularizers(config: dict) -> dict:
    for key in list(config):
        if key.endswith("regularizer"):
            config[key] = None
    return config


def _boost_regularizers(strength: float, scale: float, counter: dict):
    def edit(config: dict) -> dict:
        for key in list(config):
            if not key.endswith("regularizer"):
                continue
            if config[key] is not None:
                base = keras.regularizers.get(config[key])
                config[key] = _ScaledRegularizer(base, scale)
                counter["scaled"] += 1
            elif key in _KERNEL_SLOTS:
                config[key] = keras.regularizers.L2(strength)
                counter["attached"] += 1
        return config

    return edit


def _copy_optimizer(optimizer):
    return optimizer.__class__.from_config(optimizer.get_config())


def _accuracy_metric(spec: C.LossSpec):
    if spec.kind == C.SPARSE_CE:
        return keras.metrics.SparseCategoricalAccuracy(name="acc")
    if spec.kind == C.CATEGORICAL_CE:
        return keras.metrics.CategoricalAccuracy(name="acc")
    if spec.kind == C.BINARY_CE:
        return keras.metrics.BinaryAccuracy(
            name="acc", threshold=0.0 if spec.from_logits else 0.5
        )
    return None


def _reference(spec: C.LossSpec, y: np.ndarray, classes: int | None):
    """The expected initial loss and how it is derived, or (None, reason)."""
    if spec.kind in (C.SPARSE_CE, C.CATEGORICAL_CE):
        return math.log(classes), f"ln({classes})"
    if spec.kind == C.BINARY_CE:
        return math.log(2.0), "ln(2)"
    yf = np.asarray(y, dtype="float64")
    # A freshly initialised network outputs values near 0, so its error is
    # that of predicting 0: mean(y^2) (= var(y) for centred targets).
    if spec.kind == C.MSE:
        return float(np.mean(yf**2)), "mean(y^2)"
    if spec.kind == C.MAE:
        return float(np.mean(np.abs(yf))), "mean(|y|)"
    return None, "no reference for this loss"


def _check_labels(spec: C.LossSpec, y: np.ndarray, out_dim: int, num_classes):
    """Validates the targets; returns the number of classes (or None)."""
    if spec.kind == C.SPARSE_CE:
        classes = num_classes if num_classes is not None else out_dim
        if classes < 2:
            raise ValueError(
                "Sparse categorical crossentropy needs at least 2 classes; the "
                f"model outputs {out_dim} value(s). Pass `num_classes`."
            )
        if num_classes is not None and out_dim not in (num_classes,):
            raise ValueError(
                f"The model outputs {out_dim} values per example but "
                f"num_classes={num_classes}."
            )
        labels = np.asarray(y)
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError("Labels `y` must be integer class indices.")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= classes:
            raise ValueError(
                f"Labels out of range: expected integers in [0, {classes - 1}] "
                f"for {classes} classes. Received labels in [{lo}, {hi}]."
            )
        return classes
    if spec.kind == C.CATEGORICAL_CE:
        yy = np.asarray(y, dtype="float64")
        if yy.ndim < 2 or yy.shape[-1] != out_dim:
            raise ValueError(
                "Categorical crossentropy needs one-hot targets of width "
                f"{out_dim}. Received targets of shape {yy.shape}."
            )
        if np.any(yy < 0) or np.any(np.abs(yy.sum(-1) - 1) > 1e-3):
            raise ValueError("Categorical targets must be one-hot rows summing to 1.")
        return out_dim
    if spec.kind == C.BINARY_CE:
        yy = np.asarray(y, dtype="float64")
        if np.any(yy < 0) or np.any(yy > 1):
            raise ValueError(
                "Binary crossentropy targets must lie in [0, 1]. Received "
                f"targets in [{yy.min():g}, {yy.max():g}]."
            )
        return 2
    return None


def _loss_value(spec: C.LossSpec, y, pred) -> float:
    fn = keras.losses.get(spec.loss) if isinstance(spec.loss, str) else spec.loss
    y = np.asarray(y)
    if spec.kind != C.SPARSE_CE and y.size == int(np.prod(pred.shape)):
        # As `fit` does: (n,) targets against (n, 1) outputs, not broadcast.
        y = y.reshape(tuple(pred.shape)).astype(keras.backend.floatx())
    return float(keras.ops.convert_to_numpy(keras.ops.mean(fn(y, pred))))


def _accuracy(spec: C.LossSpec, y: np.ndarray, pred: np.ndarray) -> float | None:
    if spec.kind == C.SPARSE_CE:
        return float(np.mean(pred.argmax(-1) == y.reshape(len(y))))
    if spec.kind == C.CATEGORICAL_CE:
        return float(np.mean(pred.argmax(-1) == y.argmax(-1)))
    if spec.kind == C.BINARY_CE:
        cut = 0.0 if spec.from_logits else 0.5
        return float(np.mean((pred > cut) == (y.reshape(pred.shape) > 0.5)))
    return None


def _evaluate(model, spec, x, y, batch_size: int) -> tuple[float, float | None]:
    """The loss (with any regularization) and accuracy, by eager calls.

    Eager calls in inference mode need no compiled function, which keeps the
    checks fast; equal batches weigh the same.
    """
    n = C.num_examples(x)
    size = min(batch_size, n)
    total, seen, preds = 0.0, 0, []
    for begin in range(0, n - size + 1, size):
        part = slice(begin, begin + size)
        pred = model(C.take(x, part), training=False)
        loss = _loss_value(spec, y[part], pred)
        loss += sum(float(keras.ops.convert_to_numpy(v)) for v in model.losses)
        total += loss * size
        seen += size
        preds.append(np.asarray(keras.ops.convert_to_numpy(pred), dtype="float64"))
    pred = np.concatenate(preds)
    if not np.all(np.isfinite(pred)):
        return math.nan, None if _accuracy(spec, y[:seen], pred) is None else 0.0
    return total / seen, _accuracy(spec, y[:seen], pred)


def _weights_finite(model) -> bool:
    # Needed on top of the loss: with NaN weights, a clipped cross-entropy
    # can report a loss near 0 (NaN probabilities clip to 1 - epsilon).
    return all(np.all(np.isfinite(w)) for w in model.get_weights())


def _refresh_batch_norm(model, x) -> bool:
    """Sets BatchNorm moving statistics to the statistics of `x` (one batch).

    The checks train on one full batch, so in training mode BatchNorm
    normalises with that batch's statistics, while its moving averages lag
    behind them (momentum 0.99: after 50 steps they are still 40% the
    initial ones). Judged in inference mode, a model that fits the examples
    perfectly would look as if it could not. Re-estimating the statistics on
    the same examples makes inference mode compute what training did (as
    SWA's `update_batch_norm` does after averaging). Returns whether the
    model has BatchNormalization layers.
    """
    from kerasreg.callbacks.swa import update_batch_norm

    return update_batch_norm(model, x, batch_size=C.num_examples(x)) > 0


def _reset_optimizer(optimizer, learning_rate: float) -> None:
    for v in optimizer.variables:
        v.assign(np.zeros(v.shape, dtype=v.dtype))
    optimizer.learning_rate = learning_rate


def _lr_sweep(clone, spec, metric, x, y, rates, steps, init_weights):
    """Full-batch SGD runs of `steps` steps from the same start, one per rate.

    Every run reuses the one compiled train step (`train_on_batch`): only the
    weights, the optimizer state and the learning rate are reset in between.
    Losses are measured in inference mode, with BatchNorm statistics
    re-estimated on the sweep's examples (see `_refresh_batch_norm`). The
    rates run from the middle one outwards: upwards until one is too high
    (every larger rate is then too high as well: divergence only gets worse
    with the step size), downwards until one's drop is under 1% of the best
    drop so far (for small steps the drop grows with the rate, so every
    smaller rate is too low as well); those rates are not run.

    Returns:
        `(start, runs)`: the loss every run starts from and one `SweepRun`
        per rate, by increasing rate.
    """
    n = C.num_examples(x)
    clone.compile(
        optimizer=keras.optimizers.SGD(rates[0]),
        loss=spec.loss,
        metrics=[metric] if metric is not None else None,
    )

    def measured_loss():
        _refresh_batch_norm(clone, x)
        loss = _evaluate(clone, spec, x, y, n)[0]
        return loss if _weights_finite(clone) else math.nan

    clone.set_weights(init_weights)
    start = measured_loss()

    def run_at(lr):
        clone.set_weights(init_weights)
        _reset_optimizer(clone.optimizer, lr)
        losses = []
        for _ in range(steps):
            loss = float(clone.train_on_batch(x, y, return_dict=True)["loss"])
            losses.append(loss)
            # The cs231n training-pipeline notes' rule: a cost above 3x the
            # original is an explosion.
            if not math.isfinite(loss) or loss > 3 * start:
                break
        run = SweepRun(lr, measured_loss())
        values = losses + [run.final_loss]
        if not all(math.isfinite(v) for v in values) or max(values) > 3 * start:
            run.verdict = "too high"
        elif run.final_loss > start:
            run.verdict = "too high"  # Moved up: diverging.
        return run

    # From the middle rate outwards: up until a rate is too high (every
    # larger one is too), then down until one barely moves the loss next to
    # the best drop so far (every smaller one moves it less).
    rates = sorted(rates)
    middle = min(
        range(len(rates)),
        key=lambda i: abs(math.log(rates[i]) - math.log(rates[0] * rates[-1]) / 2),
    )
    runs = []
    best_drop = 0.0
    for i in range(middle, len(rates)):
        run = run_at(rates[i])
        runs.append(run)
        if run.verdict == "too high":
            runs += [SweepRun(lr, None, "too high") for lr in rates[i + 1 :]]
            break
        best_drop = max(best_drop, start - run.final_loss)
    for i in range(middle - 1, -1, -1):
        run = run_at(rates[i])
        runs.append(run)
        if run.verdict == "too high":
            continue
        drop = start - run.final_loss
        best_drop = max(best_drop, drop)
        if best_drop > 1e-4 * abs(start) and drop < 0.01 * best_drop:
            runs += [SweepRun(lr, None, "too low") for lr in rates[:i]]
            break
    runs.sort(key=lambda r: r.lr)
    for run in runs:
        if run.verdict is not None:
            continue
        drop = start - run.final_loss
        if best_drop <= 1e-4 * abs(start) or drop < 0.01 * best_drop:
            run.verdict = "too low"  # Barely moves, next to the best rate.
        else:
            run.verdict = "ok"
    return start, runs


def _fit_tiny(clone, spec, metric, x, y, optimizer, epochs, goal, init_weights):
    """Full-batch training on the tiny subset, one `train_on_batch` per epoch.

    Stops as soon as the goal is met (the step's loss at most `goal` and,
    for classifiers, accuracy 1.0), when the loss is not finite, or after a
    plateau of `max(25, epochs // 4)` epochs without a 0.1% improvement;
    the verdict comes from an evaluation of the final weights.

    Returns:
        A `FitAttempt` (its `optimizer` left for the caller to name).
    """
    clone.set_weights(init_weights)
    clone.compile(
        optimizer=optimizer,
        loss=spec.loss,
        metrics=[metric] if metric is not None else None,
    )
    patience = max(25, epochs // 4)
    best, wait, done, stopped = math.inf, 0, 0, "epochs"
    for _ in range(epochs):
        logs = clone.train_on_batch(x, y, return_dict=True)
        done += 1
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            stopped = "non-finite"
            break
        if done % 10 == 0 and not _weights_finite(clone):
            break
        if loss <= goal and (metric is None or float(logs["acc"]) >= 1.0):
            stopped = "reached"
            break
        if loss < best * (1 - 1e-3):
            best, wait = loss, 0
        else:
            wait += 1
            if wait >= patience:
                stopped = "plateau"
                break
    train_loss = loss
    train_acc = None if metric is None else float(logs["acc"])
    batch_norm = _refresh_batch_norm(clone, x)
    loss, acc = _evaluate(clone, spec, x, y, C.num_examples(x))
    loss = loss if _weights_finite(clone) else math.nan
    if not math.isfinite(loss):
        stopped, acc = "non-finite", (None if metric is None else 0.0)
    ok = math.isfinite(loss) and loss <= goal and (acc is None or acc >= 1.0)
    return FitAttempt(
        loss=loss,
        accuracy=acc,
        epochs=done,
        passed=ok,
        stopped=stopped,
        train_loss=train_loss,
        train_accuracy=train_acc,
        batch_norm_refreshed=batch_norm,
    )


def _attempt_rank(attempt: FitAttempt):
    loss = attempt.loss if math.isfinite(attempt.loss) else math.inf
    return (-(attempt.accuracy or 0.0), loss)


def _describe_optimizer(optimizer) -> str:
    lr = optimizer.learning_rate
    try:
        lr = float(keras.ops.convert_to_numpy(lr))
        return f"{type(optimizer).__name__}(lr={lr:.3g})"
    except Exception:  # A learning-rate schedule.
        return type(optimizer).__name__


def _looks_like_probabilities(out: np.ndarray, spec: C.LossSpec) -> bool:
    if np.any(out < -1e-6) or np.any(out > 1 + 1e-6):
        return False
    if spec.kind in (C.SPARSE_CE, C.CATEGORICAL_CE):
        return bool(np.all(np.abs(out.sum(-1) - 1.0) < 1e-3))
    return True


@dataclasses.dataclass
class _Context:
    """What the four checks share: the data, the loss and the unregularized clone.

    Attributes:
        spec: the loss being checked.
        reference: its expected initial loss, or None.
        reference_formula: how the reference is derived.
        clone: the model without regularizers, which the fits train.
        init_weights: its (the model's) initial weights.
        outputs: the untrained clone's outputs on up to 64 examples.
        start: the untrained clone's loss on the evaluation subset.
        x_eval: the evaluation subset's inputs.
        y_eval: its targets.
        batch_size: the evaluation batch size.
        x: all the inputs.
        y: all the targets.
        order: the seeded permutation the subsets are drawn from.
    """

    spec: C.LossSpec
    reference: float | None
    reference_formula: str
    clone: keras.Model
    init_weights: list
    outputs: np.ndarray
    start: float
    x_eval: Any
    y_eval: np.ndarray
    batch_size: int
    x: Any
    y: np.ndarray
    order: np.ndarray

    def subset(self, size: int):
        """The first `size` examples of the permutation (in data order)."""
        index = np.sort(self.order[:size])
        return C.take(self.x, index), self.y[index]


def _initial_loss_hint(ctx: _Context) -> str:
    out, spec, start, reference = ctx.outputs, ctx.spec, ctx.start, ctx.reference
    if not np.all(np.isfinite(out)):
        return (
            "the untrained model outputs NaN or inf: check the inputs for "
            "NaN/inf values, the initial weights and any custom layer "
            "(a division by zero, a log of a negative number)."
        )
    probabilities = _looks_like_probabilities(out, spec)
    if spec.is_classification and not spec.from_logits and not probabilities:
        return (
            "the model outputs logits (values outside [0, 1]"
            + (" or rows not summing to 1" if spec.kind != C.BINARY_CE else "")
            + ") but the loss expects probabilities (from_logits=False): "
            "add a softmax/sigmoid output or use from_logits=True."
        )
    if not math.isfinite(start):
        return "the loss is not finite at initialisation: check the inputs and the output activation."
    if start > reference:
        return (
            "the untrained model is too confident: the initial weights "
            "are badly scaled (use a smaller init for the last layer) or "
            "the inputs are not normalised."
        )
    return (
        "the loss is below chance before training: the model is "
        "already trained, or the labels leak into the inputs."
    )


def _check_initial_loss(ctx: _Context, tolerance: float) -> InitialLossResult:
    """Check 1: the untrained, unregularized loss against its reference."""
    start, reference, formula = ctx.start, ctx.reference, ctx.reference_formula
    numbers = {"loss": start, "reference": reference, "reference_formula": formula}
    if reference is None:
        summary = f"loss {C.fmt(start)} ({formula})"
        return InitialLossResult("initial loss", SKIP, summary, **numbers)
    deviation = (start - reference) / reference if reference else math.inf
    ok = math.isfinite(start) and abs(deviation) <= tolerance
    summary = (
        f"loss {C.fmt(start)} vs {formula} = {C.fmt(reference)} "
        f"({deviation:+.1%}, tolerance {tolerance:.0%})"
    )
    return InitialLossResult(
        "initial loss",
        PASS if ok else FAIL,
        summary,
        "" if ok else _initial_loss_hint(ctx),
        relative_deviation=deviation,
        **numbers,
    )


def _check_regularization(
    model: keras.Model, ctx: _Context, strength: float, scale: float
) -> RegularizationResult:
    """Check 2: boosted (or attached) regularizers must raise the loss."""
    counter = {"scaled": 0, "attached": 0}
    boosted = _clone(model, _boost_regularizers(strength, scale, counter))
    reg_loss = _evaluate(boosted, ctx.spec, ctx.x_eval, ctx.y_eval, ctx.batch_size)[0]
    start = ctx.start
    increase = reg_loss - start
    ok = math.isfinite(reg_loss) and increase > 1e-4 * max(abs(start), 1e-8)
    what = []
    if counter["attached"]:
        what.append(f"L2({strength:g}) on {counter['attached']} kernel(s)")
    if counter["scaled"]:
        what.append(f"{counter['scaled']} regularizer(s) x{scale:g}")
    return RegularizationResult(
        "regularization",
        PASS if ok else FAIL,
        f"loss {C.fmt(start)} -> {C.fmt(reg_loss)} ({increase:+.4g}) with "
        + (", ".join(what) or "no regularizer slot"),
        ""
        if ok
        else (
            "a stronger penalty did not raise the loss: no layer applies its "
            "regularizer (custom layers must pass it to add_weight), or the "
            "model has no kernel to regularize."
        ),
        loss=start,
        regularized_loss=reg_loss,
        increase=increase,
        attached=counter["attached"],
        scaled=counter["scaled"],
    )


def _check_lr_bracket(
    ctx: _Context, rates: list[float] | None, size: int, steps: int
) -> LearningRateBracketResult:
    """Check 3: which learning rates are too low, which too high."""
    if rates is None:
        return LearningRateBracketResult(
            "lr bracket", SKIP, "no sweep (learning_rates=None)"
        )
    xs, ys = ctx.subset(size)
    metric = _accuracy_metric(ctx.spec)
    start, runs = _lr_sweep(
        ctx.clone, ctx.spec, metric, xs, ys, rates, steps, ctx.init_weights
    )
    low = [r.lr for r in runs if r.verdict == "too low"]
    high = [r.lr for r in runs if r.verdict == "too high"]
    good = [r for r in runs if r.verdict == "ok"]
    numbers = {"start_loss": start, "runs": runs, "too_low": low, "too_high": high}
    if not good:
        hint = (
            "no rate made the loss go down without exploding: "
            + (
                "every rate barely moved the loss (no trainable weights? "
                "vanishing gradients?)"
                if not high
                else "try rates between the too-low and too-high ones, or check "
                "the data scale"
            )
            + "."
        )
        summary = (
            f"too low: {[f'{r:.0e}' for r in low]}, too high: "
            f"{[f'{r:.0e}' for r in high]}"
        )
        return LearningRateBracketResult("lr bracket", FAIL, summary, hint, **numbers)
    best = min(good, key=lambda r: r.final_loss)
    bracket = (min(r.lr for r in good), max(r.lr for r in good))
    parts = []
    if low:
        parts.append(f"too low <= {max(low):.0e}")
    if high:
        parts.append(f"too high >= {min(high):.0e}")
    parts.append(f"bracket [{bracket[0]:.0e}, {bracket[1]:.0e}]")
    parts.append(
        f"best {best.lr:.0e} (loss {C.fmt(start)} -> {C.fmt(best.final_loss)})"
    )
    return LearningRateBracketResult(
        "lr bracket",
        PASS,
        ", ".join(parts),
        bracket=bracket,
        best=best.lr,
        **numbers,
    )


def _same_label_note(spec: C.LossSpec, y_tiny: np.ndarray, tiny: int) -> str | None:
    """A note when the tiny subset has one label only (a trivial check)."""
    if not spec.is_classification or tiny <= 1:
        return None
    labels = y_tiny.argmax(-1) if spec.kind == C.CATEGORICAL_CE else y_tiny
    if len(np.unique(labels)) != 1:
        return None
    return (
        f"the {tiny} tiny-overfit examples all have the same label: "
        "that check is trivially easy; use a larger `tiny`."
    )


def _tiny_overfit_hint(ctx: _Context, attempts: list[FitAttempt]) -> str:
    trainable = sum(int(np.prod(w.shape)) for w in ctx.clone.trainable_weights)
    fitted = [a for a in attempts if a.accuracy is not None and a.accuracy >= 1.0]
    if trainable == 0:
        return "the model has no trainable weights (is it frozen?)."
    if any(a.stopped == "reached" for a in attempts):
        return (
            "in training mode the model fit the examples (the goal was "
            "reached), but not in inference mode: a layer that behaves "
            "differently at inference time (Dropout, BatchNormalization, "
            "a custom `training` branch) changes the outputs too much."
        )
    if fitted:
        return (
            f"training accuracy reaches 1.00 but the loss stays at "
            f"{C.fmt(min(a.loss for a in fitted))}: the outputs cannot "
            "become confident. Usually an activation applied twice (a "
            "double softmax, or softmax/sigmoid outputs fed to a loss "
            "with from_logits=True), or logits fed to a loss with "
            "from_logits=False; or `epochs` is too small."
        )
    return (
        "the model cannot fit a handful of examples: check that inputs "
        "and labels match, the learning rate, the capacity and that the "
        "layers that should learn are trainable."
    )


def _check_tiny_overfit(
    model: keras.Model,
    ctx: _Context,
    xy_tiny: tuple[Any, np.ndarray],
    epochs: int,
    overfit_loss: float | None,
    best_lr: float | None,
) -> TinyOverfitResult:
    """Check 4: the unregularized model must overfit a few examples.

    The model's own optimizer, then Adam, then SGD at the bracket's best rate
    (when there is one), until one reaches the goal.
    """
    if overfit_loss is None:
        base = ctx.reference if ctx.reference else ctx.start
        goal = 0.05 * base if math.isfinite(base) else 0.0
    else:
        goal = overfit_loss
    xt, yt = xy_tiny
    tiny = C.num_examples(xt)
    candidates = []
    if getattr(model, "optimizer", None) is not None:
        candidates.append(("model's optimizer", _copy_optimizer(model.optimizer)))
    candidates.append(("Adam", keras.optimizers.Adam(1e-3)))
    if best_lr is not None:
        candidates.append(
            ("SGD at the best bracket rate", keras.optimizers.SGD(best_lr))
        )
    if not ctx.clone.trainable_weights:
        # Nothing can learn: no optimizer would change the loss.
        candidates = candidates[:1]
        epochs = 1
    attempts = []
    for label, optimizer in candidates:
        name = _describe_optimizer(optimizer)
        attempt = _fit_tiny(
            ctx.clone,
            ctx.spec,
            _accuracy_metric(ctx.spec),
            xt,
            yt,
            optimizer,
            epochs,
            goal,
            ctx.init_weights,
        )
        attempt.optimizer = f"{name} ({label})"
        attempts.append(attempt)
        if attempt.passed:
            break
    passed = attempts[-1].passed
    # The report shows the successful attempt, or else the closest one.
    last = attempts[-1] if passed else min(attempts, key=_attempt_rank)
    acc_text = "" if last.accuracy is None else f"acc {last.accuracy:.2f}, "
    summary = (
        f"{tiny} examples: {acc_text}loss {C.fmt(last.loss)} "
        f"{'<=' if passed else '>'} {C.fmt(goal)} after {last.epochs} epochs "
        f"with {last.optimizer}"
    )
    if not passed and len(attempts) > 1:
        summary += f" ({len(attempts)} optimizers tried)"
    if last.batch_norm_refreshed:
        summary += f"; BatchNorm statistics re-estimated on the {tiny} examples"
    return TinyOverfitResult(
        "tiny overfit",
        PASS if passed else FAIL,
        summary,
        "" if passed else _tiny_overfit_hint(ctx, attempts),
        tiny=tiny,
        goal_loss=goal,
        loss=last.loss,
        accuracy=last.accuracy,
        epochs=last.epochs,
        optimizer=last.optimizer,
        attempts=attempts,
    )


def sanity_check(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    num_classes: int | None = None,
    tiny: int = 20,
    epochs: int = 200,
    loss: Any = None,
    regularization: float = 1e3,
    regularization_scale: float = 1e3,
    learning_rates: Sequence[float] | None = DEFAULT_LEARNING_RATES,
    sweep_size: int = 128,
    sweep_steps: int = 20,
    eval_size: int = 1024,
    initial_loss_tolerance: float = 0.25,
    overfit_loss: float | None = None,
    batch_size: int = 256,
    seed: int | None = 0,
) -> SanityReport:
    """Runs the sanity checks of the training recipe on clones of `model`.

    The checks, in order (each gives numbers and, when it fails, a hint):

    Subsets (`eval_size`, `sweep_size`, `tiny` examples) are the first
    examples of one seeded random permutation of the data.

    - `"initial loss"`: with every regularizer removed, the loss of the
      untrained model on `eval_size` examples against the
      reference of the loss in use: ln(C) for (sparse) categorical
      cross-entropy, ln 2 for binary cross-entropy, mean(y^2) for MSE and
      mean(|y|) for MAE (a fresh network outputs values near 0). It passes
      within `initial_loss_tolerance` (relative); other losses are skipped.
    - `"regularization"`: every existing regularizer scaled by
      `regularization_scale`, and `keras.regularizers.L2(regularization)`
      attached to each kernel that has none; the loss must go up.
    - `"lr bracket"`: from the same start, `sweep_steps` full-batch steps of
      plain SGD on `sweep_size` examples for each rate of
      `learning_rates`. A rate is *too high* when the loss turns NaN/inf,
      exceeds 3x its start at any step (the rule of the cs231n
      training-pipeline notes) or ends above
      its start; *too low* when its drop is under 1% of the best rate's drop
      (the loss barely moves); the bracket is the range of the other rates.
      The rates run from the middle of the list outwards; rates above a
      too-high one and below a too-low one get the same verdict without
      being ctx. Skipped when `learning_rates` is None.
    - `"tiny overfit"`: `tiny` examples, no regularization,
      full-batch training for up to `epochs` epochs (it stops as soon as the
      goal is reached, or after a long plateau) with, in turn, a fresh copy
      of the model's own optimizer, `Adam(1e-3)` and plain SGD at the best
      rate of the bracket, until one succeeds; the report names which.
      It passes when training accuracy reaches 1.0 (classification) *and* the
      loss falls to `overfit_loss` (default: 5% of the reference initial
      loss, e.g. 0.115 for 10 classes).

    Losses and accuracies are judged in inference mode. BatchNorm's moving
    statistics lag far behind the full-batch statistics the checks train
    with, so before each judgement they are re-estimated on the examples
    just trained on: inference mode then computes what training computed,
    and a BatchNorm network that can fit the tiny subset passes (the
    report says so). If training mode reached the goal but inference mode
    does not, the hint names the layers that behave differently at
    inference time.

    The model passed in is never trained or modified: the checks run on
    clones made with `keras.models.clone_model` (regularizers removed or
    boosted through the layer configs) holding a copy of its weights, each
    compiled with its own new optimizer.

    Args:
        model: a Sequential or Functional single-output Keras model. When it
            is compiled, its loss and optimizer are used.
        x: the training inputs (an array, or a structure of arrays).
        y: the training targets.
        num_classes: the number of classes for sparse labels. Defaults to
            `None` (the size of the model's output).
        tiny: the number of examples of the tiny-overfit check. Defaults to
            `20`.
        epochs: the most epochs of each tiny-overfit attempt. Defaults to
            `200`.
        loss: the loss to check, when the model is not compiled (or to
            override its loss). Defaults to `None` (`model.loss`).
        regularization: the L2 factor attached to kernels without a
            regularizer in the regularization check (Keras' `L2(l2)` adds
            `l2 * sum(w**2)`). Defaults to `1e3`.
        regularization_scale: the factor existing regularizers are scaled by
            in the regularization check. Defaults to `1e3`.
        learning_rates: the rates of the sweep. Defaults to
            `1e-6, 1e-5, ..., 1e6`.
        sweep_size: the number of examples of the sweep. Defaults to `128`.
        sweep_steps: the steps of each sweep ctx. Defaults to `20`.
        eval_size: the number of examples the initial loss is measured on.
            Defaults to `1024`.
        initial_loss_tolerance: the accepted relative deviation of the
            initial loss from its reference. Defaults to `0.25`.
        overfit_loss: the loss the tiny subset must reach. Defaults to
            `None` (5% of the reference, or of the measured initial loss when
            the loss has no reference).
        batch_size: the batch size for evaluation. Defaults to `256`.
        seed: the seed of the random order the subsets are drawn in (the
            tiny, sweep and evaluation subsets are the first examples of one
            seeded permutation, so data sorted by class is no problem).
            Defaults to `0`.

    Returns:
        A `SanityReport` of an `InitialLossResult`, a `RegularizationResult`,
        a `LearningRateBracketResult` and a `TinyOverfitResult`, in that order
        (`report["tiny overfit"].attempts`; `.numbers` has the same values as
        a dict).

    Example:

    >>> import numpy as np, keras, kerasreg
    >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> y = (np.arange(64) % 3).astype("int32")
    >>> small = keras.initializers.RandomNormal(stddev=0.01)
    >>> model = keras.Sequential([keras.Input((8,)),
    ...     keras.layers.Dense(32, activation="relu"),
    ...     keras.layers.Dense(3, activation="softmax", kernel_initializer=small)])
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> report = kerasreg.diagnostics.sanity_check(model, x, y, tiny=10,
    ...     learning_rates=[1e-3, 1e-1, 1e3])
    >>> report.passed
    True

    Reference:
        - [cs231n: Babysitting the learning process](
          https://cs231n.github.io/neural-networks-3/#baby)
        - [Karpathy, A Recipe for Training Neural Networks, 2019](
          https://karpathy.github.io/2019/04/25/recipe/)
    """
    tiny = utils.check_int("tiny", tiny, 1)
    epochs = utils.check_int("epochs", epochs, 1)
    regularization = utils.check_float("regularization", regularization, 0.0)
    if regularization == 0:
        raise utils.invalid_value("regularization", "a float > 0", regularization)
    regularization_scale = utils.check_float(
        "regularization_scale", regularization_scale, 1.0, low_inclusive=False
    )
    sweep_size = utils.check_int("sweep_size", sweep_size, 1)
    sweep_steps = utils.check_int("sweep_steps", sweep_steps, 2)
    eval_size = utils.check_int("eval_size", eval_size, 1)
    batch_size = utils.check_int("batch_size", batch_size, 1)
    initial_loss_tolerance = utils.check_float(
        "initial_loss_tolerance", initial_loss_tolerance, 0.0, low_inclusive=False
    )
    if overfit_loss is not None:
        overfit_loss = utils.check_float("overfit_loss", overfit_loss, 0.0)
    if num_classes is not None:
        num_classes = utils.check_int("num_classes", num_classes, 2)
    rates = None
    if learning_rates is not None:
        rates = sorted(
            utils.check_float("learning_rates", float(r), 0.0, low_inclusive=False)
            for r in learning_rates
        )
        if not rates:
            raise utils.invalid_value(
                "learning_rates", "a non-empty list of rates", learning_rates
            )
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a Keras model. Received: model={model!r}")
    n = C.check_xy(x, y)
    if tiny > n:
        raise ValueError(
            f"Invalid value received for argument `tiny`. Expected at most the "
            f"number of examples ({n}). Received: tiny={tiny}"
        )
    y = np.asarray(y)
    spec = C.describe_loss(loss if loss is not None else getattr(model, "loss", None))
    outputs = getattr(model, "outputs", None)
    if outputs is None or len(outputs) != 1:
        raise ValueError(
            "sanity_check needs a built single-output Sequential or Functional model."
        )
    out_dim = int(outputs[0].shape[-1])
    classes = _check_labels(spec, y, out_dim, num_classes)
    reference, formula = _reference(spec, y, classes)

    noreg = _clone(model, _strip_regularizers)
    notes = []
    order = np.random.default_rng(seed).permutation(n)
    index = np.sort(order[:eval_size])
    x_eval, y_eval = C.take(x, index), y[index]
    probe = noreg(C.take(x, slice(0, min(n, 64))), training=False)
    if noreg.losses:
        notes.append(
            f"{len(noreg.losses)} loss term(s) added by layers could not be "
            "removed by editing regularizer arguments; the fits keep them."
        )
    ctx = _Context(
        spec=spec,
        reference=reference,
        reference_formula=formula,
        clone=noreg,
        init_weights=noreg.get_weights(),
        outputs=np.asarray(keras.ops.convert_to_numpy(probe), dtype="float64"),
        start=_evaluate(noreg, spec, x_eval, y_eval, batch_size)[0],
        x_eval=x_eval,
        y_eval=y_eval,
        batch_size=batch_size,
        x=x,
        y=y,
        order=order,
    )

    # In the docstring's order: the tiny overfit tries the bracket's best rate.
    initial = _check_initial_loss(ctx, initial_loss_tolerance)
    regularized = _check_regularization(
        model, ctx, regularization, regularization_scale
    )
    bracket = _check_lr_bracket(ctx, rates, sweep_size, sweep_steps)
    xy_tiny = ctx.subset(tiny)
    note = _same_label_note(spec, xy_tiny[1], tiny)
    if note is not None:
        notes.append(note)
    overfit = _check_tiny_overfit(
        model, ctx, xy_tiny, epochs, overfit_loss, bracket.best
    )
    return SanityReport(spec.name, [initial, regularized, bracket, overfit], notes)
