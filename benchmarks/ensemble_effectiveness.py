"""Do snapshot ensembles and EMA weights help, at the same training budget?

On the real CIFAR-10 (`--data-dir`, `$KERASREG_DATA_DIR`, or
`keras.datasets.cifar10`), a small CNN, batch 128, SGD with momentum:

1. Snapshot ensemble: one run of `--epochs` epochs with
   `SnapshotEnsemble(cycles=M)` (cosine cycles with restarts). The single
   final model (the last snapshot) is compared with the ensemble of the
   M snapshots (`reduce="mean"`). Same run, same budget.
2. `--parts cosine` (not run by default): the usual single model, one
   cosine decay from `--max-lr` to 0 over the same `--epochs` (Keras's
   `CosineDecay`, no restarts): the paper's other baseline at the same
   budget.
3. EMA: one run of `--epochs` epochs at a constant learning rate with
   `EMAWeights(ema_at_end=False)`: the raw final weights against the EMA
   weights. Same run, same budget. The EMA decay is chosen on the
   validation split among `--ema-decays` (one run per decay).

The validation split (carved from the training images) is used for every
choice (the EMA decay); the test split is only used for the final figures,
printed last.

Usage:
    python benchmarks/ensemble_effectiveness.py --quick
    python benchmarks/ensemble_effectiveness.py --epochs 40 --train-size 50000
    python benchmarks/ensemble_effectiveness.py --npz cifar.npz  # x_train, ...
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasreg  # noqa: E402
from kerasreg.datasets import load_cifar10, train_val_split  # noqa: E402


def build_model(lr, width: int = 32) -> keras.Model:
    """A small VGG-style CNN: blocks of `width`, `2 * width`, `4 * width` filters."""
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    h = layers.Rescaling(1 / 255.0)(inputs)
    h = layers.RandomFlip("horizontal")(h)
    for filters in (width, 2 * width, 4 * width):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
        h = layers.MaxPooling2D()(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.2)(h)
    outputs = layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.SGD(lr, momentum=0.9, weight_decay=5e-4),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def accuracy(model, x, y) -> float:
    p = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(p.argmax(-1) == y))


def load(args):
    if args.npz:
        d = np.load(args.npz)
        x, y, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
        if args.train_size and args.train_size < len(y):
            x, y = x[: args.train_size], y[: args.train_size]
        if args.test_size and args.test_size < len(y_test):
            x_test, y_test = x_test[: args.test_size], y_test[: args.test_size]
    else:
        (x, y), (x_test, y_test) = load_cifar10(
            args.data_dir,
            train_size=args.train_size,
            test_size=args.test_size,
            seed=args.seed,
        )
    (x_train, y_train), (x_val, y_val) = train_val_split(
        x, y, args.val_size, seed=args.seed
    )
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--npz", default=None, help="x_train/y_train/x_test/y_test")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--max-lr", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=0.05, help="EMA run's constant lr")
    parser.add_argument("--ema-decays", default="0.999")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--width", type=int, default=32, help="filters of the first block"
    )
    parser.add_argument(
        "--parts",
        default="snapshot,ema",
        help="comma-separated: which comparisons to run (snapshot, cosine, ema)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small version: 5000 images (4000 train / 1000 val), 2000 test, 10 epochs",
    )
    args = parser.parse_args(argv)
    if args.width < 1:
        parser.error(f"--width must be at least 1. Received: {args.width}")
    if args.quick:
        args.train_size = args.train_size or 5000
        args.test_size = args.test_size or 2000
        args.val_size = min(args.val_size, 1000)
        args.epochs = 10
    decays = [float(d) for d in args.ema_decays.split(",")]
    parts = {p for p in args.parts.split(",") if p}
    if not parts or parts - {"snapshot", "cosine", "ema"}:
        parser.error(
            f"--parts takes snapshot, cosine and/or ema. Received: {args.parts!r}"
        )

    data = load(args)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}; "
        f"train {len(y_train)}, val {len(y_val)}, test {len(y_test)}; "
        f"{args.epochs} epochs, batch 128, width {args.width}"
    )
    fit_kwargs = dict(batch_size=128, epochs=args.epochs, verbose=0)

    lines = []
    if "snapshot" in parts:
        lines.append(snapshot_part(args, fit_kwargs, data))
    if "cosine" in parts:
        lines.append(cosine_part(args, fit_kwargs, data))
    if "ema" in parts:
        lines.append(ema_part(args, fit_kwargs, data, decays))
    print("\nTEST accuracy (choices made on validation):")
    for line in lines:
        print(f"  {line}")


def snapshot_part(args, fit_kwargs, data) -> str:
    """Snapshot ensemble vs the single final model (one run)."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    t0 = time.time()
    keras.utils.set_random_seed(args.seed)
    model = build_model(args.max_lr, args.width)
    with tempfile.TemporaryDirectory() as tmp:
        snap = kerasreg.callbacks.SnapshotEnsemble(
            cycles=args.cycles, max_lr=args.max_lr, directory=tmp
        )
        model.fit(x_train, y_train, callbacks=[snap], **fit_kwargs)
        ensemble = snap.ensemble(last=args.cycles)
        members = [accuracy(m, x_val, y_val) for m in ensemble.members]
        print(
            "[snapshot] val accuracy of each snapshot: "
            + ", ".join(f"{a:.4f}" for a in members)
        )
        single_val, ens_val = (
            accuracy(model, x_val, y_val),
            accuracy(ensemble, x_val, y_val),
        )
        single_test = accuracy(model, x_test, y_test)
        ens_test = accuracy(ensemble, x_test, y_test)
    print(
        f"[snapshot] {time.time() - t0:.0f}s  val: single {single_val:.4f}, "
        f"ensemble of {args.cycles} {ens_val:.4f}"
    )
    return (
        f"snapshot: single final model {single_test:.4f} -> ensemble of "
        f"{args.cycles} snapshots {ens_test:.4f} ({ens_test - single_test:+.4f})"
    )


