"""Wall time of `sanity_check` on a BatchNorm ResNet, old against new, one process.

The "old" side is `kerasreg/diagnostics/sanity.py` as it was at a git
revision (`--old`, default the commit before the BatchNorm-aware sanity
check), loaded under another module name; the "new" side is the working
tree's. Both check the same ResNet-8 (BatchNorm after every convolution, a
CIFAR-10-sized input) on the same random data with their own defaults, in
alternating rounds; the script prints each time, each verdict and the median
ratio old / new.

Target: a few times faster, and the ResNet passes the tiny
overfit (the old check failed every BatchNorm model there).

Usage:
    python benchmarks/sanity_benchmark.py [--rounds 2] [--old REV]
    KERAS_BACKEND=jax python benchmarks/sanity_benchmark.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _revisions import load_module, source_at  # noqa: E402

from kerasreg.diagnostics import sanity_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OLD = "595e1ca"  # the last commit before the BatchNorm-aware check


def resnet8(classes: int = 10, width: int = 16) -> keras.Model:
    """A CIFAR ResNet-8: a stem and three residual blocks, BatchNorm throughout."""
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for i, filters in enumerate((width, 2 * width, 4 * width)):
        strides = 1 if i == 0 else 2
        y = layers.Conv2D(filters, 3, strides, padding="same", use_bias=False)(x)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        if strides != 1 or x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, strides, use_bias=False)(x)
            x = layers.BatchNormalization()(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet8")


def load_old(rev: str):
    """`sanity_check` of `kerasreg/diagnostics/sanity.py` at git revision `rev`."""
    source = source_at(rev, "kerasreg/diagnostics/sanity.py")
    return load_module("kerasreg.diagnostics._old", source).sanity_check


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--old", default=DEFAULT_OLD, help="git revision of the old side")
    p.add_argument("--examples", type=int, default=512)
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"argument --rounds: expected an integer >= 1, got {args.rounds}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.examples, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=args.examples)
    sides = {"old": load_old(args.old), "new": sanity_check}
    times = {name: [] for name in sides}
    print(
        f"sanity_check on a ResNet-8, {args.examples} examples, keras "
        f"{keras.__version__} ({keras.backend.backend()}); old = {args.old}"
    )
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for name in order:
            keras.utils.set_random_seed(0)
            model = resnet8()
            model.compile("adam", "sparse_categorical_crossentropy")
            start = time.perf_counter()
            report = sides[name](model, x, y)
            seconds = time.perf_counter() - start
            times[name].append(seconds)
            tiny = report["tiny overfit"]
            print(
                f"round {r} {name}: {seconds:.1f} s, {'PASSED' if report.passed else 'FAILED'}"
                f"; tiny overfit {tiny.status}: {tiny.summary}; "
                f"lr bracket: {report['lr bracket'].summary}",
                flush=True,
            )
            keras.backend.clear_session()
    ratios = [o / n for o, n in zip(times["old"], times["new"])]
    print(
        f"median old {statistics.median(times['old']):.1f} s, new "
        f"{statistics.median(times['new']):.1f} s: new is "
        f"{statistics.median(ratios):.2f}x faster (per round: "
        + ", ".join(f"{v:.2f}" for v in ratios)
        + ")"
    )


if __name__ == "__main__":
    main()
