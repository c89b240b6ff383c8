"""The bag of tricks on CIFAR-10: what each trick buys, and at what cost.

A compact CNN is trained with the same epoch budget, by default on a
10,000-image training subset (the small-data regime, where overfitting is the
problem), as

- the baseline (no regularization);
- each trick on its own: the augmentation pipeline, weight decay (L2),
  dropout, DropConnect in the head, smoothed early stopping, EMA weights, a
  snapshot ensemble, 10-crop test-time augmentation;
- all of them together.

Every decision (early stopping, which snapshots to keep) is taken on a
validation split carved from the training images outside the training subset;
the 10,000 test images are used only for the final numbers. The script prints
a table (test accuracy, test loss, train-test gap, wall time, parameters),
writes it as Markdown and CSV, and saves the learning curves as a PNG.

"all" combines every trick that composes with the others. The snapshot
ensemble drives its own cyclic learning rate, which EMA would average across
restarts and early stopping would cut short, so it enters a second combined
row, "all_snapshot", in place of EMA and early stopping.

Usage:

    python examples/cifar10_bag_of_tricks.py --quick
    python examples/cifar10_bag_of_tricks.py --data-dir ../shared/data/cifar10 \
        --epochs 30 --seeds 0,1,2
    python examples/cifar10_bag_of_tricks.py --tricks baseline,augment,all

Without `--data-dir` (or `KERASREG_DATA_DIR`) CIFAR-10 is downloaded with
`keras.datasets.cifar10`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

# Single tricks, in table order, then the combinations.
SINGLE_TRICKS = (
    "augment",
    "weight_decay",
    "dropout",
    "dropconnect",
    "early_stopping",
    "ema",
    "snapshot",
    "tta",
)
COMBINATIONS = {
    "baseline": frozenset(),
    "all": frozenset(
        {
            "augment",
            "weight_decay",
            "dropout",
            "dropconnect",
            "early_stopping",
            "ema",
            "tta",
        }
    ),
    "all_snapshot": frozenset(
        {"augment", "weight_decay", "dropout", "dropconnect", "snapshot", "tta"}
    ),
}
DEFAULT_ROWS = ("baseline", *SINGLE_TRICKS, "all", "all_snapshot")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The training recipe shared by every row."""

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float = 0.5
    dropconnect: float = 0.5
    ema_decay: float = 0.998
    snapshots: int = 5
    patience: int = 6
    tta_padding: int = 4
    verbose: int | str = "auto"


def tricks_of(row: str) -> frozenset[str]:
    """The set of tricks a row name stands for (`a+b` combines tricks)."""
    if row in COMBINATIONS:
        return COMBINATIONS[row]
    parts = frozenset(row.split("+"))
    unknown = parts - set(SINGLE_TRICKS)
    if unknown:
        raise ValueError(
            "Invalid value received for argument `tricks`. Expected names from "
            f"{', '.join((*COMBINATIONS, *SINGLE_TRICKS))} (or `a+b` "
            f"combinations). Received: tricks={row!r}"
        )
    return parts


# ----------------------------------------------------------------------------
# Model and training
# ----------------------------------------------------------------------------


def build_model(tricks: frozenset[str], x_train: np.ndarray, s: Settings, seed: int):
    """The compact CNN, with the model-side tricks switched on."""
    import keras

    import kerasreg

    keras.utils.set_random_seed(seed)
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(x_train[:5000].astype("float32") / 255.0)

    inputs = keras.Input(shape=x_train.shape[1:], dtype="uint8")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    if "augment" in tricks:
        x = kerasreg.augmentation.pipeline(
            task="natural", value_range=(0.0, 1.0), seed=seed
        )(x)
    x = normalizer(x)
    for filters in (32, 64, 128):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            # Small data, few steps: faster-moving BatchNorm statistics.
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    if "dropconnect" in tricks:
        x = kerasreg.layers.DropConnectDense(
            256, rate=s.dropconnect, activation="relu", seed=seed
        )(x)
    else:
        x = keras.layers.Dense(256, activation="relu")(x)
    if "dropout" in tricks:
        # Dropout where the parameters are: the fully connected head (AlexNet).
        x = kerasreg.layers.InvertedDropout(s.dropout, seed=seed)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="compact_cnn")
    if "weight_decay" in tricks:
        model = kerasreg.regularizers.add_weight_regularization(
            model, keras.regularizers.L2(s.weight_decay)
        )
    return model


