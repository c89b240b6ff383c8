"""The bag of tricks on CIFAR-10: what each trick buys, and at what cost.

A compact CNN (three blocks of two 3x3 convolutions with BatchNorm, a 256-unit
head) is trained with the same epoch budget, by default on a 10,000-image
training subset (the small-data regime, where overfitting is the problem), as

- the baseline (no regularization);
- each trick on its own: the augmentation pipeline, weight decay (L2),
  dropout and DropConnect in the head, smoothed early stopping, EMA weights,
  a snapshot ensemble, 10-crop test-time augmentation;
- the combined recipe ("all"), and the same recipe read with one view
  ("all_single_view").

The combined recipe is not every trick at its solo strength: its strengths
(augmentation strength, weight decay, dropout and DropConnect rates, EMA
decay) were chosen on the validation split by `CoarseToFineSearch` over short
runs (`--tune`), and written into `RECIPE` below, so the table reproduces
without searching again.

Rows that do not change training share its run (`training_of`):

- "ema" and "tta" are read off the baseline run: a shadow `EMAWeights`
  (`swap_for_eval=False`) averages the weights without touching training, and
  the test-time views are taken of the trained model;
- "all_single_view" is "all" without its test-time views (same run).

Every decision (early stopping, which snapshots to keep, the recipe) is taken
on a validation split carved from the training images outside the training
subset; the test images are used only for the final numbers. The script
prints a table (test accuracy and its delta over the baseline with their
spread over seeds, test loss, train-test gap, seconds per epoch, wall time,
parameters), writes it as Markdown and CSV, and saves the learning curves as
a PNG.

Runs are resumable: every finished (row, seed) is written to `runs.json` in
`--output-dir` at once, and a later run with the same output directory and
settings skips the pairs already there (and refuses other settings), so a run
killed at any moment loses at most the training in progress. Rows or seeds
can be split over processes with different output directories and joined
with `--merge`.

Usage:

    python examples/cifar10_bag_of_tricks.py --quick
    python examples/cifar10_bag_of_tricks.py --data-dir ../shared/data/cifar10
    python examples/cifar10_bag_of_tricks.py --tricks baseline,augment,all
    python examples/cifar10_bag_of_tricks.py --tune   # search the recipe again
    python examples/cifar10_bag_of_tricks.py --width 32 --train-size 50000  # GPU

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
_ALL = frozenset(
    {"augment", "weight_decay", "dropout", "dropconnect", "early_stopping", "ema"}
)
COMBINATIONS = {
    "baseline": frozenset(),
    "all_single_view": _ALL,
    "all": _ALL | {"tta"},
    # The snapshot ensemble drives its own cyclic learning rate, which EMA
    # would average across restarts and early stopping would cut short: it
    # combines with the other tricks in place of those two (not a default row).
    "all_snapshot": (_ALL - {"ema", "early_stopping"}) | {"snapshot", "tta"},
}
DEFAULT_ROWS = ("baseline", *SINGLE_TRICKS, "all_single_view", "all")
# --quick: two trainings (the baseline's and the recipe's), five rows.
QUICK_ROWS = ("baseline", "ema", "tta", "all_single_view", "all")

# Tricks that only change how a trained model is read, never how it is
# trained: a row with them shares the run of the row without them. EMA is
# one of them unless early stopping decides on the averaged weights.
EVALUATION_TRICKS = frozenset({"ema", "tta"})

# A snapshot cycle shorter than this does not converge, and the ensemble of
# its snapshots is no ensemble (measured: 5-15-epoch cycles were unreliable).
MIN_CYCLE_EPOCHS = 5

#: The combined recipe's strengths, chosen on the validation split with
#: `--tune` (`benchmarks/results/cifar10_bag_of_tricks/tune/`: the best of
#: the search's 30-epoch stage, 76.95% validation accuracy, rounded to 3
#: digits). Milder than every trick at its solo strength: stacked, each
#: needs less.
RECIPE = {
    "augment_strength": 0.674,
    "weight_decay": 5.18e-4,
    "dropout": 0.0878,
    "dropconnect": 0.0469,
    "ema_decay": 0.995,
}
#: The single-trick rows' strengths: each trick at the value commonly used
#: on its own.
SOLO = {
    "augment_strength": 1.0,
    "weight_decay": 5e-4,
    "dropout": 0.5,
    "dropconnect": 0.5,
    "ema_decay": 0.998,
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The training recipe shared by every row."""

    epochs: int = 30
    width: int = 16
    batch_size: int = 128
    learning_rate: float = 0.05
    momentum: float = 0.9
    solo: tuple = tuple(SOLO.items())
    recipe: tuple = tuple(RECIPE.items())
    snapshots: int = 3
    patience: int = 6
    tta_padding: int = 4
    verbose: int | str = "auto"

    def strengths(self, row: str) -> dict:
        """A row's strengths: a single trick's solo value, else the recipe's."""
        return dict(self.recipe if len(tricks_of(row)) > 1 else self.solo)

    def fingerprint(self) -> dict:
        """What must match for two runs to share a table (not verbosity)."""
        d = dataclasses.asdict(self)
        d.pop("verbose")
        d["solo"], d["recipe"] = dict(self.solo), dict(self.recipe)
        return d


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