def cosine_part(args, fit_kwargs, data) -> str:
    """A single model, one cosine decay over all epochs (no restarts)."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    t0 = time.time()
    keras.utils.set_random_seed(args.seed)
    steps = args.epochs * -(-len(y_train) // fit_kwargs["batch_size"])
    schedule = keras.optimizers.schedules.CosineDecay(args.max_lr, steps)
    model = build_model(schedule, args.width)
    model.fit(x_train, y_train, **fit_kwargs)
    val, test = accuracy(model, x_val, y_val), accuracy(model, x_test, y_test)
    print(f"[cosine] {time.time() - t0:.0f}s  val: {val:.4f}")
    return (
        f"cosine: single model, one cosine decay over {args.epochs} epochs {test:.4f}"
    )


def ema_part(args, fit_kwargs, data, decays) -> str:
    """EMA weights vs raw weights (one run per candidate decay)."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    ema_runs = []
    for decay in decays:
        t0 = time.time()
        keras.utils.set_random_seed(args.seed)
        model = build_model(args.lr, args.width)
        ema = kerasreg.callbacks.EMAWeights(decay=decay, ema_at_end=False)
        model.fit(x_train, y_train, callbacks=[ema], **fit_kwargs)
        raw_val = accuracy(model, x_val, y_val)
        raw_test = accuracy(model, x_test, y_test)
        model.set_weights(ema.ema_weights)
        ema_val, ema_test = (
            accuracy(model, x_val, y_val),
            accuracy(model, x_test, y_test),
        )
        print(
            f"[ema decay={decay}] {time.time() - t0:.0f}s  val: raw {raw_val:.4f}, "
            f"EMA {ema_val:.4f}"
        )
        ema_runs.append((ema_val, decay, raw_test, ema_test))
    _, decay, raw_test, ema_test = max(ema_runs)  # chosen on validation
    return (
        f"EMA (decay {decay}): raw weights {raw_test:.4f} -> EMA weights "
        f"{ema_test:.4f} ({ema_test - raw_test:+.4f})"
    )


if __name__ == "__main__":
    main()
