"""Five hyper-parameter searches at the same epoch budget, on CIFAR-10.

The classic set-up of the cs231n training-pipeline notes: a two-layer network
with 50 hidden units (ReLU, softmax) on flattened, mean-subtracted CIFAR-10
pixels, trained with SGD (momentum 0.9, batches of 200), validated on a
held-out split of the *training* images. Five searches over the same
log-scale ranges (learning rate in [1e-6, 1e-1], L2 strength in [1e-6, 1e1])
may spend the same total number of training epochs (`--budget`):

- `coarse_to_fine`: `kerasreg.tuners.CoarseToFineSearch`, stage 1 about a
  third of the budget in trials of `--epochs // 2` epochs (a Latin
  hypercube), stage 2 the rest in longer trials of `--fine-epochs` epochs
  (default twice `--epochs`): the best stage-1 configuration again, then
  draws inside the region of the top `--top-k` (default 1), the stage-1
  trials ranked by their last epoch (`--rank-by last`, the oracle's
  `rank_by`; see `coarse_to_fine_plan`);
- `random`: keras-tuner `RandomSearch` (log sampling), `--epochs`-epoch trials;
- `hyperband`: keras-tuner `Hyperband` (`max_epochs=--epochs`, `factor=3`),
  as many brackets as the budget holds; the epochs a trial trains are its
  `tuner/epochs - tuner/initial_epoch`;
- `bayesian`: keras-tuner `BayesianOptimization` (Gaussian process),
  `--epochs`-epoch trials;
- `grid`: keras-tuner `GridSearch` over a log-spaced grid of as many points.

Every keras-tuner oracle is capped at the budget: a trial that would take the
search past it is not started (`BudgetedOracle`). For every search and seed
the script records the best validation accuracy, the epochs spent (in trial
order) until a trial first reached `--threshold`, the epochs spent in all and
the wall time, one record per (searcher, seed) in
`OUTPUT_DIR/runs.json` as soon as the search ends; a rerun with the same
output directory skips the records already there (and refuses other
settings), so a long run can be stopped and resumed. At the end it prints
the mean and spread over seeds per searcher.

Usage (all in one process):

    python benchmarks/search_benchmark.py --data-dir ../shared/data/cifar10 \\
        --output-dir benchmarks/results/search_benchmark
    # --quick: 2,000 training images, a 12-epoch budget, 2 seeds (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import keras_tuner  # noqa: E402
from keras_tuner.engine.trial import TrialStatus  # noqa: E402

from kerasreg._io import atomic_write_text  # noqa: E402
from kerasreg.datasets import load_cifar10, train_val_split  # noqa: E402
from kerasreg.tuners import (  # noqa: E402
    CoarseToFineOracle,
    CoarseToFineSearch,
    RegularizationHyperModel,
)

LR_RANGE = (1e-6, 1e-1)
L2_RANGE = (1e-6, 1e1)
SEARCHERS = ("coarse_to_fine", "random", "hyperband", "bayesian", "grid")


def load_data(data_dir, train_size, val_size, seed=0):
    """Flattened, mean-subtracted train / held-out validation arrays."""
    (x, y), _ = load_cifar10(data_dir, train_size=train_size + val_size, seed=seed)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, val_size, seed=seed)
    x_tr = x_tr.reshape(len(x_tr), -1).astype("float32")
    x_val = x_val.reshape(len(x_val), -1).astype("float32")
    mean = x_tr.mean(axis=0, keepdims=True)  # Mean image of the training split.
    return (x_tr - mean, y_tr), (x_val - mean, y_val)


def build(l2):
    """Two-layer net, 50 hidden units, small random init (as in cs231n)."""
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


def trial_epochs(values: dict, default: int) -> int:
    """Epochs a keras-tuner trial trains (Hyperband resumes from a checkpoint)."""
    if "tuner/epochs" in values:
        return int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
    return default


def budgeted(oracle_class):
    """`oracle_class` that starts no trial which would exceed `epoch_budget`.

    The epochs of the trials created so far (running ones included) plus the
    new trial's must fit the budget; else the search stops.
    """

    class BudgetedOracle(oracle_class):
        def __init__(self, *args, epoch_budget, epochs, **kwargs):
            super().__init__(*args, **kwargs)
            self.epoch_budget = epoch_budget
            self.trial_default_epochs = epochs

        def spent(self) -> int:
            return sum(
                trial_epochs(t.hyperparameters.values, self.trial_default_epochs)
                for t in self.trials.values()
            )

        def populate_space(self, trial_id):
            response = super().populate_space(trial_id)
            if response.get("status") == TrialStatus.RUNNING:
                need = trial_epochs(response["values"], self.trial_default_epochs)
                if self.spent() + need > self.epoch_budget:
                    return {"status": TrialStatus.STOPPED, "values": None}
            return response

    BudgetedOracle.__name__ = f"Budgeted{oracle_class.__name__}"
    return BudgetedOracle


class BudgetedHyperband(keras_tuner.Hyperband):
    """keras-tuner's `Hyperband` tuner (checkpoint hand-over, `tuner/epochs`
    to `fit`) over a given oracle: `Hyperband.__init__` only builds its own
    `HyperbandOracle` and hands it to `Tuner.__init__`."""

    def __init__(self, oracle, hypermodel, **kwargs):
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


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


def oracle_seed(seed: int) -> int:
    """The oracles' seed for benchmark seed `seed`, far apart from the others'.

    keras-tuner's oracles draw value k of a search with seed `s + k` (one
    seed per sampled value), so the searches of seeds 1 and 3 would share
    all but their first trial's values; seeds 10,007 apart share none within
    any budget this benchmark runs.
    """
    return 10_007 * (seed + 1)


def coarse_to_fine_plan(
    budget: int, epochs: int, fine_epochs: int | None = None
) -> dict:
    """`CoarseToFineSearch`'s stages (and options) for `budget` epochs.

    Stage 1: about a third of `budget` in trials of `epochs // 2` epochs (2
    for 5-epoch trials: a 1-epoch score ranks these configurations poorly),
    a Latin hypercube over the full ranges. Stage 2: the rest of the budget
    in trials of `fine_epochs` epochs (default `2 * epochs`: the coarse-to-fine
    recipe's short coarse runs, then longer fine ones), the best stage-1
    configuration re-run first (`promote=1`), the others drawn in the ranges
    of the top `--top-k`. Where the rest holds fewer than two trials of the
    default length, stage 2 runs `epochs`-epoch trials; an explicit
    `fine_epochs` is kept (at least one trial of it must fit).
    """
    short = max(1, epochs // 2)
    stage1 = max(1, round(budget / 3 / short))
    rest = budget - stage1 * short
    fine = 2 * epochs if fine_epochs is None else fine_epochs
    if fine_epochs is None and rest // fine < 2:
        fine = epochs
    stage2 = rest // fine if fine >= 1 else 0
    if stage2 < 1:
        raise ValueError(
            f"No fine trial of {fine} epochs fits the {rest} epochs that stage 1 "
            f"leaves of budget={budget}. Received: fine_epochs={fine_epochs}"
        )
    return {
        "stages": [
            {"trials": stage1, "epochs": short},
            {"trials": stage2, "epochs": fine},
        ],
        "promote": 1 if stage2 > 1 else 0,
    }


def make_tuner(searcher, seed, args, directory):
    """The tuner of `searcher`, capped at `args.budget` epochs in all."""
    common = dict(
        objective="val_accuracy",
        directory=directory,
        project_name=f"{searcher}_{seed}",
        overwrite=True,
    )
    budget, epochs = args.budget, args.epochs
    if searcher == "coarse_to_fine":
        plan = coarse_to_fine_plan(budget, epochs, args.fine_epochs)
        return CoarseToFineSearch(
            hypermodel(),
            top_k=min(args.top_k, plan["stages"][0]["trials"]),
            rank_by=args.rank_by,
            **plan,
            seed=oracle_seed(seed),
            **common,
        )
    cap = dict(epoch_budget=budget, epochs=epochs, seed=oracle_seed(seed))
    cap["max_consecutive_failed_trials"] = None
    if searcher == "random":
        oracle = budgeted(keras_tuner.oracles.RandomSearchOracle)(
            objective=common["objective"], max_trials=budget // epochs, **cap
        )
    elif searcher == "hyperband":
        oracle = budgeted(keras_tuner.oracles.HyperbandOracle)(
            objective=common["objective"],
            max_epochs=epochs,
            factor=3,
            hyperband_iterations=budget,  # more than fit: the budget stops it
            **cap,
        )
    elif searcher == "bayesian":
        oracle = budgeted(keras_tuner.oracles.BayesianOptimizationOracle)(
            objective=common["objective"], max_trials=budget // epochs, **cap
        )
    elif searcher == "grid":
        n_lr, n_l2 = grid_shape(budget // epochs)
        oracle = budgeted(keras_tuner.oracles.GridSearchOracle)(
            objective=common["objective"],
            hyperparameters=grid_space(n_lr, n_l2),
            max_trials=n_lr * n_l2,
            **cap,
        )
    else:
        raise ValueError(f"Unknown searcher {searcher!r}; one of {SEARCHERS}")
    common.pop("objective")
    if searcher == "hyperband":
        return BudgetedHyperband(oracle=oracle, hypermodel=hypermodel(), **common)
    return keras_tuner.Tuner(oracle=oracle, hypermodel=hypermodel(), **common)


def record_curves(tuner) -> dict:
    """Makes `tuner` keep every trial's validation accuracy per epoch.

    Returns the dict it fills: trial id -> list of `val_accuracy` values, one
    per epoch trained. (keras-tuner calls `Tuner.on_epoch_end(trial, model,
    epoch, logs)` after every epoch and passes nothing to the oracle: the
    trials themselves keep only their best value.)
    """
    curves = {}

    def on_epoch_end(trial, model, epoch, logs=None):
        value = (logs or {}).get("val_accuracy")
        curves.setdefault(trial.trial_id, []).append(
            None if value is None else float(value)
        )

    tuner.on_epoch_end = on_epoch_end
    return curves


def summarise_trials(tuner, default_epochs, threshold, curves=None):
    """Best score, epochs spent in all, epochs until `threshold` first met.

    `epochs_to_threshold` is the epochs trained until the first epoch whose
    validation accuracy reached `threshold` (the earlier trials' epochs plus
    the epochs of this trial up to that one), read from `curves` (see
    `record_curves`); without a trial's curve, its end counts.
    `epochs_to_threshold_trial_end` counts the whole trial that reached it.
    """
    oracle = tuner.oracle
    curves = curves or {}
    trials = sorted(oracle.trials.values(), key=lambda t: int(t.trial_id))
    spent, first, first_end = 0, None, None
    for trial in trials:
        if isinstance(oracle, CoarseToFineOracle):
            epochs = oracle.budget_of(trial.trial_id)["epochs"] or default_epochs
        else:
            epochs = trial_epochs(trial.hyperparameters.values, default_epochs)
        score = trial.score
        if first is None and score is not None and score >= threshold:
            first_end = spent + epochs
            curve = curves.get(trial.trial_id) or []
            at = next(
                (k for k, v in enumerate(curve) if v is not None and v >= threshold),
                None,
            )
            first = spent + (at + 1 if at is not None else epochs)
        spent += epochs
    scored = [
        t
        for t in trials
        if t.status == TrialStatus.COMPLETED
        and t.score is not None
        and math.isfinite(t.score)
    ]
    best = max(scored, key=lambda t: t.score) if scored else None
    return {
        "best_val_accuracy": float(best.score) if best else float("nan"),
        "best_hyperparameters": {
            k: v
            for k, v in (best.hyperparameters.values.items() if best else ())
            if not k.startswith("tuner/")
        },
        "epochs_to_threshold": first,
        "epochs_to_threshold_trial_end": first_end,
        "epochs": spent,
        "trials": len(trials),
        "failed_trials": sum(1 for t in trials if t.status == TrialStatus.FAILED),
    }


def run(searcher, seed, data, args, directory):
    (x_tr, y_tr), (x_val, y_val) = data
    keras.utils.set_random_seed(seed)
    tuner = make_tuner(searcher, seed, args, directory)
    curves = record_curves(tuner)
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
    record = {"searcher": searcher, "seed": seed}
    record.update(summarise_trials(tuner, args.epochs, args.threshold, curves))
    record["curves"] = {
        t: [round(v, 4) if v is not None else None for v in c]
        for t, c in sorted(curves.items(), key=lambda kv: int(kv[0]))
    }
    record["seconds"] = round(seconds, 1)
    return record


def settings_of(args) -> dict:
    return {
        "train_size": args.train_size,
        "val_size": args.val_size,
        "budget": args.budget,
        "epochs": args.epochs,
        "top_k": args.top_k,
        "rank_by": args.rank_by,
        "batch_size": args.batch_size,
        "threshold": args.threshold,
        "backend": keras.backend.backend(),
        "oracle_seeds": "10007 * (seed + 1)",
        "coarse_to_fine": coarse_to_fine_plan(
            args.budget, args.epochs, args.fine_epochs
        ),
        "epochs_to_threshold": "to the first epoch at the threshold",
    }


def load_runs(path: Path, settings: dict) -> list[dict]:
    if not path.exists():
        return []
    saved = json.loads(path.read_text())
    if saved.get("settings") != settings:
        differ = sorted(
            k
            for k in set(settings) | set(saved.get("settings", {}))
            if settings.get(k) != saved.get("settings", {}).get(k)
        )
        raise SystemExit(
            f"{path} holds runs made with other settings (they differ in "
            f"{', '.join(differ)}); use another --output-dir or the same settings."
        )
    return saved["runs"]


def spread(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def epochs_to(record) -> int:
    """A search's epochs to the threshold; never reached: the epochs it spent."""
    return record["epochs_to_threshold"] or record["epochs"]


def to_threshold(runs) -> tuple[float, float, int]:
    """Epochs to the threshold over seeds: mean, median, and how many never.

    A search that never reached it counts as all the epochs it spent
    (`epochs`: the budget, or less where the next trial would not fit, as
    Hyperband's 26 of 30), a lower bound of what it would have needed:
    leaving it out would reward a searcher for its failures.
    """
    values = [epochs_to(r) for r in runs]
    never = sum(1 for r in runs if not r["epochs_to_threshold"])
    return statistics.mean(values), statistics.median(values), never


def summary_table(runs, searchers, threshold) -> str:
    lines = [
        "| search | seeds | best val accuracy, mean +- sd | min - max | epochs to "
        f"first >= {threshold:.0%}: mean, median (never reached: counted as the "
        "epochs spent) | epochs spent | time per search |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for searcher in searchers:
        rs = [r for r in runs if r["searcher"] == searcher]
        if not rs:
            continue
        best = [r["best_val_accuracy"] for r in rs]
        mean, sd = spread(best)
        to_mean, to_median, never = to_threshold(rs)
        lines.append(
            f"| {searcher} | {len(rs)} | {mean:.2%} +- {sd:.2%} | "
            f"{min(best):.2%} - {max(best):.2%} | {to_mean:.1f}, {to_median:.1f} "
            f"({never}) | "
            f"{statistics.mean(r['epochs'] for r in rs):.0f} | "
            f"{statistics.mean(r['seconds'] for r in rs):.0f} s |"
        )
    return "\n".join(lines)


def paired_table(runs, searchers, reference="coarse_to_fine") -> str:
    """`reference` against every other searcher on the seeds both ran.

    The same seed gives every searcher the same initialisation and data, so
    differences per seed cancel that noise: the mean difference of the best
    validation accuracy with its standard error, the seeds `reference` wins,
    and the mean difference of the epochs to the threshold (`epochs_to`;
    negative is fewer for `reference`).
    """
    by = {(r["searcher"], r["seed"]): r for r in runs}
    lines = [
        f"| {reference} against | seeds | best val accuracy: mean difference "
        "(standard error) | seeds better / tied / worse | epochs to the threshold: "
        "mean difference | fewer / tied / more |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    for other in searchers:
        if other == reference:
            continue
        seeds = sorted(
            seed for (name, seed) in by if name == other and (reference, seed) in by
        )
        if not seeds:
            continue
        acc = [
            by[(reference, s)]["best_val_accuracy"]
            - by[(other, s)]["best_val_accuracy"]
            for s in seeds
        ]
        ep = [epochs_to(by[(reference, s)]) - epochs_to(by[(other, s)]) for s in seeds]
        se = statistics.stdev(acc) / math.sqrt(len(acc)) if len(acc) > 1 else 0.0

        def count(xs, sign):
            return sum(1 for x in xs if (x > 1e-9, abs(x) <= 1e-9, x < -1e-9)[sign])

        lines.append(
            f"| {other} | {len(seeds)} | {statistics.mean(acc):+.2%} ({se:.2%}) | "
            f"{count(acc, 0)} / {count(acc, 1)} / {count(acc, 2)} | "
            f"{statistics.mean(ep):+.1f} | "
            f"{count(ep, 2)} / {count(ep, 1)} / {count(ep, 0)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("KERASREG_DATA_DIR")
        or str(ROOT.parent / "shared" / "data" / "cifar10"),
    )
    parser.add_argument("--output-dir", default="outputs/search_benchmark")
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--val-size", type=int, default=1_000)
    parser.add_argument("--budget", type=int, default=30, help="epochs per search")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of a full trial")
    parser.add_argument("--top-k", type=int, default=1)
    parser.add_argument(
        "--rank-by",
        choices=["best", "last"],
        default="last",
        help="what ranks coarse-to-fine's stage-1 trials (CoarseToFineOracle rank_by)",
    )
    parser.add_argument(
        "--fine-epochs",
        type=int,
        default=None,
        help="epochs of a coarse-to-fine stage-2 trial (default: 2 x --epochs)",
    )
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    parser.add_argument("--threshold", type=float, default=0.35)
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 training images, 12 epochs per search, 3-epoch trials, seeds 0 1",
    )
    args = parser.parse_args(argv)
    unknown = set(args.searchers) - set(SEARCHERS)
    if unknown:
        parser.error(f"--searchers takes {', '.join(SEARCHERS)}. Received: {unknown}")
    if args.quick:
        args.train_size, args.val_size, args.budget, args.epochs = 2_000, 500, 12, 3
        args.seeds = args.seeds[:2]
        args.threshold = min(args.threshold, 0.25)
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    data = load_data(data_dir, args.train_size, args.val_size)
    out = Path(args.output_dir)
    runs_path = out / "runs.json"
    settings = settings_of(args)
    runs = load_runs(runs_path, settings)
    print(
        f"CIFAR-10 ({'folder ' + str(data_dir) if data_dir else 'keras.datasets'}): "
        f"{len(data[0][1])} train / {len(data[1][1])} held-out validation images; "
        f"backend {keras.backend.backend()}; {args.budget} epochs per search, "
        f"full trials {args.epochs} epochs; threshold {args.threshold:.0%}; "
        f"{len(runs)} finished searches in {runs_path}",
        flush=True,
    )
    directory = tempfile.mkdtemp(prefix="kerasreg_search_benchmark_")
    try:
        for seed in args.seeds:
            for searcher in args.searchers:
                if any(r["searcher"] == searcher and r["seed"] == seed for r in runs):
                    continue
                r = run(searcher, seed, data, args, directory)
                runs.append(r)
                atomic_write_text(
                    runs_path,
                    json.dumps({"settings": settings, "runs": runs}, indent=1),
                )
                print(
                    f"  seed {seed} {searcher:15s} best val acc "
                    f"{r['best_val_accuracy']:.4f} {r['best_hyperparameters']}; "
                    f"trials {r['trials']}, epochs {r['epochs']}; first >= "
                    f"{args.threshold:.0%} after {r['epochs_to_threshold']} epochs; "
                    f"failed {r['failed_trials']}; {r['seconds']:.0f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    table = summary_table(runs, args.searchers, args.threshold)
    if "coarse_to_fine" in args.searchers and len(args.searchers) > 1:
        table += "\n\n" + paired_table(runs, args.searchers)
    print()
    print(table)
    atomic_write_text(out / "results.md", table + "\n")
    return runs


if __name__ == "__main__":
    main()
