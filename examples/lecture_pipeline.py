"""The classic CNN-training pipeline on CIFAR-10, step by step, with Keras.

The walk-through of the lecture ("CNN training pipeline: example", after
cs231n), on the real CIFAR-10:

1. preprocess: flatten the images and subtract the mean training image;
2. architecture: a two-layer net, 3072 -> 50 (ReLU) -> 10 (softmax), with
   small initial weights (normal, std 1e-4) and zero biases;
3. `kerasreg.diagnostics.sanity_check`: the initial loss is ln(10) = 2.30
   with regularization off; cranking the regularization up to 1e3 raises it
   (the lecture's 3.07); 20 examples can be overfit to training accuracy
   1.00 with plain SGD at 1e-3, no regularization; the learning-rate sweep
   brackets the usable rates;
4. the two failures of the lecture, for real: learning rate 1e-6 (the loss
   barely moves) and 1e6 (the loss explodes to NaN);
5. a coarse-to-fine search in log space over the learning rate and the
   regularization strength (stage 1: short runs over wide ranges; stage 2:
   longer runs over the ranges of the best stage-1 trials), with
   `kerasreg.tuners.CoarseToFineSearch` when keras-tuner is installed, else
   a plain random search in log space with the same two stages.

The lecture reaches about 53% validation accuracy with this network; the
script prints what we reach. The lecture's penalty is `0.5 * reg * sum(W**2)`;
Keras' `L2(l2)` adds `l2 * sum(W**2)`, so `reg` maps to `L2(reg / 2)`.

Usage:

    python examples/lecture_pipeline.py --quick
    python examples/lecture_pipeline.py --data-dir ../shared/data/cifar10
    python examples/lecture_pipeline.py --data-dir ../shared/data/cifar10 \
        --budget lecture --output-dir benchmarks/results/lecture_pipeline

`--budget quick` (the default) searches 12 one-epoch trials, then 6 trials of
5 epochs, with SGD momentum 0.9. `--budget lecture` is the notes' own
protocol: 100 coarse trials of 5 epochs over lr = 10^U(-6, -3) and
reg = 10^U(-5, 5), then up to 100 fine trials of 5 epochs over the ranges of
the best coarse trials (the notes narrowed by hand to lr 10^U(-4, -3),
reg 10^U(-4, 0); the oracle narrows by itself), with the notes' optimizer:
their `update='momentum'` runs cs231n's `ClassifierTrainer` at its default
`momentum=0`, i.e. plain SGD (`--momentum` changes it). A lecture-budget search resumes where it stopped when run again
with the same `--output-dir` (keras-tuner's `overwrite=False`). The chosen
model (the best trial's best epoch) is evaluated once on the 10,000 test
images, which the search never sees.

Without `--data-dir` (or `KERASREG_DATA_DIR`), CIFAR-10 is downloaded with
`keras.datasets.cifar10`. Results go to `--output-dir` (default `outputs/`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REFERENCE_VAL_ACCURACY = 0.53  # The lecture's best, 2-layer net, 50 hidden units.

#: Search sizes: trials and epochs of the coarse and the fine stage.
BUDGETS = {
    "quick": {
        "coarse_trials": 12,
        "coarse_epochs": 1,
        "fine_trials": 6,
        "fine_epochs": 5,
        "momentum": 0.9,
    },
    "lecture": {
        "coarse_trials": 100,
        "coarse_epochs": 5,
        "fine_trials": 100,
        "fine_epochs": 5,
        # The notes call `trainer.train(..., update='momentum')` without a
        # `momentum`, and cs231n's `ClassifierTrainer.train` defaults it to 0:
        # their search ran plain SGD (see benchmarks/lecture_ablation.py).
        "momentum": 0.0,
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help="CIFAR-10 class folders")
    p.add_argument("--output-dir", default="outputs", help="where results go")
    p.add_argument("--quick", action="store_true", help="a CI-sized run")
    p.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="quick",
        help="the search's size: quick (12x1 + 6x5 epochs) or lecture "
        "(100x5 + 100x5 epochs, the notes' protocol)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="coarse trials that define the fine ranges (default: 3, 10 for "
        "--budget lecture)",
    )
    p.add_argument("--train-size", type=int, default=49_000)
    p.add_argument("--val-size", type=int, default=1_000)
    p.add_argument("--coarse-trials", type=int, default=12)
    p.add_argument("--coarse-epochs", type=int, default=1)
    p.add_argument("--fine-trials", type=int, default=6)
    p.add_argument("--fine-epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument(
        "--momentum",
        type=float,
        default=0.9,
        help="SGD momentum of the search (default: 0.9, 0 for --budget lecture)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-tuner",
        action="store_true",
        help="plain random search even when keras-tuner is installed",
    )
    args = p.parse_args(argv)
    for name, value in BUDGETS[args.budget].items():  # explicit options win
        if getattr(args, name) == p.get_default(name):
            setattr(args, name, value)
    if args.top_k is None:
        args.top_k = 10 if args.budget == "lecture" else 3
    args.top_k = min(args.top_k, args.coarse_trials)
    if args.quick:  # Smaller defaults; options given explicitly still win.
        quick = {
            "train_size": 400,
            "val_size": 100,
            "coarse_trials": 3,
            "coarse_epochs": 1,
            "fine_trials": 2,
            "fine_epochs": 1,
        }
        for name, value in quick.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    args.learning_rates = (
        [1e-6, 1e-3, 1e6] if args.quick else [10.0**k for k in range(-6, 7)]
    )
    return args


def load_data(args, centre: bool = True):
    """The flattened float32 train / validation / test splits.

    `centre=True` (the lecture's step 1) subtracts the mean training image
    from all three; `centre=False` returns the raw 0-255 pixels.
    """
    import kerasreg
    import kerasreg.datasets

    total = args.train_size + args.val_size
    (x, y), (x_test, y_test) = kerasreg.datasets.load_cifar10(
        args.data_dir,
        train_size=None if total >= 50_000 else total,
        test_size=200 if args.quick else None,
        seed=args.seed,
    )
    (x_train, y_train), (x_val, y_val) = kerasreg.datasets.train_val_split(
        x, y, args.val_size, seed=args.seed
    )
    # The image folders come grouped by class: shuffle like the lecture's data.
    order = np.random.default_rng(args.seed).permutation(len(y_train))
    x_train, y_train = x_train[order], y_train[order]
    x_train = x_train.reshape(len(x_train), -1).astype("float32")
    x_val = x_val.reshape(len(x_val), -1).astype("float32")
    x_test = x_test.reshape(len(x_test), -1).astype("float32")
    if not centre:
        return (x_train, y_train), (x_val, y_val), (x_test, y_test)
    mean_image = x_train.mean(0)  # Step 1: zero-centre with the training mean.
    return (
        (x_train - mean_image, y_train),
        (x_val - mean_image, y_val),
        (x_test - mean_image, y_test),
    )


def two_layer_net(
    reg: float = 0.0, hidden: int = 50, seed: int = 0, init_std: float | None = 1e-4
):
    """3072 -> 50 (ReLU) -> 10 (softmax); weights ~ N(0, init_std^2), zero biases.

    `init_std=None`: Keras' default Glorot-uniform weights instead. The
    penalty is the lecture's `0.5 * reg * ||W||^2`, i.e. `L2(reg / 2)`.
    """
    import keras

    def init(seed):
        if init_std is None:
            return keras.initializers.GlorotUniform(seed)
        return keras.initializers.RandomNormal(0.0, init_std, seed=seed)

    penalty = keras.regularizers.L2(reg / 2) if reg > 0 else None
    return keras.Sequential(
        [
            keras.Input((3072,)),
            keras.layers.Dense(
                hidden,
                activation="relu",
                kernel_initializer=init(seed),
                kernel_regularizer=penalty,
            ),
            keras.layers.Dense(
                10,
                activation="softmax",
                kernel_initializer=init(seed + 1),
                kernel_regularizer=penalty,
            ),
        ]
    )


def compile_net(model, lr: float, steps_per_epoch: int, momentum: float = 0.9):
    import keras

    # The lecture's search: SGD (its "momentum" update with the trainer's
    # default momentum 0 at --budget lecture), learning rate x0.9 every epoch.
    schedule = keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=steps_per_epoch, decay_rate=0.9, staircase=True
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def diagnose_rate(lr, x, y, args) -> dict:
    """One epoch of plain SGD at `lr`, as in the lecture's two failures."""
    import keras

    import kerasreg
    import kerasreg.datasets

    model = two_layer_net(reg=1e-6, seed=args.seed)
    model.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = float(model.evaluate(x, y, batch_size=1000, verbose=0)[0])
    detector = kerasreg.callbacks.ExplosionDetector(
        monitor="loss", warmup_batches=1, verbose=0
    )
    hist = model.fit(
        x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=[detector]
    )
    end = float(hist.history["loss"][-1])
    if not math.isfinite(end) or end > 3 * start:
        verdict = "loss exploding: learning rate too high"
    elif start - end < 1e-3 * start:
        verdict = "loss barely changing: learning rate too low"
    else:
        verdict = "loss going down"
    return {"lr": lr, "start": start, "end": end, "verdict": verdict}


def search_with_tuner(data, args, out_dir: Path):
    """Coarse-to-fine search with kerasreg.tuners.CoarseToFineSearch.

    Returns the trials (dicts) and the chosen model (the best trial's best
    epoch, as keras-tuner saved it). Writes `search_table.md` and
    `search.png` (matplotlib permitting) to `out_dir`.
    """
    from kerasreg._io import atomic_write_text
    from kerasreg.tuners import CoarseToFineSearch, plot_search, search_table

    (x_train, y_train), (x_val, y_val) = data[:2]
    steps = math.ceil(len(x_train) / args.batch_size)

    def build(hp):
        lr = hp.Float("lr", 1e-6, 1e-3, sampling="log")
        reg = hp.Float("reg", 1e-5, 1e5, sampling="log")
        return compile_net(
            two_layer_net(reg, seed=args.seed), lr, steps, momentum=args.momentum
        )

    tuner = CoarseToFineSearch(
        build,
        objective="val_accuracy",
        stages=[
            {"trials": args.coarse_trials, "epochs": args.coarse_epochs},
            {"trials": args.fine_trials, "epochs": args.fine_epochs},
        ],
        top_k=args.top_k,
        seed=args.seed,
        directory=str(out_dir / "tuner"),
        project_name=(
            f"lecture_pipeline_{args.budget}_{args.seed}_momentum{args.momentum:g}"
        ),
        # The lecture budget runs for an hour or more: resume it.
        overwrite=args.budget != "lecture",
    )
    tuner.search(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        batch_size=args.batch_size,
        verbose=0,
    )
    trials = []
    for trial in tuner.oracle.trials.values():
        score = trial.score
        trials.append(
            {
                "stage": tuner.oracle.stage_of(trial.trial_id),
                "lr": trial.hyperparameters.values["lr"],
                "reg": trial.hyperparameters.values["reg"],
                "val_acc": float(score) if score is not None else float("nan"),
                "epochs": tuner.oracle.budget_of(trial.trial_id)["epochs"],
            }
        )
    atomic_write_text(out_dir / "search_table.md", str(search_table(tuner)) + "\n")
    print(tuner.oracle.stage_summary())
    try:
        plot_search(tuner, x="lr", y="reg", path=out_dir / "search.png")
    except ImportError:
        print("matplotlib is not installed: no search.png")
    with warnings.catch_warnings():  # the saved optimizer state is not needed
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        best_model = tuner.get_best_models(1)[0]
    return trials, best_model


def search_plain(data, args):
    """Coarse-to-fine random search in log space, without keras-tuner.

    Returns the trials (dicts) and the chosen model (the best trial's model
    at its end).
    """
    (x_train, y_train), (x_val, y_val) = data[:2]
    steps = math.ceil(len(x_train) / args.batch_size)
    rng = np.random.default_rng(args.seed)
    ranges = {"lr": (-6.0, -3.0), "reg": (-5.0, 5.0)}  # log10, as in the lecture
    trials = []
    best_model, best_val = None, -1.0
    for stage, (count, epochs) in enumerate(
        [(args.coarse_trials, args.coarse_epochs), (args.fine_trials, args.fine_epochs)]
    ):
        if stage:
            best = sorted(trials, key=lambda t: -np.nan_to_num(t["val_acc"]))[
                : args.top_k
            ]
            ranges = {
                k: (
                    min(math.log10(t[k]) for t in best) - 0.1,
                    max(math.log10(t[k]) for t in best) + 0.1,
                )
                for k in ranges
            }
        for _ in range(count):
            lr = 10 ** rng.uniform(*ranges["lr"])
            reg = 10 ** rng.uniform(*ranges["reg"])
            model = compile_net(
                two_layer_net(reg, seed=args.seed), lr, steps, momentum=args.momentum
            )
            hist = model.fit(
                x_train,
                y_train,
                batch_size=args.batch_size,
                epochs=epochs,
                validation_data=(x_val, y_val),
                verbose=0,
            )
            val = max(np.nan_to_num(hist.history["val_accuracy"]))
            trials.append(
                {
                    "stage": stage + 1,
                    "lr": lr,
                    "reg": reg,
                    "val_acc": float(val),
                    "epochs": epochs,
                }
            )
            final = float(np.nan_to_num(hist.history["val_accuracy"][-1]))
            if final > best_val:
                best_model, best_val = model, final
            print(
                f"  val_acc: {val:.3f}, lr: {lr:.3e}, reg: {reg:.3e} (stage {stage + 1})"
            )
    return trials, best_model


def main(argv=None) -> dict:
    from kerasreg._io import atomic_write_text

    args = parse_args(argv)
    import keras

    import kerasreg
    import kerasreg.datasets

    keras.utils.set_random_seed(args.seed)
    out_dir = Path(args.output_dir)
    t0 = time.time()
    data = load_data(args)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    print(
        f"CIFAR-10: {len(x_train)} train / {len(x_val)} val images, "
        f"mean image subtracted (backend {keras.backend.backend()})"
    )

    # Step 3: sanity checks. The lecture's reg 1e3 is L2(500) in Keras terms.
    model = two_layer_net(seed=args.seed)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    report = kerasreg.diagnostics.sanity_check(
        model,
        x_train,
        y_train,
        tiny=20,
        epochs=200,
        regularization=500.0,
        learning_rates=args.learning_rates,
        sweep_size=min(1000, len(x_train)),
        sweep_steps=20,
        eval_size=min(2000, len(x_train)),
    )
    print(report)

    # Step 4: the lecture's too-low and too-high learning rates, one epoch each.
    diagnoses = [diagnose_rate(lr, x_train, y_train, args) for lr in (1e-6, 1e6)]
    for d in diagnoses:
        print(
            f"lr {d['lr']:.0e}: loss {d['start']:.6f} -> {d['end']:.6f}: {d['verdict']}"
        )

    # Step 5: coarse-to-fine search.
    use_tuner = False
    if not args.no_tuner:
        try:
            import keras_tuner  # noqa: F401

            use_tuner = True
        except ImportError:
            pass
    print(
        f"Coarse-to-fine search ({'kerasreg.tuners.CoarseToFineSearch' if use_tuner else 'plain random search'}), "
        f"budget {args.budget}: {args.coarse_trials} x {args.coarse_epochs} "
        f"epoch(s), then {args.fine_trials} x {args.fine_epochs} epoch(s) "
        f"over the ranges of the top {args.top_k}; SGD momentum {args.momentum:g}"
    )
    t_search = time.time()
    trials, best_model = (
        search_with_tuner(data, args, out_dir)
        if use_tuner
        else search_plain(data, args)
    )
    search_seconds = time.time() - t_search
    epochs = sum(t["epochs"] or 0 for t in trials)
    trials = [t for t in trials if t["val_acc"] == t["val_acc"]]
    for t in sorted(trials, key=lambda t: (t["stage"] or 0, -t["val_acc"])):
        print(
            f"  stage {t['stage']}: val_acc {t['val_acc']:.3f}, "
            f"lr {t['lr']:.3e}, reg {t['reg']:.3e}"
        )
    best = max(trials, key=lambda t: t["val_acc"])
    print(
        f"Best validation accuracy: {best['val_acc']:.3f} (lr {best['lr']:.3e}, "
        f"reg {best['reg']:.3e}); the lecture reports about "
        f"{REFERENCE_VAL_ACCURACY:.0%} for this network."
    )
    # The test split, once, for the chosen model only.
    test_loss, test_accuracy = best_model.evaluate(
        x_test, y_test, batch_size=1000, verbose=0
    )[:2]
    print(
        f"Test accuracy of the chosen model: {test_accuracy:.3f} "
        f"({len(y_test)} test images); search {len(trials)} trials, {epochs} "
        f"epochs, {search_seconds:.0f} s"
    )
    result = {
        "backend": keras.backend.backend(),
        "train_size": len(x_train),
        "val_size": len(x_val),
        "sanity": report.to_dict(),
        "rate_diagnoses": diagnoses,
        "search": {"tuner": use_tuner, "trials": trials, "best": best},
        "reference_val_accuracy": REFERENCE_VAL_ACCURACY,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "seconds": time.time() - t0,
    }
    atomic_write_text(
        out_dir / "lecture_pipeline.json", json.dumps(result, indent=2, default=str)
    )
    summary = {
        "budget": args.budget,
        "best_val_accuracy": best["val_acc"],
        "best_hyperparameters": {"lr": best["lr"], "reg": best["reg"]},
        "test_accuracy": float(test_accuracy),
        "trials": len(trials),
        "epochs": epochs,
        "seconds": round(search_seconds, 1),
        "seconds_total": round(result["seconds"], 1),
        "train_size": len(x_train),
        "val_size": len(x_val),
        "test_size": len(y_test),
        "backend": keras.backend.backend(),
        "tuner": use_tuner,
        "top_k": args.top_k,
        "momentum": args.momentum,
        "seed": args.seed,
    }
    atomic_write_text(out_dir / "result.json", json.dumps(summary, indent=2) + "\n")
    print(f"Wrote {out_dir / 'lecture_pipeline.json'} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
