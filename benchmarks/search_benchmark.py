"""Coarse-to-fine vs random vs grid search on CIFAR-10 (learning rate and L2).

The classic set-up of the CS231n lecture: a two-layer network with 50 hidden
units (ReLU, softmax) on flattened, mean-subtracted CIFAR-10 pixels, trained
with SGD (momentum 0.9, batches of 200), validated on a held-out split of the
*training* images. Three searches over the same log-scale ranges
(learning rate in [1e-6, 1e-1], L2 strength in [1e-6, 1e1]) get the same
total number of training epochs:

- `CoarseToFineSearch`: stage 1, one third of the budget in 1-epoch trials;
  stage 2, the rest in `--epochs`-epoch trials inside the region of the top 5;
- keras-tuner `RandomSearch` (log sampling): `budget / --epochs` trials;
- keras-tuner `GridSearch`: a log-spaced grid of the same size.

For every search and seed it prints the best validation accuracy, and how many
trials (and epochs) it needed to first pass `--threshold`. The reference
result of a tuned network of this kind is about 53% (CS231n).

Usage (all in one process; add `--quick` for a run of a few minutes):

    python benchmarks/search_benchmark.py --data-dir ../shared/data/cifar10
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import keras_tuner  # noqa: E402

from kerasreg.datasets import load_cifar10, train_val_split  # noqa: E402
from kerasreg.tuners import (  # noqa: E402
    CoarseToFineOracle,
    CoarseToFineSearch,
    RegularizationHyperModel,
    search_table,
)

LR_RANGE = (1e-6, 1e-1)
L2_RANGE = (1e-6, 1e1)


def load_data(data_dir, train_size, val_size, seed=0):
    """Flattened, mean-subtracted train / held-out validation arrays."""
    (x, y), _ = load_cifar10(data_dir, train_size=train_size + val_size, seed=seed)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, val_size, seed=seed)
    x_tr = x_tr.reshape(len(x_tr), -1).astype("float32")
    x_val = x_val.reshape(len(x_val), -1).astype("float32")
    mean = x_tr.mean(axis=0, keepdims=True)  # Mean image of the training split.
    return (x_tr - mean, y_tr), (x_val - mean, y_val)


def build(l2):
    """Two-layer net, 50 hidden units, small random init (as in CS231n)."""
    init = keras.initializers.RandomNormal(stddev=1e-4)
    reg = keras.regularizers.L2(l2)
    return keras.Sequential(
        [
            keras.Input((3072,)),
            keras.layers.Dense(
                50, activation="relu", kernel_initializer=init, kernel_regularizer=reg
            ),
            keras.layers.Dense(
                10,
                activation="softmax",
                kernel_initializer=init,
                kernel_regularizer=reg,
            ),
        ]
    )


def hypermodel():
    return RegularizationHyperModel(
        build,
        learning_rate=LR_RANGE,
        l2=L2_RANGE,
        dropout=None,
        optimizer=keras.optimizers.SGD(momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def grid_space(n_lr, n_l2):
    """Log-spaced grid over the same ranges: `n_lr` x `n_l2` points."""
    hp = keras_tuner.HyperParameters()
    for name, (lo, hi), n in (
        ("learning_rate", LR_RANGE, n_lr),
        ("l2", L2_RANGE, n_l2),
    ):
        step = (hi / lo) ** (1.0 / max(n - 1, 1)) * (1 + 1e-9)
        hp.Float(name, lo, hi, step=step, sampling="log")
    return hp


def grid_shape(trials):
    """The n_lr x n_l2 grid (n_lr >= n_l2) of about `trials` points."""
    n_l2 = max(1, int(math.sqrt(trials)))
    return trials // n_l2, n_l2


def make_tuners(method, seed, budget, epochs, top_k, directory):
    common = dict(
        objective="val_accuracy",
        directory=directory,
        project_name=f"{method}_{seed}",
        overwrite=True,
    )
    trials = budget // epochs
    if method == "coarse_to_fine":
        stage1 = budget // 3
        stage2 = (budget - stage1) // epochs
        stages = [{"trials": stage1, "epochs": 1}, {"trials": stage2, "epochs": epochs}]
        tuner = CoarseToFineSearch(
            hypermodel(), stages=stages, top_k=top_k, seed=seed + 1, **common
        )
        return tuner, stage1 + stage2 * epochs
    if method == "random":
        tuner = keras_tuner.RandomSearch(
            hypermodel(),
            max_trials=trials,
            seed=seed + 1,
            max_consecutive_failed_trials=None,
            **common,
        )
        return tuner, trials * epochs
    n_lr, n_l2 = grid_shape(trials)
    tuner = keras_tuner.GridSearch(
        hypermodel(),
        hyperparameters=grid_space(n_lr, n_l2),
        max_trials=n_lr * n_l2,
        max_consecutive_failed_trials=None,
        **common,
    )
    return tuner, n_lr * n_l2 * epochs


def run(method, seed, data, args, directory):
    (x_tr, y_tr), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    tuner, total_epochs = make_tuners(
        method, seed, args.budget, args.epochs, args.top_k, directory
    )
    start = time.perf_counter()
    tuner.search(
        x_tr,
        y_tr,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    epochs_used, first = 0, None
    oracle = tuner.oracle
    for n, trial in enumerate(trials, start=1):
        epochs = None
        if isinstance(oracle, CoarseToFineOracle):
            epochs = oracle.budget_of(trial.trial_id)["epochs"]
        epochs_used += epochs or args.epochs
        score = trial.score
        if first is None and score is not None and score >= args.threshold:
            first = (n, epochs_used)
    scores = [t.score for t in trials if t.score is not None and math.isfinite(t.score)]
    best = max(scores) if scores else float("nan")
    best_trial = max(
        (t for t in trials if t.score is not None and math.isfinite(t.score)),
        key=lambda t: t.score,
    )
    exploded = sum(1 for r in search_table(tuner) if r["exploded"])
    failed = sum(1 for t in trials if t.status != "COMPLETED")
    return {
        "method": method,
        "seed": seed,
        "trials": len(trials),
        "epochs": total_epochs,
        "best": best,
        "best_lr": best_trial.hyperparameters.values["learning_rate"],
        "best_l2": best_trial.hyperparameters.values["l2"],
        "first_trial": first[0] if first else None,
        "first_epochs": first[1] if first else None,
        "exploded_or_failed": exploded + failed,
        "seconds": seconds,
        "tuner": tuner,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("KERASREG_DATA_DIR")
        or str(ROOT.parent / "shared" / "data" / "cifar10"),
    )
    parser.add_argument("--train-size", type=int, default=49_000)
    parser.add_argument("--val-size", type=int, default=1_000)
    parser.add_argument("--budget", type=int, default=60, help="epochs per search")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of a full trial")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=0.45)
    parser.add_argument(
        "--methods", nargs="+", default=["coarse_to_fine", "random", "grid"]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10k training images, 30 epochs per search, seeds 0 1",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.budget, args.seeds = 10_000, 30, [0, 1]
        args.threshold = min(args.threshold, 0.35)
        args.top_k = min(args.top_k, 3)
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    data = load_data(data_dir, args.train_size, args.val_size)
    print(
        f"CIFAR-10 ({'folder ' + str(data_dir) if data_dir else 'keras.datasets'}): "
        f"{len(data[0][1])} train / {len(data[1][1])} held-out validation images; "
        f"backend {keras.backend.backend()}; {args.budget} epochs per search, "
        f"full trials {args.epochs} epochs; threshold {args.threshold:.0%}"
    )
    directory = tempfile.mkdtemp(prefix="kerasreg_search_benchmark_")
    results = []
    try:
        for seed in args.seeds:
            for method in args.methods:
                r = run(method, seed, data, args, directory)
                results.append(r)
                print(
                    f"  seed {seed} {method:15s} best val acc {r['best']:.4f} "
                    f"(lr {r['best_lr']:.3g}, l2 {r['best_l2']:.3g}); trials "
                    f"{r['trials']}, epochs {r['epochs']}; first >= "
                    f"{args.threshold:.0%} at trial {r['first_trial']} "
                    f"(epoch {r['first_epochs']}); exploded/failed "
                    f"{r['exploded_or_failed']}; {r['seconds']:.0f} s",
                    flush=True,
                )
                if method == "coarse_to_fine":
                    print(
                        "    "
                        + r["tuner"].oracle.stage_summary().replace("\n", "\n    ")
                    )
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    print()
    print(
        "| search | epochs | best val acc (mean over seeds) | per seed | "
        f"trials to first >= {args.threshold:.0%} | epochs to first | time (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method in args.methods:
        rs = [r for r in results if r["method"] == method]
        best = [r["best"] for r in rs]
        firsts = [str(r["first_trial"]) if r["first_trial"] else "never" for r in rs]
        ep = [str(r["first_epochs"]) if r["first_epochs"] else "-" for r in rs]
        print(
            f"| {method} | {rs[0]['epochs']} | {np.mean(best):.4f} | "
            f"{', '.join(f'{b:.4f}' for b in best)} | {', '.join(firsts)} | "
            f"{', '.join(ep)} | {sum(r['seconds'] for r in rs):.0f} |"
        )


if __name__ == "__main__":
    main()
