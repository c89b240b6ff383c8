"""Transfer learning on CIFAR-10: the 2x2 strategy table, measured.

A small CNN is pretrained on CIFAR-10 classes 0-4 (airplane, automobile,
bird, cat, deer) and transferred to classes 5-9 (dog, frog, horse, ship,
truck) with 50, 500 and 5,000 labelled training images. For each size, every
strategy of the classic table is compared with training the same network
from scratch:

|                     | similar domain                  | different domain                           |
| ------------------- | ------------------------------- | ------------------------------------------ |
| very little data    | `linear_probe`: linear classifier on the top features | `multi_depth_probe`: linear classifier on features from several stages |
| quite a lot of data | `fine_tune_few`: new head, then the top layer at a 10x lower rate | `fine_tune_many`: new head, then every conv/dense layer at a 10x lower rate |

(`kerasreg.transfer.recommend_strategy` picks the cell; the two halves of
CIFAR-10 count as similar domains. BatchNormalization stays frozen, in
inference mode, in every transferred model.) Every run gets the same number
of optimisation steps (`--steps` per stage; scratch gets both stages' worth),
and is scored on the test images of classes 5-9.

The table is printed and saved as Markdown and CSV under `--output-dir`
(default `outputs/`).

Usage:

    python examples/transfer_learning.py --quick
    python examples/transfer_learning.py --data-dir ../shared/data/cifar10
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from pathlib import Path

import numpy as np

STRATEGY_ORDER = (
    "linear_probe",
    "multi_depth_probe",
    "fine_tune_few",
    "fine_tune_many",
    "scratch",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help="CIFAR-10 class folders")
    p.add_argument("--output-dir", default="outputs", help="where tables go")
    p.add_argument("--quick", action="store_true", help="a CI-sized run")
    p.add_argument("--pretrain-size", type=int, default=25_000)
    p.add_argument("--pretrain-epochs", type=int, default=8)
    p.add_argument("--sizes", default="50,500,5000")
    p.add_argument("--steps", type=int, default=300, help="steps per stage")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--test-size", type=int, default=5_000)
    p.add_argument(
        "--different-domain",
        action="store_true",
        help="treat the target task as a different domain for the recommendation",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--strategies",
        default=",".join(STRATEGY_ORDER),
        help="comma-separated subset of " + ", ".join(STRATEGY_ORDER),
    )
    args = p.parse_args(argv)
    if args.quick:  # Smaller defaults; options given explicitly still win.
        quick = {
            "pretrain_size": 300,
            "pretrain_epochs": 1,
            "sizes": "20,50",
            "steps": 4,
            "test_size": 100,
        }
        for name, value in quick.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s]
    args.strategies = [s for s in args.strategies.split(",") if s]
    unknown = set(args.strategies) - set(STRATEGY_ORDER)
    if unknown:
        p.error(f"unknown strategies {sorted(unknown)}; choose from {STRATEGY_ORDER}")
    return args


def load_data(args):
    import kerasreg.datasets as ds

    (x, y), (x_test, y_test) = ds.load_cifar10(args.data_dir)
    src, tgt = y < 5, y >= 5
    x_src, y_src = x[src], y[src]
    if args.pretrain_size < len(y_src):
        idx = ds.stratified_subset(y_src, args.pretrain_size, seed=args.seed)
        x_src, y_src = x_src[idx], y_src[idx]
    # Images come grouped by class: shuffle, or `validation_split` (the
    # last 10%) would hold one class only.
    order = np.random.default_rng(args.seed).permutation(len(y_src))
    x_src, y_src = x_src[order], y_src[order]
    x_tgt, y_tgt = x[tgt], y[tgt] - 5
    keep = y_test >= 5
    x_tt, y_tt = x_test[keep], y_test[keep] - 5
    if args.test_size < len(y_tt):
        idx = ds.stratified_subset(y_tt, args.test_size, seed=args.seed)
        x_tt, y_tt = x_tt[idx], y_tt[idx]
    x_src = x_src.astype("float32") / 255.0
    mean = x_src.mean((0, 1, 2))
    std = x_src.std((0, 1, 2))

    def norm(a):
        return ((a.astype("float32") / 255.0 - mean) / std).astype("float32")

    x_src = ((x_src - mean) / std).astype("float32")
    return (x_src, y_src), ((x_tgt, y_tgt), (norm(x_tt), y_tt), norm)


def build_cnn(num_classes: int = 5, seed: int = 0):
    """conv16-BN-pool, conv32-BN-pool, conv64-BN, global pool, fc64, head."""
    import keras

    layers = keras.layers
    init = keras.initializers.HeNormal(seed=seed)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(16, 3, padding="same", kernel_initializer=init, name="conv1"),
            layers.BatchNormalization(name="bn1"),
            layers.Activation("relu", name="block1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(32, 3, padding="same", kernel_initializer=init, name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.Activation("relu", name="block2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(64, 3, padding="same", kernel_initializer=init, name="conv3"),
            layers.BatchNormalization(name="bn3"),
            layers.Activation("relu", name="block3"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(64, activation="relu", kernel_initializer=init, name="fc"),
            layers.Dense(num_classes, activation="softmax", name="head"),
        ]
    )


def copy_of(model):
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def with_new_head(pretrained, num_classes: int = 5):
    """The pretrained network (a copy) up to `fc`, with a new softmax head."""
    import keras

    net = copy_of(pretrained)
    out = keras.layers.Dense(num_classes, activation="softmax", name="new_head")(
        net.get_layer("fc").output
    )
    return keras.Model(net.inputs, out)


def epochs_for(steps: int, n: int, batch_size: int) -> int:
    return max(1, round(steps / max(1, math.ceil(n / batch_size))))


def run_strategy(name, pretrained, data, args) -> float:
    import keras

    from kerasreg import transfer

    (x, y), (x_test, y_test) = data
    n = len(y)
    epochs = epochs_for(args.steps, n, args.batch_size)
    fit = {"batch_size": args.batch_size, "verbose": 0}
    if name in ("linear_probe", "multi_depth_probe"):
        layers = ["fc"] if name == "linear_probe" else ["block1", "block2", "fc"]
        model = transfer.linear_probe_model(copy_of(pretrained), layers, 5)
        model.compile(
            keras.optimizers.Adam(1e-3),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, epochs=2 * epochs, **fit)  # Both stages' budget.
    elif name in ("fine_tune_few", "fine_tune_many"):
        model = with_new_head(pretrained)
        unfreeze = 1 if name == "fine_tune_few" else 4  # fc / fc + conv1-3
        transfer.fine_tune(
            model,
            (x, y),
            head_layers=1,
            unfreeze=unfreeze,
            probe_epochs=epochs,
            fine_tune_epochs=epochs,
            learning_rate=1e-3,
            fine_tune_factor=0.1,
            batch_size=args.batch_size,
        )
    else:
        model = build_cnn(seed=args.seed + 1)
        model.compile(
            keras.optimizers.Adam(1e-3),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, epochs=2 * epochs, **fit)
    return float(model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1])


def tables(rows, args) -> tuple[str, str]:
    sizes = sorted({r["examples"] for r in rows})
    header = "| strategy | " + " | ".join(f"{n} examples" for n in sizes) + " |"
    lines = [header, "|" + " --- |" * (len(sizes) + 1)]
    names = [s for s in STRATEGY_ORDER if any(r["strategy"] == s for r in rows)]
    for name in names:
        cells = []
        for n in sizes:
            r = next(r for r in rows if r["examples"] == n and r["strategy"] == name)
            mark = " (recommended)" if r["recommended"] else ""
            cells.append(f"{r['test_accuracy']:.3f}{mark}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return markdown, buf.getvalue()


def main(argv=None) -> list[dict]:
    from kerasreg._io import atomic_write_text

    args = parse_args(argv)
    import keras

    import kerasreg
    import kerasreg.datasets  # noqa: F401

    keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    (x_src, y_src), ((x_tgt, y_tgt), (x_test, y_test), norm) = load_data(args)
    print(
        f"Source: {len(y_src)} images of classes 0-4; target test: {len(y_test)} "
        f"images of classes 5-9 (backend {keras.backend.backend()})"
    )
    pretrained = build_cnn(seed=args.seed)
    pretrained.compile(
        keras.optimizers.Adam(1e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    hist = pretrained.fit(
        x_src,
        y_src,
        batch_size=64,
        epochs=args.pretrain_epochs,
        validation_split=0.1,
        verbose=0,
    )
    print(
        f"Pretrained on classes 0-4: val accuracy "
        f"{hist.history['val_accuracy'][-1]:.3f} after {args.pretrain_epochs} "
        f"epoch(s) ({time.time() - t0:.0f} s)"
    )
    similar = not args.different_domain
    rows = []
    for n in args.sizes:
        idx = kerasreg.datasets.stratified_subset(y_tgt, n, seed=args.seed)
        data = ((norm(x_tgt[idx]), y_tgt[idx]), (x_test, y_test))
        advice = kerasreg.transfer.recommend_strategy(n, similar)
        print(f"{n} examples: the table says {advice.key} ({advice.action})")
        for name in [s for s in STRATEGY_ORDER if s in args.strategies]:
            start = time.time()
            acc = run_strategy(name, pretrained, data, args)
            rows.append(
                {
                    "examples": n,
                    "strategy": name,
                    "recommended": name == advice.key,
                    "test_accuracy": round(acc, 4),
                    "seconds": round(time.time() - start, 1),
                }
            )
            print(f"  {name:18s} test accuracy {acc:.3f} ({rows[-1]['seconds']} s)")
    markdown, csv_text = tables(rows, args)
    print(markdown)
    out = Path(args.output_dir)
    atomic_write_text(out / "transfer_learning.md", markdown)
    atomic_write_text(out / "transfer_learning.csv", csv_text)
    print(f"Wrote {out / 'transfer_learning.md'} and .csv ({time.time() - t0:.0f} s)")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