def training_of(row: str) -> str:
    """The row whose training run `row` is read off (itself if it trains)."""
    tricks = tricks_of(row)
    shared = EVALUATION_TRICKS - ({"ema"} if "early_stopping" in tricks else set())
    trained = tricks - shared
    for name, combo in COMBINATIONS.items():
        if combo == trained and name != "all":
            return name
    if not trained:
        return "baseline"
    return "+".join(t for t in SINGLE_TRICKS if t in trained)


def check_rows(rows: Sequence[str], s: Settings) -> None:
    """Refuses rows that cannot work at this budget, with the reason."""
    for row in rows:
        if "snapshot" in tricks_of(row) and s.epochs // s.snapshots < MIN_CYCLE_EPOCHS:
            raise ValueError(
                f"Invalid value received for argument `tricks`: row {row!r} needs "
                f"snapshot cycles of at least {MIN_CYCLE_EPOCHS} epochs to converge, "
                f"but {s.epochs} epochs make {s.snapshots} cycles of "
                f"{s.epochs // s.snapshots}. Leave it out or give --epochs >= "
                f"{MIN_CYCLE_EPOCHS * s.snapshots}. Received: tricks={row!r}"
            )


# ----------------------------------------------------------------------------
# Model and training
# ----------------------------------------------------------------------------


def build_model(
    tricks: frozenset[str], x_train: np.ndarray, s: Settings, seed: int, strengths=None
):
    """The compact CNN, with the model-side tricks switched on."""
    import keras

    import kerasreg

    k = dict(strengths or s.solo)
    keras.utils.set_random_seed(seed)
    normalizer = keras.layers.Normalization(axis=-1)
    normalizer.adapt(x_train[:5000].astype("float32") / 255.0)

    inputs = keras.Input(shape=x_train.shape[1:], dtype="uint8")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    if "augment" in tricks:
        x = kerasreg.augmentation.pipeline(
            task="natural",
            strength=k["augment_strength"],
            value_range=(0.0, 1.0),
            seed=seed,
        )(x)
    x = normalizer(x)
    for filters in (s.width, 2 * s.width, 4 * s.width):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            # Small data, few steps: faster-moving BatchNorm statistics.
            x = keras.layers.BatchNormalization(momentum=0.9)(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    if "dropconnect" in tricks and k["dropconnect"] > 0:
        x = kerasreg.layers.DropConnectDense(
            256, rate=k["dropconnect"], activation="relu", seed=seed
        )(x)
    else:
        x = keras.layers.Dense(256, activation="relu")(x)
    if "dropout" in tricks and k["dropout"] > 0:
        # Dropout where the parameters are: the fully connected head (AlexNet).
        x = kerasreg.layers.InvertedDropout(k["dropout"], seed=seed)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="compact_cnn")
    if "weight_decay" in tricks and k["weight_decay"] > 0:
        model = kerasreg.regularizers.add_weight_regularization(
            model, keras.regularizers.L2(k["weight_decay"])
        )
    return model


def make_optimizer(tricks: frozenset[str], steps: int, s: Settings):
    """Nesterov SGD: linear warm-up then cosine decay (the snapshot row: flat)."""
    import keras

    if "snapshot" in tricks:
        # SnapshotEnsemble sets the learning rate at every batch.
        lr = s.learning_rate
    else:
        warmup = steps * max(1, s.epochs // 10)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0,
            max(1, steps * s.epochs - warmup),
            warmup_target=s.learning_rate,
            warmup_steps=warmup,
        )
    return keras.optimizers.SGD(lr, momentum=s.momentum, nesterov=True)


