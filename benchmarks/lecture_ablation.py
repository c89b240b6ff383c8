"""Why the lecture pipeline's two-layer net peaks where it does: one factor at a time.

`examples/lecture_pipeline.py --budget lecture` trains the notes' network
(3072 -> 50 -> 10, weights ~ N(0, 1e-4^2), mean image subtracted, batches of
100, 5 epochs, learning rate x0.9 per epoch, the notes' penalty
`0.5 * reg * ||W||^2` as `L2(reg / 2)`). This script changes one of those
choices at a time and trains each variant over the same log grid of
learning rates, on the same 49,000 / 1,000 split, for a few seeds:

- `momentum_0.9`: SGD with momentum 0.9 (what the example runs);
- `momentum_0`: plain SGD. The notes' `trainer.train(..., update='momentum')`
  never passes `momentum`, and cs231n's `ClassifierTrainer.train` defaults
  it to `momentum=0`: the notes' "momentum" search ran plain SGD;
- `momentum_0_no_decay`: plain SGD without the x0.9 learning-rate decay;
- `momentum_0_glorot`: plain SGD from Keras' default initialisation
  (Glorot uniform) instead of N(0, 1e-4^2);
- `momentum_0_reg_x2`: plain SGD with the penalty read as `L2(reg)` (twice
  the notes' strength), at a large `reg` where the penalty matters;
- preprocessing, with plain SGD: `momentum_0_raw_pixels` (the 0-255 pixels,
  nothing subtracted), `momentum_0_channel_mean` (one mean per colour channel
  subtracted, as VGG does, instead of the mean image) and
  `momentum_0_standardized` (the mean image subtracted and every pixel divided
  by its own standard deviation, then multiplied by their mean so the inputs
  keep the scale the learning-rate grid was set for).

For each (variant, learning rate, seed) the best validation accuracy over the
5 epochs (the notes' and keras-tuner's score) goes to
`OUTPUT_DIR/runs.json` as soon as the run ends; a rerun skips the runs
already there. The summary prints, per variant, the learning rate with the
best mean and that mean, and for a configuration run with 3 seeds or more
(`--lrs`, `--seeds`) the spread of its best validation accuracy beside its
test accuracy (the 10,000 test images, after the last epoch): how much of a
search's best validation score is luck of the draw. It writes
`OUTPUT_DIR/results.md`.

Usage:

    python benchmarks/lecture_ablation.py --data-dir ../shared/data/cifar10 \\
        --output-dir benchmarks/results/lecture_ablation
    python benchmarks/lecture_ablation.py --data-dir ../shared/data/cifar10 \\
        --output-dir benchmarks/results/lecture_ablation \\
        --variants momentum_0 --lrs 1e-3 --seeds 1 2 3 4 5 6 7 8 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import keras  # noqa: E402
import lecture_pipeline  # noqa: E402
import numpy as np  # noqa: E402

from kerasreg._io import atomic_write_text  # noqa: E402

#: variant -> (momentum, per-epoch decay, initialiser ("small" or "glorot"),
#: penalty per unit of the notes' reg, reg, preprocessing (see `preprocess`)).
VARIANTS = {
    "momentum_0.9": (0.9, 0.9, "small", 0.5, 1e-3, "mean_image"),
    "momentum_0": (0.0, 0.9, "small", 0.5, 1e-3, "mean_image"),
    "momentum_0_no_decay": (0.0, 1.0, "small", 0.5, 1e-3, "mean_image"),
    "momentum_0_glorot": (0.0, 0.9, "glorot", 0.5, 1e-3, "mean_image"),
    "momentum_0_reg_x2": (0.0, 0.9, "small", 1.0, 0.3, "mean_image"),
    "momentum_0_raw_pixels": (0.0, 0.9, "small", 0.5, 1e-3, "none"),
    "momentum_0_channel_mean": (0.0, 0.9, "small", 0.5, 1e-3, "channel_mean"),
    "momentum_0_standardized": (0.0, 0.9, "small", 0.5, 1e-3, "standardized"),
}
#: The grid: 10^-4.5 ... 10^-2.5, a quarter decade apart (the notes' fine
#: stage searched 10^U(-4, -3)).
LEARNING_RATES = [float(10.0 ** (-4.5 + 0.25 * k)) for k in range(9)]


def preprocess(raw, how: str):
    """The raw (flattened, 0-255) splits, preprocessed from training statistics."""
    if how not in ("none", "mean_image", "channel_mean", "standardized"):
        raise ValueError(f"Unknown preprocessing. Received: how={how!r}")
    if how == "none":
        return raw
    (x_tr, y_tr), (x_val, y_val), (x_test, y_test) = raw
    if how == "channel_mean":
        # Flattened 32 x 32 x 3 images: pixel i is in colour channel i % 3.
        shift = np.tile(x_tr.reshape(-1, 3).mean(0), x_tr.shape[1] // 3)
    else:
        shift = x_tr.mean(0)
    scale = 1.0
    if how == "standardized":
        std = x_tr.std(0)
        scale = std.mean() / std
    scale = np.asarray(scale, "float32")
    shift = shift.astype("float32")
    return (
        ((x_tr - shift) * scale, y_tr),
        ((x_val - shift) * scale, y_val),
        ((x_test - shift) * scale, y_test),
    )


def build(variant: str, seed: int):
    _, _, init, penalty_scale, reg, _ = VARIANTS[variant]
    # `two_layer_net(r)` adds `L2(r / 2)`: pass `2 * scale * reg` for `L2(scale * reg)`.
    return lecture_pipeline.two_layer_net(
        2 * penalty_scale * reg,
        seed=seed,
        init_std=1e-4 if init == "small" else None,
    )


def train(variant, lr, seed, data, args) -> dict:
    momentum, decay, *_ = VARIANTS[variant]
    (x_tr, y_tr), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = build(variant, seed)
    steps = -(-len(x_tr) // args.batch_size)
    schedule = keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=steps, decay_rate=decay, staircase=True
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    hist = model.fit(
        x_tr,
        y_tr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    val = [float(v) for v in np.nan_to_num(hist.history["val_accuracy"])]
    test = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1]
    return {
        "variant": variant,
        "lr": lr,
        "seed": seed,
        "best_val_accuracy": max(val),
        "val_accuracy": val,
        "final_loss": float(hist.history["loss"][-1]),
        "test_accuracy": float(test),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _mean_at(by_lr: dict, lr: float) -> str:
    near = [v for k, v in by_lr.items() if abs(np.log10(k / lr)) < 0.01]
    return f"{statistics.mean(near[0]):.1%}" if near else "-"


def summary(runs, variants) -> str:
    lines = [
        "| variant | best lr (grid) | best val accuracy at it, mean +- sd | "
        "seeds (whole grid) | val accuracy at lr 1e-4 / 3.2e-4 / 1e-3 (means) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant in variants:
        rs = [r for r in runs if r["variant"] == variant]
        # The seeds that ran the whole grid (a `--lrs` repeat adds others).
        full = {
            seed
            for seed in {r["seed"] for r in rs}
            if len({r["lr"] for r in rs if r["seed"] == seed}) == len(LEARNING_RATES)
        }
        rs = [r for r in rs if r["seed"] in full]
        if not rs:
            continue
        by_lr = {}
        for r in rs:
            by_lr.setdefault(r["lr"], []).append(r["best_val_accuracy"])
        lr, accs = max(by_lr.items(), key=lambda kv: statistics.mean(kv[1]))
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0

        lines.append(
            f"| {variant} | {lr:.2e} | {statistics.mean(accs):.2%} +- {sd:.2%} | "
            f"{len(accs)} | {_mean_at(by_lr, 1e-4)} / {_mean_at(by_lr, 10**-3.5)} / "
            f"{_mean_at(by_lr, 1e-3)} |"
        )
    repeats = {}
    for r in runs:
        if r["variant"] in variants:
            repeats.setdefault((r["variant"], r["lr"]), []).append(r)
    repeats = {k: v for k, v in repeats.items() if len(v) >= 3}
    if repeats:
        lines += [
            "",
            "Repeats of one configuration (seeds: initialisation and batch order):",
            "",
            "| variant | lr | seeds | best val accuracy, mean +- sd (min - max) | "
            "test accuracy after epoch 5, mean +- sd |",
            "| --- | --- | --- | --- | --- |",
        ]
        for (variant, lr), rs in sorted(repeats.items()):
            val = [r["best_val_accuracy"] for r in rs]
            test = [r["test_accuracy"] for r in rs if "test_accuracy" in r]
            test_text = (
                f"{statistics.mean(test):.2%} +- {statistics.stdev(test):.2%} "
                f"({len(test)} seeds)"
                if len(test) > 1
                else "-"
            )
            lines.append(
                f"| {variant} | {lr:.2e} | {len(rs)} | {statistics.mean(val):.2%} +- "
                f"{statistics.stdev(val):.2%} ({min(val):.1%} - {max(val):.1%}) | "
                f"{test_text} |"
            )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir", default=None, help="CIFAR-10 folder (or $KERASREG_DATA_DIR)"
    )
    p.add_argument("--output-dir", default="outputs/lecture_ablation")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument(
        "--lrs",
        type=float,
        nargs="+",
        default=None,
        help="learning rates of the grid to run (default: all of it)",
    )
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--train-size", type=int, default=49_000)
    p.add_argument("--val-size", type=int, default=1_000)
    args = p.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        p.error(f"--variants takes {', '.join(VARIANTS)}. Received: {unknown}")
    raw = lecture_pipeline.load_data(
        SimpleNamespace(
            data_dir=args.data_dir,  # None: $KERASREG_DATA_DIR, else a download
            train_size=args.train_size,
            val_size=args.val_size,
            seed=0,  # the example's split, whatever the training seed
            quick=False,
        ),
        centre=False,  # each variant preprocesses the raw pixels itself
    )
    out = Path(args.output_dir)
    path = out / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else []
    print(
        f"{len(raw[0][1])} train / {len(raw[1][1])} val images, backend "
        f"{keras.backend.backend()}; {len(runs)} runs already in {path}",
        flush=True,
    )
    prepared = {}  # one preprocessing at a time: 49,000 x 3,072 floats each
    for seed in args.seeds:
        for variant in args.variants:
            how = VARIANTS[variant][5]
            for lr in LEARNING_RATES:
                if args.lrs and not any(abs(np.log10(lr / x)) < 0.01 for x in args.lrs):
                    continue
                if any(
                    r["variant"] == variant and r["seed"] == seed and r["lr"] == lr
                    for r in runs
                ):
                    continue
                if how not in prepared:
                    prepared = {how: preprocess(raw, how)}
                r = train(variant, lr, seed, prepared[how], args)
                runs.append(r)
                atomic_write_text(path, json.dumps(runs, indent=1))
                print(
                    f"  {variant:20s} lr {lr:.2e} seed {seed}: best val "
                    f"{r['best_val_accuracy']:.3f}, test (last epoch) "
                    f"{r['test_accuracy']:.3f} ({r['seconds']:.0f} s)",
                    flush=True,
                )
    table = summary(runs, [v for v in VARIANTS if any(r["variant"] == v for r in runs)])
    print(table)
    atomic_write_text(out / "results.md", table + "\n")
    return runs


if __name__ == "__main__":
    main()
