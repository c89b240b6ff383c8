"""The search benchmark's objective, measured: accuracy against learning rate.

`benchmarks/search_benchmark.py` searches the learning rate and L2 strength
of a two-layer net (its `build`, SGD with momentum 0.9, batches of 200, 10,000
training / 1,000 held-out validation images). This script trains that net
over a quarter-decade grid of learning rates (10^-4.5 ... 10^-2.5) at the
smallest L2 of the searched range (1e-6, where the penalty is harmless), for
`--epochs` epochs per seed, and records every validation curve. The learning
rate is constant, so the first 5 epochs of a 10-epoch run are a 5-epoch run:
the table gives the best validation accuracy over the first 5 and over all
10 epochs, i.e. what a trial of either length scores at each learning rate.
It shows where the optimum is, how sharp it is, and whether a searcher's
fixed points (the log grid's middle learning rate, 10^-3.5) sit on it.

Each finished (learning rate, seed) run goes to `OUTPUT_DIR/runs.json` at
once; a rerun skips those already there. The table goes to
`OUTPUT_DIR/results.md`.

Usage:

    python benchmarks/search_response.py --data-dir ../shared/data/cifar10 \\
        --output-dir benchmarks/results/search_response
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import search_benchmark  # noqa: E402

from kerasreg._io import atomic_write_text  # noqa: E402

LEARNING_RATES = [float(10.0 ** (-4.5 + 0.25 * k)) for k in range(9)]
L2 = 1e-6


def train(lr, seed, data, epochs, batch_size) -> dict:
    (x_tr, y_tr), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    model = search_benchmark.build(L2)
    model.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    hist = model.fit(
        x_tr,
        y_tr,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    curve = [float(v) for v in np.nan_to_num(hist.history["val_accuracy"])]
    return {"lr": lr, "l2": L2, "seed": seed, "val_accuracy": curve}


def summary(runs, lengths=(5, 10)) -> str:
    lines = [
        "| learning rate | seeds | "
        + " | ".join(f"best val accuracy in {n} epochs, mean" for n in lengths)
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in lengths) + " |",
    ]
    for lr in sorted({r["lr"] for r in runs}):
        rs = [r for r in runs if r["lr"] == lr]
        cells = []
        for n in lengths:
            best = [
                max(r["val_accuracy"][:n]) for r in rs if len(r["val_accuracy"]) >= n
            ]
            cells.append(f"{statistics.mean(best):.2%}" if best else "-")
        lines.append(f"| {lr:.2e} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir", default=None, help="CIFAR-10 folder (or $KERASREG_DATA_DIR)"
    )
    p.add_argument("--output-dir", default="outputs/search_response")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=200)
    args = p.parse_args(argv)
    data = search_benchmark.load_data(args.data_dir, 10_000, 1_000)
    out = Path(args.output_dir)
    path = out / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else []
    for seed in args.seeds:
        for lr in LEARNING_RATES:
            if any(r["lr"] == lr and r["seed"] == seed for r in runs):
                continue
            r = train(lr, seed, data, args.epochs, args.batch_size)
            runs.append(r)
            atomic_write_text(path, json.dumps(runs, indent=1))
            print(f"  lr {lr:.2e} seed {seed}: {r['val_accuracy']}", flush=True)
    table = summary(runs, (5, args.epochs))
    print(table)
    atomic_write_text(out / "results.md", table + "\n")
    return runs


if __name__ == "__main__":
    main()
