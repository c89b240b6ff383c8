"""Data to batches: arrays, `(x, y)` tuples, datasets and generators.

Private plumbing (`update_batch_norm`, `transfer.fine_tune`, `bagging`, the
diagnostics): the names may change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

__all__ = ["fit_arguments", "input_batches", "is_array", "take"]


def _is_dataset(data: Any) -> bool:
    return hasattr(data, "as_numpy_iterator")  # a `tf.data.Dataset`


def is_array(data: Any) -> bool:
    """Whether `data` is one array (NumPy or a backend tensor), not a structure."""
    if isinstance(data, np.ndarray):
        return True
    return (
        hasattr(data, "__array__")
        and not isinstance(data, (list, tuple, dict))
        and not _is_dataset(data)
    )


def _is_xy(data: Any) -> bool:
    """`(x, y)` or `(x, y, sample_weight)` arrays, as `fit` takes them."""
    return isinstance(data, tuple) and len(data) in (2, 3) and is_array(data[0])


def input_batches(
    data: Any, batch_size: int, *, example_rank: int | None = None
) -> Iterator[Any]:
    """Yields the inputs (`x`) of each batch of `data`.

    Args:
        data: An array (cut into batches of `batch_size` rows); `(x, y)` or
            `(x, y, sample_weight)` arrays (`x` cut into batches); a
            `tf.data.Dataset` (iterated as NumPy); or any other iterable of
            batches (a generator, a `keras.utils.PyDataset`), each `x` or
            `(x, y, ...)`.
        batch_size: Rows per batch for array data.
        example_rank: An array of this rank is one example: a batch axis is
            added (a single image, rank 3). Defaults to `None`.
    """
    if is_array(data):
        array = np.asarray(data)
        if example_rank is not None and array.ndim == example_rank:
            array = array[None]
        for start in range(0, len(array), batch_size):
            yield array[start : start + batch_size]
        return
    if _is_xy(data):
        yield from input_batches(data[0], batch_size, example_rank=example_rank)
        return
    for batch in data.as_numpy_iterator() if _is_dataset(data) else data:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def fit_arguments(data: Any, batch_size: int | None) -> dict[str, Any]:
    """The data arguments of `model.fit` for `data`.

    `(x, y)` / `(x, y, sample_weight)` arrays give `x`, `y`,
    (`sample_weight`) and `batch_size`; anything else (a dataset, a
    generator) is passed as `x` alone, batched already.
    """
    if _is_xy(data) or (isinstance(data, tuple) and len(data) == 2):
        names = ("x", "y", "sample_weight")[: len(data)]
        return {**dict(zip(names, data)), "batch_size": batch_size}
    return {"x": data}


def take(x: Any, index: Any) -> Any:
    """Indexes every array of a (nested) structure along the first axis."""
    return keras.tree.map_structure(lambda a: np.asarray(a)[index], x)
