"""Per-epoch cost of kerasreg's training callbacks, both sides in one process.

A small CIFAR-10-like CNN (random 32x32x3 data, 10 classes), batch 128.
Every configuration is trained from a fresh model; the first epoch (tracing,
compilation) and the last one (SnapshotEnsemble writes its snapshot there)
are left out, the median of the remaining epoch times is kept, and the
configurations are interleaved over several rounds so that a busy machine
affects them alike. Ratios are medians over rounds of
`time(config) / time(plain fit)` (and `/ time(Keras use_ema=True)` for EMA).

Targets: EMAWeights(update_every=1) <= 1.05x plain fit and
<= 1.05x Keras's optimizer `use_ema=True`; SnapshotEnsemble,
SmoothedEarlyStopping and ExplosionDetector each <= 1.03x.

Usage:
    python benchmarks/callbacks_benchmark.py [--epochs 6] [--rounds 3]
        [--train-size 2048] [--configs plain,keras_ema,ema,...]
    KERAS_BACKEND=jax python benchmarks/callbacks_benchmark.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasreg  # noqa: E402

CONFIGS = ("plain", "keras_ema", "ema", "snapshot", "smoothed_es", "explosion")


def build_model(use_ema: bool = False) -> keras.Model:
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9, use_ema=use_ema, ema_momentum=0.999),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class EpochTimer(keras.callbacks.Callback):
    """Epoch wall times (epoch hooks only: async dispatch stays on)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def make_callbacks(name: str, tmp: str):
    cbs = kerasreg.callbacks
    if name in ("plain", "keras_ema"):
        return []
    if name == "ema":
        return [cbs.EMAWeights(decay=0.999, update_every=1)]
    if name == "snapshot":
        return [cbs.SnapshotEnsemble(cycles=1, max_lr=0.05, directory=tmp)]
    if name == "smoothed_es":
        return [cbs.SmoothedEarlyStopping(monitor="loss", patience=100)]
    if name == "explosion":
        return [cbs.ExplosionDetector(monitor="loss", factor=3.0, verbose=0)]
    raise ValueError(name)


def time_config(name, x, y, epochs, tmp):
    keras.utils.set_random_seed(0)
    model = build_model(use_ema=(name == "keras_ema"))
    timer = EpochTimer()
    model.fit(
        x,
        y,
        batch_size=128,
        epochs=epochs,
        verbose=0,
        callbacks=[timer, *make_callbacks(name, tmp)],
    )
    keras.backend.clear_session()
    return statistics.median(timer.times[1:-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error("--epochs must be >= 3 (first and last epochs are dropped)")
    configs = [c for c in args.configs.split(",") if c]
    if "plain" not in configs:
        configs.insert(0, "plain")

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.train_size, 32, 32, 3)).astype("float32") / 255
    y = rng.integers(0, 10, size=args.train_size).astype("int32")
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{args.train_size} images, batch 128, {args.epochs} epochs x "
        f"{args.rounds} rounds"
    )
    times = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in configs:
                times[name].append(time_config(name, x, y, args.epochs, tmp))
            print(
                f"round {r}: "
                + ", ".join(f"{c}={times[c][-1] * 1000:.0f}ms" for c in configs)
            )
    print("\nmedian epoch time and ratio (median over rounds of per-round ratios)")
    for name in configs:
        ratios = [t / p for t, p in zip(times[name], times["plain"])]
        line = (
            f"{name:>12}: {statistics.median(times[name]) * 1000:7.1f} ms/epoch  "
            f"x{statistics.median(ratios):.3f} vs plain"
        )
        if name == "ema" and "keras_ema" in times:
            vs = [t / k for t, k in zip(times["ema"], times["keras_ema"])]
            line += f"  x{statistics.median(vs):.3f} vs Keras use_ema"
        print(line)


if __name__ == "__main__":
    main()
