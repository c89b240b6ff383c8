"""Combining several class-probability predictions into one.

Shared by `Ensemble` (members) and `TestTimeAugmentation` (views). Private
plumbing: the names may change.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from kerasreg import utils

__all__ = ["EPSILON", "REDUCTIONS", "reduce_probabilities"]

REDUCTIONS = ("mean", "geometric_mean", "vote", "max")

# The smallest probability a log is taken of (Keras's default fuzz factor,
# `keras.config.epsilon()`): a member or view that gives a class 0 must not
# send its log to -inf and the geometric mean to NaN.
EPSILON = 1e-7


def _average(values, weights):
    """The (weighted) mean over the first axis; `weights` sum to one."""
    if weights is None:
        return ops.mean(values, axis=0)
    w = ops.convert_to_tensor(list(weights), dtype=values.dtype)
    w = ops.reshape(w, (-1,) + (1,) * (len(values.shape) - 1))
    return ops.sum(w * values, axis=0)


def reduce_probabilities(
    scores,
    reduce: str = "mean",
    weights: Sequence[float] | None = None,
    from_logits: bool = False,
):
    """Combines `(k, ..., classes)` predictions into `(..., classes)` probabilities.

    - `"mean"`: the (weighted) arithmetic mean of the probabilities;
    - `"geometric_mean"`: the (weighted) mean of the log-probabilities,
      renormalised with a softmax (probabilities are clipped at `EPSILON`);
    - `"vote"`: the (weighted) fraction of predictions whose top class is
      each class;
    - `"max"`: per class the largest probability, renormalised (no weights).

    Args:
        scores: The `k` predictions stacked on the first axis: probabilities,
            or logits with `from_logits=True`.
        reduce: One of `REDUCTIONS`. Defaults to `"mean"`.
        weights: `k` non-negative weights summing to one, or `None` for
            equal weights. Defaults to `None`.
        from_logits: Whether `scores` are logits (a softmax is applied
            first). Defaults to `False`.
    """
    if reduce == "geometric_mean":
        if from_logits:
            logs = ops.log_softmax(scores, axis=-1)
        else:
            logs = ops.log(ops.clip(scores, EPSILON, 1.0))
        return ops.softmax(_average(logs, weights), axis=-1)
    probs = ops.softmax(scores, axis=-1) if from_logits else scores
    if reduce == "mean":
        return _average(probs, weights)
    if reduce == "vote":
        top = ops.argmax(probs, axis=-1)
        return _average(ops.one_hot(top, probs.shape[-1], dtype=probs.dtype), weights)
    if reduce == "max":
        if weights is not None:
            raise ValueError(
                "`reduce='max'` takes no weights: a maximum is not weighted."
            )
        top = ops.max(probs, axis=0)
        return top / ops.sum(top, axis=-1, keepdims=True)
    raise utils.invalid_value("reduce", f"one of {REDUCTIONS}", reduce)