def compile_model(model, tricks: frozenset[str], steps: int, s: Settings) -> None:
    model.compile(
        optimizer=make_optimizer(tricks, steps, s),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def training_callbacks(tricks: frozenset[str], s: Settings, strengths: dict) -> list:
    """The callbacks of a training run, EMA first (see `run_training`)."""
    import kerasreg

    callbacks = []
    # EMAWeights first: the callbacks after it see the EMA weights at the end
    # of each epoch, so early stopping keeps the best *averaged* weights.
    if "ema" in tricks:
        callbacks.append(kerasreg.callbacks.EMAWeights(decay=strengths["ema_decay"]))
    if "early_stopping" in tricks:
        callbacks.append(
            kerasreg.callbacks.SmoothedEarlyStopping(
                monitor="val_loss", patience=s.patience, restore_best_weights=True
            )
        )
    return callbacks


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
    val_accuracy: float = float("nan")
    seconds_per_epoch: float = float("nan")
    training: str = ""

    @property
    def gap(self) -> float:
        return self.train_accuracy - self.test_accuracy


def evaluate_probs(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of predicted probabilities."""
    p = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(np.mean(np.argmax(probs, axis=1) == y)), float(-np.mean(np.log(p)))


def _epoch_timer():
    """A Keras callback that records the seconds of each epoch (with validation)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


@dataclasses.dataclass
class Trained:
    """A finished training run and what its rows are read off."""

    training: str
    model: object
    seed: int
    seconds: float
    history: dict
    epoch_seconds: list
    ema_weights: list | None = None  # the shadow average, if one was kept
    snapshot: object | None = None


def run_training(
    training: str, rows: Sequence[str], data, s: Settings, seed: int, work_dir: Path
) -> Trained:
    """Trains the run that `rows` (all with `training_of(row) == training`) share."""
    import kerasreg

    tricks = tricks_of(training)
    strengths = s.strengths(training)
    (x_train, y_train), (x_val, y_val), _ = data
    steps = math.ceil(len(x_train) / s.batch_size)
    start = time.perf_counter()
    model = build_model(tricks, x_train, s, seed, strengths)
    compile_model(model, tricks, steps, s)
    callbacks = training_callbacks(tricks, s, strengths)
    shadow = None
    if "ema" not in tricks and any("ema" in tricks_of(r) for r in rows):
        # Averages the weights without changing training or validation.
        ema_row = next(r for r in rows if "ema" in tricks_of(r))
        shadow = kerasreg.callbacks.EMAWeights(
            decay=s.strengths(ema_row)["ema_decay"],
            swap_for_eval=False,
            ema_at_end=False,
        )
        callbacks.insert(0, shadow)
    snapshot = None
    if "snapshot" in tricks:
        cycles = max(1, min(s.snapshots, s.epochs))
        snapshot = kerasreg.callbacks.SnapshotEnsemble(
            cycles=cycles,
            epochs_per_cycle=max(1, s.epochs // cycles),
            max_lr=s.learning_rate,
            min_lr=0.0,
            directory=str(work_dir / f"{training}-seed{seed}-snapshots"),
        )
        callbacks.append(snapshot)
    timer = _epoch_timer()
    history = model.fit(
        x_train,
        y_train,
        batch_size=s.batch_size,
        epochs=s.epochs,
        validation_data=(x_val, y_val),
        callbacks=[*callbacks, timer],
        verbose=s.verbose,
    )
    return Trained(
        training=training,
        model=model,
        seed=seed,
        seconds=time.perf_counter() - start,
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
        epoch_seconds=list(timer.seconds),
        ema_weights=None if shadow is None else shadow.ema_weights,
        snapshot=snapshot,
    )


def predictor_of(row: str, trained: Trained, data, s: Settings):
    """The model that row `row` predicts with, and its single-view base.

    Returns `(predictor, base)`: `base` is the trained model (holding its
    EMA shadow's weights for an "ema" row: the caller puts the training
    weights back) or the chosen snapshot ensemble; `predictor` wraps it in
    the test-time views when the row has "tta".
    """
    import kerasreg

    tricks = tricks_of(row)
    (_, _), (x_val, y_val), _ = data
    base = trained.model
    if "ema" in tricks and trained.ema_weights is not None:
        # Into the trained model itself, not a clone: `set_weights` on a
        # fresh clone leaves an adapted `Normalization` layer at its defaults
        # (Keras finalizes its state in `adapt` and `load_weights` only).
        base.set_weights(trained.ema_weights)
    if trained.snapshot is not None:
        # Keep the number of last snapshots that does best on validation.
        best_m, best_acc = 1, -1.0
        for m in range(1, len(trained.snapshot.snapshots) + 1):
            probs = trained.snapshot.ensemble(last=m).predict(
                x_val, batch_size=512, verbose=0
            )
            acc, _ = evaluate_probs(probs, y_val)
            if acc > best_acc:
                best_m, best_acc = m, acc
        base = trained.snapshot.ensemble(last=best_m)
    predictor = base
    if "tta" in tricks:
        predictor = kerasreg.TestTimeAugmentation(
            base, crops="ten", padding=s.tta_padding
        )
    return predictor, base


def evaluate_rows(rows: Sequence[str], trained: Trained, data, s: Settings):
    """One `RunResult` per row read off `trained`."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    results = []
    train_acc_of = {}  # single-view base -> train accuracy (TTA rows share it)
    training_weights = trained.model.get_weights()
    for row in rows:
        start = time.perf_counter()
        try:
            predictor, base = predictor_of(row, trained, data, s)
            key = (tricks_of(row) - {"tta"}) & {"ema"}
            if key not in train_acc_of:
                probs = base.predict(x_train, batch_size=512, verbose=0)
                train_acc_of[key] = evaluate_probs(probs, y_train)[0]
            val_acc, _ = evaluate_probs(
                predictor.predict(x_val, batch_size=256, verbose=0), y_val
            )
            test_acc, test_loss = evaluate_probs(
                predictor.predict(x_test, batch_size=256, verbose=0), y_test
            )
        finally:
            trained.model.set_weights(training_weights)
        epochs_run = len(trained.epoch_seconds)
        results.append(
            RunResult(
                row=row,
                seed=trained.seed,
                test_accuracy=test_acc,
                test_loss=test_loss,
                train_accuracy=train_acc_of[key],
                seconds=trained.seconds + time.perf_counter() - start,
                params=int(trained.model.count_params()),
                epochs_run=epochs_run,
                history=trained.history,
                val_accuracy=val_acc,
                seconds_per_epoch=float(np.median(trained.epoch_seconds))
                if epochs_run
                else float("nan"),
                training=trained.training,
            )
        )
    return results


def run_row(row: str, data, s: Settings, seed: int, work_dir: Path) -> RunResult:
    """Trains `row` on its own and measures it on the test images."""
    import keras

    trained = run_training(row, [row], data, s, seed, work_dir)
    (result,) = evaluate_rows([row], trained, data, s)
    keras.backend.clear_session()
    return result


# ----------------------------------------------------------------------------
# Choosing the recipe (--tune)
# ----------------------------------------------------------------------------

#: The search space of the combined recipe.
SEARCH_SPACE = {
    "augment_strength": (0.25, 2.0, "log"),
    "weight_decay": (1e-5, 3e-3, "log"),
    "dropout": (0.0, 0.6, "linear"),
    "dropconnect": (0.0, 0.6, "linear"),
    "ema_decay": (0.99, 0.995, 0.998, 0.999),
}
#: The documented search budget: 10 short runs of 6 epochs, then the 3 best
#: narrowed configurations at the full 30 epochs (about 27 minutes on the
#: 2-core CPU at width 16, 10,000 images).
DEFAULT_TUNE_STAGES = "10x6,3x30"


def parse_stages(text: str) -> list[dict]:
    """`"10x6,3x30"` -> `[{"trials": 10, "epochs": 6}, {"trials": 3, ...}]`."""
    stages = []
    try:
        for part in text.split(","):
            trials, epochs = part.lower().split("x")
            stages.append({"trials": int(trials), "epochs": int(epochs)})
    except ValueError:
        raise ValueError(
            "Invalid value received for argument `tune_stages`. Expected "
            "comma-separated TRIALSxEPOCHS stages, e.g. '10x6,3x30'. "
            f"Received: tune_stages={text!r}"
        ) from None
    return stages


def tune(data, s: Settings, out_dir: Path, stages: list[dict], seed: int = 0):
    """Chooses the combined recipe on the validation split; returns it.

    Each trial trains "all_single_view" (every training trick, EMA weights
    for validation) with strengths drawn from `SEARCH_SPACE`; its score is
    its best validation accuracy. The test images are never seen. Writes
    `recipe.json`, `search_table.md` and `search.png` to `out_dir`; keras-
    tuner's own trial folder (`out_dir/keras_tuner`, resumable) is not a
    result and is ignored by git.
    """
    import keras
    import keras_tuner

    from kerasreg._io import atomic_write_text
    from kerasreg.tuners import (
        CoarseToFineSearch,
        plot_search,
        search_table,
        trial_epochs,
    )

    (x_train, y_train), (x_val, y_val), _ = data
    steps = math.ceil(len(x_train) / s.batch_size)
    tricks = tricks_of("all_single_view")

    class RecipeHyperModel(keras_tuner.HyperModel):
        def declare(self, hp) -> dict:
            values = {}
            for name, spec in SEARCH_SPACE.items():
                if spec[-1] in ("log", "linear"):
                    low, high, sampling = spec
                    values[name] = hp.Float(name, low, high, sampling=sampling)
                else:
                    values[name] = hp.Choice(name, list(spec))
            return values

        def _settings(self, hp) -> Settings:
            epochs = trial_epochs(hp, default=s.epochs)
            return dataclasses.replace(s, epochs=epochs)

        def build(self, hp):
            strengths = self.declare(hp)
            trial_settings = self._settings(hp)
            model = build_model(tricks, x_train, trial_settings, seed, strengths)
            compile_model(model, tricks, steps, trial_settings)
            return model

        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            strengths = {k: hp.get(k) for k in SEARCH_SPACE}
            extra = training_callbacks(tricks, self._settings(hp), strengths)
            return model.fit(*args, callbacks=[*extra, *(callbacks or [])], **kwargs)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tuner = CoarseToFineSearch(
        RecipeHyperModel(),
        objective="val_accuracy",
        stages=stages,
        top_k=min(3, stages[0]["trials"]),
        seed=seed,
        directory=str(out_dir),
        project_name="keras_tuner",
        overwrite=False,  # a killed search goes on where it stopped
    )
    tuner.search(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        batch_size=s.batch_size,
        epochs=s.epochs,
        verbose=s.verbose,
    )
    # The recipe is the best of the last stage: those trials ran the full
    # budget the table trains with, the earlier ones only a short part of it.
    last = len(stages)
    ranked = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    finals = [t for t in ranked if tuner.oracle.stage_of(t.trial_id) == last]
    best = (finals or ranked)[0].hyperparameters
    recipe = {k: float(best.get(k)) for k in SEARCH_SPACE}
    table = search_table(tuner)
    atomic_write_text(
        out_dir / "search_table.md",
        f"CoarseToFineSearch of the combined recipe, stages {stages}, "
        f"{len(x_train)} training / {len(x_val)} validation images, "
        f"keras {keras.__version__} ({keras.backend.backend()})\n\n"
        f"```\n{table}\n```\n",
    )
    atomic_write_text(out_dir / "recipe.json", json.dumps(recipe, indent=1) + "\n")
    try:
        plot_search(
            tuner,
            x="weight_decay",
            y="augment_strength",
            color="val_accuracy",
            path=out_dir / "search.png",
        )
    except ImportError:  # matplotlib is optional
        pass
    print(table)
    print(f"\nBest recipe on validation: {recipe}")
    return recipe


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
    delta: float = float("nan")  # mean paired difference to the baseline
    delta_std: float = float("nan")
    seconds_per_epoch: float = float("nan")
    training: str = ""

    @property
    def tricks(self) -> str:
        return ", ".join(sorted(tricks_of(self.row))) or "none"


def _std(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarize(results: Sequence[RunResult]) -> list[Summary]:
    """Groups runs by row (in first-seen order) into mean and std over seeds.

    The delta of a row is the mean, over the seeds it shares with the
    baseline, of its accuracy minus the baseline's (a paired difference, so
    the seed-to-seed spread common to both rows cancels).
    """
    rows: dict[str, list[RunResult]] = {}
    for r in results:
        rows.setdefault(r.row, []).append(r)
    base = {r.seed: r.test_accuracy for r in rows.get("baseline", [])}
    out = []
    for row, runs in rows.items():
        acc = np.array([r.test_accuracy for r in runs])
        deltas = [r.test_accuracy - base[r.seed] for r in runs if r.seed in base]
        out.append(
            Summary(
                row=row,
                seeds=len(runs),
                test_accuracy=float(acc.mean()),
                test_accuracy_std=_std(acc),
                test_loss=float(np.mean([r.test_loss for r in runs])),
                gap=float(np.mean([r.gap for r in runs])),
                seconds=float(np.mean([r.seconds for r in runs])),
                params=runs[0].params,
                delta=float(np.mean(deltas)) if deltas else float("nan"),
                delta_std=_std(deltas) if deltas else float("nan"),
                seconds_per_epoch=float(np.nanmean([r.seconds_per_epoch for r in runs]))
                if any(np.isfinite(r.seconds_per_epoch) for r in runs)
                else float("nan"),
                training=runs[0].training or row,
            )
        )
    return out


def _fmt_delta(s: Summary) -> str:
    if not np.isfinite(s.delta):
        return ""
    spread = f" ± {100 * s.delta_std:.1f}" if s.seeds > 1 else ""
    return f"{100 * s.delta:+.1f}{spread} pts"


def markdown_table(summaries: Sequence[Summary]) -> str:
    """The results as a Markdown table; deltas are against the baseline row."""
    lines = [
        "| row | test accuracy | vs baseline | test loss | train-test gap "
        "| s/epoch | wall time (s) | parameters | seeds | trained in |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        spe = f"{s.seconds_per_epoch:.1f}" if np.isfinite(s.seconds_per_epoch) else ""
        run = "own run" if s.training in ("", s.row) else f"{s.training}'s run"
        lines.append(
            f"| {s.row} | {100 * s.test_accuracy:.2f}% ± {100 * s.test_accuracy_std:.2f} "
            f"| {_fmt_delta(s)} | {s.test_loss:.3f} | {100 * s.gap:.1f} pts | {spe} "
            f"| {s.seconds:.0f} | {s.params:,} | {s.seeds} | {run} |"
        )
    return "\n".join(lines) + "\n"


def gain_summary(summaries: Sequence[Summary]) -> str:
    """Which single tricks carried the gain, by their delta over the baseline."""
    singles = [s for s in summaries if s.row in SINGLE_TRICKS and np.isfinite(s.delta)]
    if not singles:
        return ""
    singles.sort(key=lambda s: -s.delta)
    helped = [f"{s.row} ({_fmt_delta(s)})" for s in singles if s.delta > 0]
    hurt = [f"{s.row} ({_fmt_delta(s)})" for s in singles if s.delta <= 0]
    text = "Single tricks that helped, largest gain first: " + (
        ", ".join(helped) or "none"
    )
    if hurt:
        text += ". Did not help on their own: " + ", ".join(hurt)
    return text + ".\n"


CSV_FIELDS = (
    "row",
    "tricks",
    "seeds",
    "test_accuracy",
    "test_accuracy_std",
    "delta",
    "delta_std",
    "test_loss",
    "gap",
    "seconds_per_epoch",
    "seconds",
    "params",
    "training",
)


def write_results(
    summaries: Sequence[Summary],
    results: Sequence[RunResult],
    out_dir: Path,
    header: str = "",
    settings: dict | None = None,
) -> tuple[Path, Path]:
    """Writes `results.md`, `results.csv` and the raw `runs.json` (atomically)."""
    from kerasreg._io import atomic_write_text

    out_dir = Path(out_dir)
    md = out_dir / "results.md"
    body = markdown_table(summaries)
    gains = gain_summary(summaries)
    atomic_write_text(
        md,
        (header + "\n\n" if header else "") + body + ("\n" + gains if gains else ""),
    )
    lines = [",".join(CSV_FIELDS)]
    for s in summaries:
        values = [getattr(s, f) for f in CSV_FIELDS]
        lines.append(
            ",".join(f'"{v}"' if isinstance(v, str) else f"{v:.6g}" for v in values)
        )
    csv_path = out_dir / "results.csv"
    atomic_write_text(csv_path, "\n".join(lines) + "\n")
    save_runs(out_dir / "runs.json", results, settings)
    return md, csv_path


def save_runs(path: Path, results: Sequence[RunResult], settings: dict | None):
    """`runs.json`: the settings the runs were made with, and every run."""
    from kerasreg._io import atomic_write_text

    payload = {
        "settings": settings,
        "runs": [dataclasses.asdict(r) for r in results],
    }
    atomic_write_text(Path(path), json.dumps(payload, indent=1) + "\n")


def load_runs(path: Path) -> tuple[dict | None, list[RunResult]]:
    """The settings and runs a previous invocation saved in `runs.json`."""
    payload = json.loads(Path(path).read_text())
    if isinstance(payload, list):  # before settings were recorded
        payload = {"settings": None, "runs": payload}
    return payload["settings"], [RunResult(**r) for r in payload["runs"]]


def save_learning_curves(histories: dict[str, dict], path: Path) -> Path:
    """Plots training and validation loss and accuracy of each row to a PNG."""
    from kerasreg import _figures

    fig = _figures.new_figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2)
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
    _figures.save_figure(fig, path, format="png", dpi=110)
    return path


def _curves_of(results: Sequence[RunResult]) -> dict[str, dict]:
    """One curve per training run of the first seed (shared rows share it)."""
    if not results:
        return {}
    seed0 = min(r.seed for r in results)
    curves = {}
    for r in results:
        name = r.training or r.row
        if r.seed == seed0 and name not in curves:
            curves[name] = r.history
    return curves


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
    p.add_argument("--train-size", type=int, default=None, help="default 10,000")
    p.add_argument("--val-size", type=int, default=None, help="default 2,000")
    p.add_argument("--test-size", type=int, default=None, help="default: all 10,000")
    p.add_argument(
        "--epochs", type=int, default=None, help="default: 30 (20 with --quick)"
    )
    p.add_argument(
        "--width",
        type=int,
        default=16,
        help="filters of the first block (16: CPU-sized; 32: the GPU network)",
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
    p.add_argument(
        "--batch-size", type=int, default=None, help="default 128 (64 with --quick)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="baseline vs the recipe in about 3 minutes on 2 CPU cores",
    )
    p.add_argument("--output-dir", default="outputs/cifar10_bag_of_tricks")
    p.add_argument(
        "--verbose", default="auto", help="Keras fit verbosity (auto, 0, 1, 2)"
    )
    p.add_argument(
        "--tune",
        action="store_true",
        help="search the combined recipe on the validation split (see RECIPE); "
        "writes to OUTPUT_DIR/tune and trains no table",
    )
    p.add_argument(
        "--tune-stages",
        default=DEFAULT_TUNE_STAGES,
        help=f"TRIALSxEPOCHS per stage (default {DEFAULT_TUNE_STAGES})",
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
        # Small enough for 3 minutes, large enough for the baseline to
        # overfit and the recipe's gain to show. Batches of 64: the recipe
        # needs optimizer steps more than it needs images per step (at
        # batch 128 and the same cost it gained 2.9 points, at 64 it gained
        # 8.1; benchmarks/RESULTS.md).
        args.batch_size = args.batch_size or 64
        args.train_size = args.train_size or 2_000
        args.val_size = args.val_size or 500
        args.test_size = args.test_size or 2_000
        args.epochs = args.epochs or 20
        args.seeds = args.seeds or "0"
        args.tricks = args.tricks or ",".join(QUICK_ROWS)
    args.batch_size = args.batch_size or 128
    args.train_size = args.train_size or 10_000
    args.val_size = args.val_size or 2_000
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
    if args.width < 1:
        p.error(f"argument --width: expected an integer >= 1, got {args.width}")
    args.stages = parse_stages(args.tune_stages)
    if args.verbose != "auto":
        args.verbose = int(args.verbose)
    return args


def merge(dirs: Iterable[str], out_dir: Path, header: str = "") -> list[Summary]:
    """One table from the `runs.json` of several runs, rows in the default order."""
    results = []
    settings = None
    for d in dirs:
        run_settings, runs = load_runs(Path(d) / "runs.json")
        settings = settings or run_settings
        results.extend(runs)
    order = {row: i for i, row in enumerate(DEFAULT_ROWS)}
    results.sort(key=lambda r: (order.get(r.row, len(order)), r.row, r.seed))
    summaries = summarize(results)
    write_results(summaries, results, out_dir, header, settings)
    save_learning_curves(_curves_of(results), out_dir / "learning_curves.png")
    return summaries


def run_settings(args, s: Settings) -> dict:
    """The fingerprint stored in `runs.json`: a resumed run must match it."""
    import keras

    from kerasreg import datasets

    source = datasets.resolve_data_dir(args.data_dir)
    return {
        **s.fingerprint(),
        "train_size": args.train_size,
        "val_size": args.val_size,
        "test_size": args.test_size,
        "data": "keras.datasets.cifar10" if source is None else str(source.resolve()),
        "backend": keras.backend.backend(),
    }


def _settings_diff(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in keys
        if old.get(k) != new.get(k)
    )


def resume(out_dir: Path, settings: dict) -> list[RunResult]:
    """The finished runs in `out_dir/runs.json`, if it was made with `settings`."""
    path = Path(out_dir) / "runs.json"
    if not path.exists():
        return []
    old, runs = load_runs(path)
    # JSON turns tuples into lists: compare the JSON forms.
    new = json.loads(json.dumps(settings))
    if old != new:
        raise SystemExit(
            f"{path} holds runs made with other settings "
            f"({_settings_diff(old or {}, new)}). Resume with the same settings, "
            "or give another --output-dir."
        )
    return runs


def plan(rows: Sequence[str], seeds: Sequence[int], done: Iterable[tuple[str, int]]):
    """The (training, seed, rows) runs still to make, in table order."""
    done = set(done)
    trainings: dict[str, list[str]] = {}
    for row in rows:
        trainings.setdefault(training_of(row), []).append(row)
    todo = []
    for seed in seeds:
        for training, its_rows in trainings.items():
            missing = [r for r in its_rows if (r, seed) not in done]
            if missing:
                todo.append((training, seed, missing))
    return todo


def main(argv: Sequence[str] | None = None) -> list[Summary]:
    args = parse_args(argv)
    out_dir = Path(args.output_dir)
    if args.merge:
        summaries = merge(
            args.merge, out_dir, header=f"Merged from {len(args.merge)} runs"
        )
        print(markdown_table(summaries))
        return summaries
    import keras

    settings = Settings(
        epochs=args.epochs,
        width=args.width,
        batch_size=args.batch_size,
        verbose=args.verbose,
    )
    if not args.tune:
        check_rows(args.rows, settings)
    data = load_data(
        args.data_dir, args.train_size, args.val_size, args.test_size, seed=0
    )
    print(
        f"CIFAR-10: {len(data[0][0])} training, {len(data[1][0])} validation, "
        f"{len(data[2][0])} test images; {args.epochs} epochs; width {args.width}; "
        f"seeds {args.seeds}; keras {keras.__version__} on {keras.backend.backend()}",
        flush=True,
    )
    if args.tune:
        recipe = tune(data, settings, out_dir / "tune", args.stages, seed=0)
        return [Summary("recipe", 1, 0, 0, 0, 0, 0, 0, training=str(recipe))]
    fingerprint = run_settings(args, settings)
    results = resume(out_dir, fingerprint)
    todo = plan(args.rows, args.seeds, [(r.row, r.seed) for r in results])
    if results:
        print(
            f"Resuming {out_dir / 'runs.json'}: {len(results)} finished runs kept, "
            f"{len(todo)} trainings to go.",
            flush=True,
        )
    header = (
        f"CIFAR-10, {len(data[0][0])} training images, {args.epochs} epochs, "
        f"width {args.width}, keras {keras.__version__} ({keras.backend.backend()})"
    )
    order = {row: i for i, row in enumerate(args.rows)}
    with tempfile.TemporaryDirectory() as work:
        for training, seed, rows in todo:
            print(
                f"\n=== {training} (seed {seed}; rows {', '.join(rows)}) ===",
                flush=True,
            )
            trained = run_training(training, rows, data, settings, seed, Path(work))
            new = evaluate_rows(rows, trained, data, settings)
            keras.backend.clear_session()
            for r in new:
                print(
                    f"{r.row} seed {r.seed}: test accuracy {r.test_accuracy:.4f}, "
                    f"loss {r.test_loss:.3f}, gap {r.gap:+.3f}, "
                    f"{r.seconds_per_epoch:.1f} s/epoch, {r.seconds:.0f} s",
                    flush=True,
                )
            results.extend(new)
            results.sort(key=lambda r: (order.get(r.row, len(order)), r.seed))
            # Written at once: a run killed later keeps this training's rows.
            write_results(summarize(results), results, out_dir, header, fingerprint)
    wanted = [r for r in results if r.row in order and r.seed in args.seeds]
    summaries = summarize(wanted)
    write_results(summarize(results), results, out_dir, header, fingerprint)
    save_learning_curves(_curves_of(wanted), out_dir / "learning_curves.png")
    print("\n" + markdown_table(summaries))
    gains = gain_summary(summaries)
    if gains:
        print(gains)
    if args.quick:
        print(
            "A quick, small-scale run (one seed). The full table (10,000 images, "
            "30 epochs, 3 seeds, every trick) is in the README."
        )
    print(
        f"Written: {out_dir / 'results.md'}, {out_dir / 'results.csv'}, "
        f"{out_dir / 'learning_curves.png'}"
    )
    return summaries


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
