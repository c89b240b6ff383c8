import math

import keras_tuner
import pytest

from kerasreg.tuners import plot_search, search_table
from tests.tuners.synthetic import SyntheticSearch, objective_value, space


class _WithFailures(SyntheticSearch):
    """Trials with lr > 1e-2 "explode"; the trial with id 03 fails."""

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        if trial.trial_id == "03":
            raise keras_tuner.errors.FailedTrialError("broken on purpose")
        if values["learning_rate"] > 1e-2:
            return {"score": math.inf, "exploded": 1.0}
        return {"score": objective_value(values)}


@pytest.fixture
def tuner(tmp_path):
    t = _WithFailures(
        directory=str(tmp_path),
        project_name="report",
        seed=11,
        top_k=3,
        stages=[{"trials": 12, "epochs": 1}, {"trials": 6, "epochs": 2}],
        max_consecutive_failed_trials=5,
    )
    t.search(verbose=0)
    return t


def test_search_table_rows_best_first(tuner):
    rows = search_table(tuner)
    assert len(rows) == 18
    assert rows.columns()[:6] == [
        "trial_id",
        "stage",
        "epochs",
        "status",
        "score",
        "exploded",
    ]
    assert {"learning_rate", "l2", "activation"} <= set(rows.columns())
    assert not any(c.startswith("tuner/") for c in rows.columns())
    scores = [r["score"] for r in rows if r["status"] == "COMPLETED"]
    assert scores == sorted(scores)  # Minimised objective: best (lowest) first.
    assert rows[0]["score"] == min(
        t.score for t in tuner.oracle.trials.values() if t.score is not None
    )
    exploded = [r for r in rows if r["exploded"]]
    assert exploded and all(r["score"] == math.inf for r in exploded)
    assert rows[-1]["trial_id"] == "03" and rows[-1]["status"] == "FAILED"
    for r in rows:
        assert r["stage"] == tuner.oracle.stage_of(r["trial_id"])
        assert r["epochs"] == r["stage"]
    text = str(rows)
    assert text.splitlines()[0].split()[:3] == ["trial_id", "stage", "epochs"]
    assert len(text.splitlines()) == 20  # Header, rule, 18 rows.


def test_search_table_best_first_for_a_maximised_objective(tmp_path):
    class Max(SyntheticSearch):
        def run_trial(self, trial, *args, **kwargs):
            return {"acc": -objective_value(trial.hyperparameters.values)}

    t = Max(
        objective=keras_tuner.Objective("acc", "max"),
        directory=str(tmp_path),
        stages=[{"trials": 6}],
        top_k=1,
        seed=1,
    )
    t.search(verbose=0)
    scores = [r["score"] for r in search_table(t.oracle)]
    assert scores == sorted(scores, reverse=True)


def test_plot_search_one_panel_per_stage_and_saves(tuner, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "plots" / "search.png"
    fig = plot_search(tuner, "learning_rate", "l2", color="score", path=path)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("stage")]
    assert [ax.get_title() for ax in panels] == [
        "stage 1: 12 trials, 1 epochs",
        "stage 2: 6 trials, 2 epochs",
    ]
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in panels)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["search.png"]  # No temp left.
    # Stage 2 shows its narrowed range as a box.
    assert len(panels[1].patches) == 1
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_search_works_for_keras_tuner_random_search(tmp_path):
    pytest.importorskip("matplotlib")

    class Random(keras_tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            return objective_value(trial.hyperparameters.values)

    t = Random(hyperparameters=space(), max_trials=5, seed=1, directory=str(tmp_path))
    t.search(verbose=0)
    fig = plot_search(t, "learning_rate", "l2")
    assert [ax.get_title() for ax in fig.axes][:1] == ["stage 1: 5 trials"]
    assert len(search_table(t)) == 5 and "stage" not in search_table(t).columns()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bad_arguments(tuner):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="Received: x='momentum'"):
        plot_search(tuner, x="momentum")
    with pytest.raises(ValueError, match="tuner"):
        search_table(object())
