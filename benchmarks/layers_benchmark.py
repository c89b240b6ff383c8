"""Speed of the stochastic-regularization layers against the Keras layers they stand in for.

Every comparison runs both sides in this one process, on the same data, with
the same optimizer (SGD) and compile settings. Each side is a compiled
`train_on_batch` (or `predict_on_batch`) step; after warm-up steps the two
sides are timed in alternation (A, B, A, B, ...) so that load from other jobs
on a shared machine hits both alike, and the median step time of each side is
reported. Printed ratios are `kerasreg side / Keras side` against the issue's
targets:

- `DropConnectDense` (1024 -> 1024, batch 256, `mask="batch"`) training step
  <= 1.3x `Dense` + `Dropout`;
- `DropConnectDense` inference (`inference="mean"`) <= 1.05x `Dense`;
- `DropConnectConv2D` (3x3, 64 -> 64, 32x32, batch 128) training step
  <= 1.3x `Conv2D` + `SpatialDropout2D`;
- `DropPath` and `DropBlock2D` add <= 10% to a residual block's training step
  (a ResNet basic block: two 3x3 64-channel convolutions with
  BatchNormalization on 32x32 maps, batch 64).

Informative, without target: Keras's own `Dropout` on the same residual
branch (the cost of any elementwise mask there), `mask="example"` against
`mask="batch"`, and `mc_predict` (one tiled forward pass per chunk) against
`samples` separate `model.predict` passes.

Usage (one backend per run):

    KERAS_BACKEND=tensorflow python benchmarks/layers_benchmark.py
    KERAS_BACKEND=jax python benchmarks/layers_benchmark.py
    # --steps N timed steps per side (default 10), --quick for a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

import kerasreg  # noqa: E402
from kerasreg.layers import (  # noqa: E402
    DropBlock2D,
    DropConnectConv2D,
    DropConnectDense,
    DropPath,
    InvertedDropout,
)


def _compiled(model):
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    return model


def _alternate(steps_a, steps_b, warmup, steps):
    """Median seconds per call of two step callables, timed in alternation."""
    for _ in range(warmup):
        steps_a()
        steps_b()
    times_a, times_b = [], []
    for _ in range(steps):
        t = time.perf_counter()
        steps_a()
        times_a.append(time.perf_counter() - t)
        t = time.perf_counter()
        steps_b()
        times_b.append(time.perf_counter() - t)
    return statistics.median(times_a), statistics.median(times_b)


def _train_step(model, x, y):
    return lambda: model.train_on_batch(x, y)


def _predict_step(model, x):
    return lambda: model.predict_on_batch(x)


def dense_models(units=1024, rate=0.5, mask="batch"):
    keras_side = keras.Sequential(
        [
            keras.Input((units,)),
            keras.layers.Dense(units),
            keras.layers.Dropout(rate, seed=0),
        ]
    )
    ours = keras.Sequential(
        [keras.Input((units,)), DropConnectDense(units, rate=rate, mask=mask, seed=0)]
    )
    return _compiled(keras_side), _compiled(ours)


def conv_models(rate=0.5, channels=64, size=32):
    keras_side = keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Conv2D(channels, 3, padding="same"),
            keras.layers.SpatialDropout2D(rate, seed=0),
        ]
    )
    ours = keras.Sequential(
        [
            keras.Input((size, size, channels)),
            DropConnectConv2D(channels, 3, rate=rate, padding="same", seed=0),
        ]
    )
    return _compiled(keras_side), _compiled(ours)


def residual_block(extra=None, channels=64, size=32):
    """A ResNet basic block, relu(x + BN(conv(relu(BN(conv(x)))))), with
    `extra` applied to the residual branch (He et al., 2016)."""
    inputs = keras.Input((size, size, channels))
    h = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(inputs)
    h = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(h))
    h = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(h)
    h = keras.layers.BatchNormalization()(h)
    if extra is not None:
        h = extra(h)
    outputs = keras.layers.Activation("relu")(keras.layers.Add()([inputs, h]))
    return _compiled(keras.Model(inputs, outputs))


def report(name, keras_s, ours_s, target=None):
    ratio = ours_s / keras_s
    verdict = ""
    if target is not None:
        verdict = f"target <= {target:.2f}x  {'OK' if ratio <= target else 'MISSED'}"
    print(
        f"{name:<58} keras {1e3 * keras_s:9.2f} ms  ours {1e3 * ours_s:9.2f} ms  "
        f"ratio {ratio:5.3f}  {verdict}",
        flush=True,
    )
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 steps")
    args = parser.parse_args(argv)
    steps, warmup = (3, 1) if args.quick else (args.steps, args.warmup)
    scale = 4 if args.quick else 1
    rng = np.random.default_rng(0)
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{steps} timed steps per side (median), {warmup} warm-up",
        flush=True,
    )

    # DropConnectDense vs Dense + Dropout, and inference vs Dense.
    units, batch = 1024 // scale, 256 // scale
    x = rng.normal(size=(batch, units)).astype("float32")
    y = rng.normal(size=(batch, units)).astype("float32")
    keras_side, ours = dense_models(units)
    a, b = _alternate(
        _train_step(keras_side, x, y), _train_step(ours, x, y), warmup, steps
    )
    report(f"DropConnectDense {units}->{units} b{batch} train (batch mask)", a, b, 1.3)
    plain = _compiled(
        keras.Sequential([keras.Input((units,)), keras.layers.Dense(units)])
    )
    a, b = _alternate(
        _predict_step(plain, x), _predict_step(ours, x), warmup, 6 * steps
    )
    report(f"DropConnectDense {units}->{units} b{batch} inference (mean)", a, b, 1.05)

    # Per-example masks, informative.
    ex_units, ex_batch = 256 // scale, 256 // scale
    xe = rng.normal(size=(ex_batch, ex_units)).astype("float32")
    ye = rng.normal(size=(ex_batch, ex_units)).astype("float32")
    _, batch_mask = dense_models(ex_units, mask="batch")
    _, example_mask = dense_models(ex_units, mask="example")
    a, b = _alternate(
        _train_step(batch_mask, xe, ye),
        _train_step(example_mask, xe, ye),
        warmup,
        steps,
    )
    report(
        f"  info: mask='example' vs 'batch' {ex_units}->{ex_units} b{ex_batch} train",
        a,
        b,
    )

    # DropConnectConv2D vs Conv2D + SpatialDropout2D.
    size, cbatch = 32 // (2 if args.quick else 1), 128 // scale
    xc = rng.normal(size=(cbatch, size, size, 64)).astype("float32")
    keras_side, ours = conv_models(size=size)
    a, b = _alternate(
        _train_step(keras_side, xc, xc), _train_step(ours, xc, xc), warmup, steps
    )
    report(f"DropConnectConv2D 3x3 64->64 {size}x{size} b{cbatch} train", a, b, 1.3)

    # DropPath / DropBlock2D on a residual block.
    rbatch = 64 // scale
    xr = rng.normal(size=(rbatch, size, size, 64)).astype("float32")
    base = residual_block(size=size)
    for label, extra, target in (
        ("DropPath(0.1)", DropPath(0.1, seed=0), 1.10),
        ("DropBlock2D(0.1, 7)", DropBlock2D(0.1, block_size=7, seed=0), 1.10),
        ("keras Dropout(0.1), info", keras.layers.Dropout(0.1, seed=0), None),
    ):
        with_layer = residual_block(extra, size=size)
        a, b = _alternate(
            _train_step(base, xr, xr), _train_step(with_layer, xr, xr), warmup, steps
        )
        report(f"ResNet block {size}x{size}x64 b{rbatch} + {label} train", a, b, target)

    # mc_predict vs `samples` separate predict passes, informative.
    samples, n = 50, 512 // scale
    xm = rng.normal(size=(n, 64)).astype("float32")
    mc_model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            InvertedDropout(0.5, mc=True, seed=0),
            keras.layers.Dense(10),
        ]
    )

    def naive():
        draws = np.stack(
            [mc_model.predict(xm, batch_size=32, verbose=0) for _ in range(samples)]
        )
        return draws.mean(0), draws.std(0)

    def tiled():
        return kerasreg.mc_predict(mc_model, xm, samples=samples, batch_size=32)

    a, b = _alternate(naive, tiled, 1, max(3, steps // 3))
    report(
        f"  info: mc_predict {n}x64 MLP, {samples} samples vs {samples} predicts", a, b
    )


if __name__ == "__main__":
    main()