def _optimizer(tricks: frozenset[str], steps: int, s: Settings):
    import keras

    if "snapshot" in tricks:
        # SnapshotEnsemble sets the learning rate at every batch.
        lr = s.learning_rate
    else:
        # Linear warm-up over the first epochs, then cosine decay to zero.
        warmup = steps * max(1, s.epochs // 10)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, steps * s.epochs - warmup),
            warmup_target=s.learning_rate,
            warmup_steps=warmup,
        )
    return keras.optimizers.SGD(lr, momentum=s.momentum, nesterov=True)


@dataclasses.dataclass
class RunResult:
    """One row, one seed."""

    row: str
    seed: int
    test_accuracy: float
    test_loss: float
    train_accuracy: float
    seconds: float
    params: int
    epochs_run: int
    history: dict

    @property
    def gap(self) -> float:
        return self.train_accuracy - self.test_accuracy


def _evaluate_probs(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(np.mean(np.argmax(probs, axis=1) == y)), float(-np.mean(np.log(p)))


def run_row(row: str, data, s: Settings, seed: int, work_dir: Path) -> RunResult:
    """Trains one row for one seed and measures it on the test images."""
    import keras

    import kerasreg

    tricks = tricks_of(row)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    steps = math.ceil(len(x_train) / s.batch_size)
    start = time.perf_counter()
    model = build_model(tricks, x_train, s, seed)
    model.compile(
        optimizer=_optimizer(tricks, steps, s),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = []
    # EMAWeights first: the callbacks after it see the EMA weights at the end
    # of each epoch, so early stopping keeps the best *averaged* weights.
    if "ema" in tricks:
        callbacks.append(kerasreg.callbacks.EMAWeights(decay=s.ema_decay))
    if "early_stopping" in tricks:
        callbacks.append(
            kerasreg.callbacks.SmoothedEarlyStopping(
                monitor="val_loss", patience=s.patience, restore_best_weights=True
            )
        )
    snapshot = None
    if "snapshot" in tricks:
        cycles = max(1, min(s.snapshots, s.epochs))
        snapshot = kerasreg.callbacks.SnapshotEnsemble(
            cycles=cycles,
            epochs_per_cycle=max(1, s.epochs // cycles),
            max_lr=s.learning_rate,
            min_lr=0.0,
            directory=str(work_dir / f"{row}-seed{seed}-snapshots"),
        )
        callbacks.append(snapshot)
    history = model.fit(
        x_train,
        y_train,
        batch_size=s.batch_size,
        epochs=s.epochs,
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        verbose=s.verbose,
    )
    predictor = model
    if snapshot is not None:
        # Keep the number of last snapshots that does best on validation.
        best_m, best_acc = 1, -1.0
        for m in range(1, len(snapshot.snapshots) + 1):
            acc, _ = _evaluate_probs(
                snapshot.ensemble(last=m).predict(x_val, batch_size=512, verbose=0),
                y_val,
            )
            if acc > best_acc:
                best_m, best_acc = m, acc
        predictor = snapshot.ensemble(last=best_m)
    train_probs = predictor.predict(x_train, batch_size=512, verbose=0)
    if "tta" in tricks:
        predictor = kerasreg.TestTimeAugmentation(
            predictor,
            crops="ten",
            padding=s.tta_padding,
        )
    test_probs = predictor.predict(x_test, batch_size=256, verbose=0)
    seconds = time.perf_counter() - start
    train_acc, _ = _evaluate_probs(train_probs, y_train)
    test_acc, test_loss = _evaluate_probs(test_probs, y_test)
    result = RunResult(
        row=row,
        seed=seed,
        test_accuracy=test_acc,
        test_loss=test_loss,
        train_accuracy=train_acc,
        seconds=seconds,
        params=int(model.count_params()),
        epochs_run=len(history.epoch),
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
    )
    keras.backend.clear_session()
    return result


# ----------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """One table row: the mean and spread over seeds."""

    row: str
    seeds: int
    test_accuracy: float
    test_accuracy_std: float
    test_loss: float
    gap: float
    seconds: float
    params: int

    @property
    def tricks(self) -> str:
        return ", ".join(sorted(tricks_of(self.row))) or "none"


def summarize(results: Sequence[RunResult]) -> list[Summary]:
    """Groups runs by row (in first-seen order) into mean and std over seeds."""
    rows: dict[str, list[RunResult]] = {}
    for r in results:
        rows.setdefault(r.row, []).append(r)
    out = []
    for row, runs in rows.items():
        acc = np.array([r.test_accuracy for r in runs])
        out.append(
            Summary(
                row=row,
                seeds=len(runs),
                test_accuracy=float(acc.mean()),
                test_accuracy_std=float(acc.std(ddof=1)) if len(runs) > 1 else 0.0,
                test_loss=float(np.mean([r.test_loss for r in runs])),
                gap=float(np.mean([r.gap for r in runs])),
                seconds=float(np.mean([r.seconds for r in runs])),
                params=runs[0].params,
            )
        )
    return out


def markdown_table(summaries: Sequence[Summary]) -> str:
    """The results as a Markdown table; deltas are against the baseline row."""
    base = next((s.test_accuracy for s in summaries if s.row == "baseline"), None)
    lines = [
        "| row | test accuracy | vs baseline | test loss | train-test gap | wall time (s) | parameters | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        delta = "" if base is None else f"{100 * (s.test_accuracy - base):+.1f} pts"
        lines.append(
            f"| {s.row} | {100 * s.test_accuracy:.2f}% ± {100 * s.test_accuracy_std:.2f} "
            f"| {delta} | {s.test_loss:.3f} | {100 * s.gap:.1f} pts | {s.seconds:.0f} "
            f"| {s.params:,} | {s.seeds} |"
        )
    return "\n".join(lines) + "\n"


def write_results(
    summaries: Sequence[Summary],
    results: Sequence[RunResult],
    out_dir: Path,
    header: str = "",
) -> tuple[Path, Path]:
    """Writes `results.md`, `results.csv` and the raw `runs.json` (atomically)."""
    from kerasreg.utils import atomic_write_text

    out_dir = Path(out_dir)
    md = out_dir / "results.md"
    atomic_write_text(
        md, (header + "\n\n" if header else "") + markdown_table(summaries)
    )
    fields = [
        "row",
        "tricks",
        "seeds",
        "test_accuracy",
        "test_accuracy_std",
        "test_loss",
        "gap",
        "seconds",
        "params",
    ]
    lines = [",".join(fields)]
    for s in summaries:
        values = [getattr(s, f) for f in fields]
        lines.append(
            ",".join(f'"{v}"' if isinstance(v, str) else f"{v:.6g}" for v in values)
        )
    csv_path = out_dir / "results.csv"
    atomic_write_text(csv_path, "\n".join(lines) + "\n")
    runs = [dataclasses.asdict(r) for r in results]
    atomic_write_text(out_dir / "runs.json", json.dumps(runs, indent=1))
    return md, csv_path


def save_learning_curves(histories: dict[str, dict], path: Path) -> Path:
    """Plots training and validation loss and accuracy of each row to a PNG."""
    import matplotlib

    from kerasreg.utils import atomic_path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for row, hist in histories.items():
        (line,) = axes[0].plot(hist.get("val_loss", []), label=row)
        axes[0].plot(hist.get("loss", []), color=line.get_color(), alpha=0.35, ls="--")
        axes[1].plot(hist.get("val_accuracy", []), color=line.get_color(), label=row)
        axes[1].plot(
            hist.get("accuracy", []), color=line.get_color(), alpha=0.35, ls="--"
        )
    axes[0].set(title="loss (dashed: training)", xlabel="epoch")
    axes[1].set(title="accuracy (dashed: training)", xlabel="epoch")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def load_data(
    data_dir, train_size: int, val_size: int, test_size: int | None, seed: int
):
    """Train subset, validation split (outside the subset) and test images."""
    from kerasreg import datasets

    (x, y), (x_test, y_test) = datasets.load_cifar10(
        data_dir, test_size=test_size, seed=seed
    )
    (x_pool, y_pool), (x_val, y_val) = datasets.train_val_split(
        x, y, val_size, seed=seed
    )
    train_size = min(train_size, len(x_pool))
    idx = datasets.stratified_subset(y_pool, train_size, seed=seed)
    return (x_pool[idx], y_pool[idx]), (x_val, y_val), (x_test, y_test)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data-dir", default=None, help="CIFAR-10 folder (or $KERASREG_DATA_DIR)"
    )
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--val-size", type=int, default=2_000)
    p.add_argument("--test-size", type=int, default=None, help="default: all 10,000")
    p.add_argument(
        "--epochs", type=int, default=None, help="default: 30 (3 with --quick)"
    )
    p.add_argument("--seed", type=int, default=None, help="a single seed")
    p.add_argument(
        "--seeds", default=None, help="comma-separated seeds (default 0,1,2)"
    )
    p.add_argument(
        "--tricks",
        default=None,
        help=f"comma-separated rows (default: {','.join(DEFAULT_ROWS)})",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="a few minutes on 2 CPU cores")
    p.add_argument("--output-dir", default="outputs/cifar10_bag_of_tricks")
    p.add_argument(
        "--verbose", default="auto", help="Keras fit verbosity (auto, 0, 1, 2)"
    )
    p.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="DIR",
        help="combine the runs.json of earlier runs (e.g. rows split over processes) "
        "into one table in --output-dir; trains nothing",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.train_size = min(args.train_size, 2_000)
        args.val_size = min(args.val_size, 500)
        args.test_size = args.test_size or 2_000
        args.epochs = args.epochs or 3
        args.seeds = args.seeds or "0"
    args.epochs = args.epochs or 30
    if args.seed is not None:
        args.seeds = str(args.seed)
    args.seeds = [int(v) for v in (args.seeds or "0,1,2").split(",")]
    args.rows = [
        r.strip()
        for r in (args.tricks or ",".join(DEFAULT_ROWS)).split(",")
        if r.strip()
    ]
    for row in args.rows:
        tricks_of(row)  # validates
    if args.verbose != "auto":
        args.verbose = int(args.verbose)
    return args


def load_runs(path: Path) -> list[RunResult]:
    """The runs a previous invocation saved in `runs.json`."""
    return [RunResult(**r) for r in json.loads(Path(path).read_text())]


def merge(dirs: Iterable[str], out_dir: Path, header: str = "") -> list[Summary]:
    """One table from the `runs.json` of several runs, rows in the default order."""
    results = [r for d in dirs for r in load_runs(Path(d) / "runs.json")]
    order = {row: i for i, row in enumerate(DEFAULT_ROWS)}
    results.sort(key=lambda r: (order.get(r.row, len(order)), r.row, r.seed))
    summaries = summarize(results)
    write_results(summaries, results, out_dir, header)
    seed0 = min(r.seed for r in results)
    save_learning_curves(
        {r.row: r.history for r in results if r.seed == seed0},
        out_dir / "learning_curves.png",
    )
    return summaries


def main(argv: Sequence[str] | None = None) -> list[Summary]:
    args = parse_args(argv)
    if args.merge:
        summaries = merge(
            args.merge,
            Path(args.output_dir),
            header=f"Merged from {len(args.merge)} runs",
        )
        print(markdown_table(summaries))
        return summaries
    import keras

    settings = Settings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        snapshots=min(5, args.epochs),
        verbose=args.verbose,
    )
    data = load_data(
        args.data_dir, args.train_size, args.val_size, args.test_size, seed=0
    )
    out_dir = Path(args.output_dir)
    print(
        f"CIFAR-10: {len(data[0][0])} training, {len(data[1][0])} validation, "
        f"{len(data[2][0])} test images; {args.epochs} epochs; seeds {args.seeds}; "
        f"keras {keras.__version__} on {keras.backend.backend()}"
    )
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory() as work:
        for row in args.rows:
            for seed in args.seeds:
                print(f"\n=== {row} (seed {seed}) ===", flush=True)
                r = run_row(row, data, settings, seed, Path(work))
                print(
                    f"{row} seed {seed}: test accuracy {r.test_accuracy:.4f}, "
                    f"loss {r.test_loss:.3f}, gap {r.gap:+.3f}, {r.seconds:.0f} s",
                    flush=True,
                )
                results.append(r)
                summaries = summarize(results)
                header = (
                    f"CIFAR-10, {len(data[0][0])} training images, {args.epochs} epochs, "
                    f"seeds {args.seeds}, keras {keras.__version__} ({keras.backend.backend()})"
                )
                write_results(summaries, results, out_dir, header)
    save_learning_curves(
        {r.row: r.history for r in results if r.seed == args.seeds[0]},
        out_dir / "learning_curves.png",
    )
    print("\n" + markdown_table(summaries))
    print(
        f"Written: {out_dir / 'results.md'}, {out_dir / 'results.csv'}, "
        f"{out_dir / 'learning_curves.png'}"
    )
    return summaries


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
