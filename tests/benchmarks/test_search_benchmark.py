"""The search benchmark's budget cap, records and resume, on synthetic objectives."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

keras_tuner = pytest.importorskip("keras_tuner")

from tests.tuners import synthetic  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "search_benchmark.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("search_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def searched(bench, tmp_path, oracle_class, **kwargs):
    """A finished search of the synthetic bowl with a budgeted `oracle_class`."""
    oracle = bench.budgeted(oracle_class)(
        objective=keras_tuner.Objective("score", "max"),
        hyperparameters=synthetic.space(),
        **kwargs,
    )
    tuner = Scored(oracle=oracle, directory=str(tmp_path), project_name="p")
    tuner.search()
    return tuner, oracle


class Scored(keras_tuner.Tuner):
    """Trains nothing: the score is the synthetic bowl, the 'accuracy' its negative."""

    def run_trial(self, trial, *args, **kwargs):
        return {"score": -synthetic.objective_value(trial.hyperparameters.values)}


@pytest.mark.parametrize(
    "oracle_class, kwargs",
    [
        ("RandomSearchOracle", {"max_trials": 100}),
        ("HyperbandOracle", {"max_epochs": 9, "factor": 3, "hyperband_iterations": 50}),
        ("GridSearchOracle", {"max_trials": 100}),
    ],
)
def test_budgeted_oracles_stop_at_the_epoch_budget(
    bench, tmp_path, oracle_class, kwargs
):
    _, oracle = searched(
        bench,
        tmp_path,
        getattr(keras_tuner.oracles, oracle_class),
        epoch_budget=40,
        epochs=3,
        seed=1,
        **kwargs,
    )
    spent = oracle.spent()
    per_trial = [
        bench.trial_epochs(t.hyperparameters.values, 3) for t in oracle.trials.values()
    ]
    assert spent == sum(per_trial) <= 40
    # It stopped because the next trial did not fit, not for another reason.
    assert spent > 40 - max(per_trial)
    if oracle_class == "HyperbandOracle":  # rounds of several lengths
        assert len(set(per_trial)) > 1


def test_trial_epochs_counts_what_hyperband_trains(bench):
    assert bench.trial_epochs({"tuner/epochs": 9, "tuner/initial_epoch": 3}, 5) == 6
    assert bench.trial_epochs({"tuner/epochs": 3, "tuner/initial_epoch": 0}, 5) == 3
    assert bench.trial_epochs({"lr": 0.1}, 5) == 5


def test_summarise_trials_counts_epochs_until_the_threshold(bench, tmp_path):
    tuner, oracle = searched(
        bench,
        tmp_path,
        keras_tuner.oracles.RandomSearchOracle,
        max_trials=8,
        epoch_budget=100,
        epochs=4,
        seed=3,
    )
    trials = sorted(oracle.trials.values(), key=lambda t: int(t.trial_id))
    scores = [t.score for t in trials]
    threshold = sorted(scores)[-3]  # reached first by one of the top three
    first = next(i for i, s in enumerate(scores) if s >= threshold)
    record = bench.summarise_trials(tuner, 4, threshold)
    assert record["epochs"] == 4 * len(trials)
    assert record["epochs_to_threshold"] == 4 * (first + 1)
    assert record["best_val_accuracy"] == pytest.approx(max(scores))
    assert record["trials"] == len(trials)
    assert not any(k.startswith("tuner/") for k in record["best_hyperparameters"])
    assert bench.summarise_trials(tuner, 4, 1e9)["epochs_to_threshold"] is None
    # With the per-epoch curves, the count stops at the epoch that reached it.
    curves = {t.trial_id: [t.score - 1.0, t.score, t.score, t.score] for t in trials}
    record = bench.summarise_trials(tuner, 4, threshold, curves)
    assert record["epochs_to_threshold"] == 4 * first + 2
    assert record["epochs_to_threshold_trial_end"] == 4 * (first + 1)


def test_record_curves_keeps_every_epoch_of_every_trial(bench, tmp_path):
    import keras
    import numpy as np

    def build(hp):
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(2, activation="softmax")]
        )
        model.compile(
            keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    tuner = keras_tuner.RandomSearch(
        build, "val_accuracy", max_trials=2, seed=1, directory=str(tmp_path)
    )
    curves = bench.record_curves(tuner)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    tuner.search(x, y, validation_data=(x, y), epochs=3, verbose=0)
    assert sorted(curves) == sorted(tuner.oracle.trials)
    for trial_id, curve in curves.items():
        assert len(curve) == 3 and all(0.0 <= v <= 1.0 for v in curve)
        assert max(curve) == pytest.approx(tuner.oracle.trials[trial_id].score)


def test_runs_file_refuses_other_settings_and_the_table_reads_it(bench, tmp_path):
    path = tmp_path / "runs.json"
    settings = {"budget": 30, "epochs": 5}
    runs = [
        {
            "searcher": "random",
            "seed": s,
            "best_val_accuracy": a,
            "seconds": 10.0,
            "epochs_to_threshold": e,
            "epochs": 30,
        }
        for s, a, e in ((0, 0.40, 10), (1, 0.44, None))
    ]
    path.write_text(json.dumps({"settings": settings, "runs": runs}))
    assert bench.load_runs(path, settings) == runs
    with pytest.raises(SystemExit, match="budget"):
        bench.load_runs(path, {"budget": 60, "epochs": 5})
    table = bench.summary_table(runs, ["random", "grid"], 0.35)
    row = next(line for line in table.splitlines() if line.startswith("| random"))
    # The search that never reached the threshold counts as its budget, 30.
    assert "42.00% +- 2.83%" in row and "20.0, 20.0 (1)" in row
    assert "grid" not in table


@pytest.mark.parametrize(
    "budget, epochs, fine_epochs, expected",
    [
        # The default: a third in half-length trials, the rest in 2x-length ones.
        (30, 5, None, [{"trials": 5, "epochs": 2}, {"trials": 2, "epochs": 10}]),
        (60, 5, None, [{"trials": 10, "epochs": 2}, {"trials": 4, "epochs": 10}]),
        (30, 5, 5, [{"trials": 5, "epochs": 2}, {"trials": 4, "epochs": 5}]),
        # --quick: two 6-epoch trials do not fit in the 8 epochs left.
        (12, 3, None, [{"trials": 4, "epochs": 1}, {"trials": 2, "epochs": 3}]),
    ],
)
def test_coarse_to_fine_plan_spends_the_budget_with_longer_fine_trials(
    bench, budget, epochs, fine_epochs, expected
):
    plan = bench.coarse_to_fine_plan(budget, epochs, fine_epochs)
    assert plan["stages"] == expected
    assert plan["promote"] == 1
    assert sum(s["trials"] * s["epochs"] for s in plan["stages"]) <= budget
    # A stage-2 trial never trains fewer epochs than a full trial of the others.
    assert plan["stages"][1]["epochs"] >= epochs


def test_coarse_to_fine_plan_keeps_an_explicit_fine_length_or_refuses(bench):
    plan = bench.coarse_to_fine_plan(30, 5, 20)  # one 20-epoch trial fits
    assert plan["stages"][1] == {"trials": 1, "epochs": 20} and plan["promote"] == 0
    for fine in (0, 21):
        with pytest.raises(ValueError, match=f"fine_epochs={fine}"):
            bench.coarse_to_fine_plan(30, 5, fine)


def test_paired_table_compares_seed_by_seed(bench):
    def rec(searcher, seed, acc, to):
        return {
            "searcher": searcher,
            "seed": seed,
            "best_val_accuracy": acc,
            "epochs_to_threshold": to,
            "epochs": 30,
        }

    runs = [
        rec("coarse_to_fine", 0, 0.45, 12),
        rec("coarse_to_fine", 1, 0.43, 13),
        rec("coarse_to_fine", 2, 0.44, 11),  # grid has no seed 2: left out
        rec("grid", 0, 0.44, 12),
        rec("grid", 1, 0.43, None),  # never reached: counts as the budget, 30
    ]
    table = bench.paired_table(runs, ["coarse_to_fine", "grid", "random"])
    rows = [line for line in table.splitlines() if line.startswith("| grid")]
    # +0.5 points on average (differences +1 and 0), standard error 0.5;
    # 1 better, 1 tie; epochs (12 - 12, 13 - 30) / 2 = -8.5: 1 fewer, 1 tied.
    assert rows == ["| grid | 2 | +0.50% (0.50%) | 1 / 1 / 0 | -8.5 | 1 / 1 / 0 |"]
    assert "| random" not in table  # no runs: no row
