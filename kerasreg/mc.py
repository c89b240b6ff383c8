"""Monte-Carlo prediction: mean and spread of a stochastic model's predictions."""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np

from kerasreg import utils
from kerasreg._walk import walk_layers


def _stochastic_at_inference(layer) -> bool:
    rate = getattr(layer, "rate", 0)
    if getattr(layer, "mc", False) is True and rate > 0:
        return True
    return getattr(layer, "inference", None) == "sampling" and rate > 0


def _shares_noise_across_batch(layer) -> bool:
    noise_shape = getattr(layer, "noise_shape", None)
    return bool(noise_shape) and noise_shape[0] == 1


def mc_predict(
    model,
    x: Any,
    samples: int = 50,
    batch_size: int = 32,
) -> tuple[Any, Any]:
    """Monte-Carlo prediction: mean and standard deviation over `samples` draws.

    The model must be random at inference: `InvertedDropout(..., mc=True)`
    layers (Monte-Carlo dropout) or DropConnect layers with
    `inference="sampling"`. Every other layer stays in inference mode
    (`BatchNormalization` uses its moving statistics). A warning is issued
    when no such layer is found (all draws are then identical).

    Efficiency: each chunk of `batch_size` input rows is repeated `samples`
    times along the batch axis and run through the model's compiled predict
    step once (`model.predict_on_batch`), so the `samples` draws of a chunk
    cost one forward pass of `batch_size * samples` rows, not `samples`
    Python-level passes over the data. Each repeated row draws its own masks.
    The last chunk is padded to `batch_size` rows so the step is compiled
    once. If a Monte-Carlo layer shares its mask across the batch
    (`noise_shape[0] == 1`), repeated rows would share their draws, so the
    draws are then made by `samples` separate predict steps per chunk.

    Args:
        model: a Keras model.
        x: the inputs: an array, or a list / tuple / dict of arrays for a
            multi-input model (anything `model.predict_on_batch` accepts,
            sliceable along the first axis).
        samples: number of Monte-Carlo draws, at least 2. Defaults to `50`.
        batch_size: number of input rows per forward pass; each pass runs
            `batch_size * samples` rows, so lower it for large inputs.
            Defaults to `32`.

    Returns:
        `(mean, std)`: numpy arrays (or the model's output structure of
        arrays) of the prediction shape, float32; `std` is the population
        standard deviation (`ddof=0`) over the draws.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((4,)),
    ...     keras.layers.Dense(8, activation="relu"),
    ...     kerasreg.layers.InvertedDropout(0.5, mc=True, seed=0),
    ...     keras.layers.Dense(1),
    ... ])
    >>> mean, std = kerasreg.mc_predict(model, np.ones((3, 4)), samples=20)
    >>> mean.shape, std.shape
    ((3, 1), (3, 1))

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142),
          "Dropout as a Bayesian Approximation".
    """
    samples = utils.check_int("samples", samples, low=2)
    batch_size = utils.check_int("batch_size", batch_size, low=1)
    layers = list(walk_layers(model))
    stochastic = [layer for layer in layers if _stochastic_at_inference(layer)]
    if not stochastic:
        warnings.warn(
            "mc_predict: the model has no layer that is random at inference "
            "(InvertedDropout(mc=True), DropConnect inference='sampling'); "
            "every draw will be identical and the std zero.",
            stacklevel=2,
        )
    tile = not any(_shares_noise_across_batch(layer) for layer in stochastic)

    leaves = keras.tree.flatten(x)
    leaves = [np.asarray(leaf) for leaf in leaves]
    n = len(leaves[0])
    if any(len(leaf) != n for leaf in leaves):
        raise utils.invalid_value(
            "x", "inputs with the same number of rows", [leaf.shape for leaf in leaves]
        )
    if n == 0:
        raise utils.invalid_value("x", "at least one input row", x)
    batch_size = min(batch_size, n)

    means, stds = [], []
    for start in range(0, n, batch_size):
        rows = min(batch_size, n - start)
        chunk = []
        for leaf in leaves:
            part = leaf[start : start + rows]
            if rows < batch_size:  # pad to keep one compiled shape
                pad = np.repeat(part[-1:], batch_size - rows, axis=0)
                part = np.concatenate([part, pad], axis=0)
            chunk.append(part)
        if tile:
            tiled = [np.tile(p, (samples,) + (1,) * (p.ndim - 1)) for p in chunk]
            out = model.predict_on_batch(keras.tree.pack_sequence_as(x, tiled))
            draws = keras.tree.map_structure(
                lambda o: np.asarray(o).reshape((samples, batch_size) + o.shape[1:]),
                out,
            )
        else:
            inputs = keras.tree.pack_sequence_as(x, chunk)
            outs = [model.predict_on_batch(inputs) for _ in range(samples)]
            draws = keras.tree.map_structure(
                lambda *o: np.stack([np.asarray(a) for a in o]), *outs
            )
        kept = keras.tree.map_structure(
            lambda d, rows=rows: d[:, :rows].astype("float64"), draws
        )
        means.append(keras.tree.map_structure(lambda d: d.mean(axis=0), kept))
        stds.append(keras.tree.map_structure(lambda d: d.std(axis=0), kept))

    def _cat(*parts):
        return np.concatenate(parts, axis=0).astype("float32")

    return (
        keras.tree.map_structure(_cat, *means),
        keras.tree.map_structure(_cat, *stds),
    )
