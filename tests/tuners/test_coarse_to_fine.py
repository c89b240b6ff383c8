import copy
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

from kerasreg.tuners import (
    CoarseToFineOracle,
    CoarseToFineSearch,
    trial_epochs,
    trial_stage,
)
from kerasreg.tuners.coarse_to_fine import EXPLODED_METRIC, LAST_METRIC
from tests import toolkit
from tests.tuners.synthetic import OPTIMUM, SyntheticSearch, objective_value

STAGES = [{"trials": 40, "epochs": 1}, {"trials": 20, "epochs": 3}]


def _width(range_):
    return math.log10(range_["max_value"]) - math.log10(range_["min_value"])


def _search(tmp_path, **kwargs):
    kwargs.setdefault("stages", STAGES)
    kwargs.setdefault("top_k", 5)
    kwargs.setdefault("seed", 7)
    tuner = SyntheticSearch(directory=str(tmp_path), project_name="synthetic", **kwargs)
    tuner.search(verbose=0)
    return tuner


# ---------------------------------------------------------------------------
# Narrowing on a synthetic objective with a known optimum
# ---------------------------------------------------------------------------


def test_stage_two_range_contains_optimum_and_is_narrower(tmp_path):
    tuner = _search(tmp_path, margin=0.1)
    oracle = tuner.oracle
    first, second = oracle.stage_ranges
    for name in ("learning_rate", "l2"):
        full, narrow = first["ranges"][name], second["ranges"][name]
        assert narrow["min_value"] <= OPTIMUM[name] <= narrow["max_value"], name
        assert _width(narrow) < 0.6 * _width(full), (name, narrow, full)
        assert full["min_value"] <= narrow["min_value"] < narrow["max_value"]
        assert narrow["max_value"] <= full["max_value"]
    # Choice narrows to the values the top trials used, and keeps the best one.
    kept = second["ranges"]["activation"]["values"]
    assert "relu" in kept and len(kept) <= 3
    # The ranges come from the best trials of stage 1.
    top = sorted(
        (t for t in oracle.trials.values() if oracle.stage_of(t.trial_id) == 1),
        key=lambda t: t.score,
    )[:5]
    assert second["from_trials"] == [t.trial_id for t in top]
    # Stage-2 trials are drawn inside the stage-2 ranges and do better.
    stage2 = [t for t in oracle.trials.values() if oracle.stage_of(t.trial_id) == 2]
    assert len(stage2) == 20
    for t in stage2:
        for name in ("learning_rate", "l2"):
            r = second["ranges"][name]
            value = t.hyperparameters.values[name]
            assert r["min_value"] * (1 - 1e-9) <= value <= r["max_value"] * (1 + 1e-9)
        assert t.hyperparameters.values["activation"] in kept
    stage1 = [t for t in oracle.trials.values() if oracle.stage_of(t.trial_id) == 1]
    assert np.median([t.score for t in stage2]) < np.median([t.score for t in stage1])


def test_margin_widens_in_log_space(tmp_path):
    narrow = _search(tmp_path / "a", margin=0.0).oracle.stage_ranges[1]["ranges"]
    wide = _search(tmp_path / "b", margin=0.1).oracle.stage_ranges[1]["ranges"]
    for name in ("learning_rate", "l2"):
        # Same seed, same stage 1: the margin adds 0.1 x the full width (in
        # decades) on each side, unless clipped at the declared bounds.
        full = 5.0 if name == "learning_rate" else 7.0
        grown = _width(wide[name]) - _width(narrow[name])
        assert grown == pytest.approx(2 * 0.1 * full, abs=1e-6) or (
            wide[name]["min_value"] == pytest.approx(1e-6)
            or wide[name]["max_value"] in (1e-1, 1e1)
        )


def test_each_trial_trains_with_its_stage_epochs_in_stage_order(tmp_path):
    stages = [{"trials": 6, "epochs": 2}, {"trials": 4, "epochs": 5}, {"trials": 3}]
    tuner = _search(tmp_path, stages=stages, top_k=3)
    assert [c[1] for c in tuner.calls] == [1] * 6 + [2] * 4 + [3] * 3
    assert [c[2] for c in tuner.calls] == [2] * 6 + [5] * 4 + [None] * 3
    oracle = tuner.oracle
    assert len(oracle.trials) == 13 == oracle.max_trials
    assert [oracle.stage_of(c[0]) for c in tuner.calls] == [c[1] for c in tuner.calls]
    widths = [_width(s["ranges"]["learning_rate"]) for s in oracle.stage_ranges]
    assert widths[0] > widths[1] >= widths[2] * 0.999


def test_results_summary_shows_every_stage_range(tmp_path, capsys):
    tuner = _search(tmp_path, stages=[{"trials": 8, "epochs": 1}, {"trials": 4}])
    tuner.results_summary(num_trials=1)
    out = capsys.readouterr().out
    assert "Stage 1/2: 8/8 trials, 1 epochs" in out
    assert "Stage 2/2: 4/4 trials" in out
    narrowed = tuner.oracle.stage_ranges[1]["ranges"]["learning_rate"]
    assert f"learning_rate: [{narrowed['min_value']:.4g}" in out
    assert "(log)" in out and "Results summary" in out


# ---------------------------------------------------------------------------
# Log-uniform sampling
# ---------------------------------------------------------------------------


def _chi_square_uniform(u, bins):
    counts, _ = np.histogram(u, bins=bins, range=(0.0, 1.0))
    expected = len(u) / bins
    return float(np.sum((counts - expected) ** 2 / expected))


def test_log_sampled_values_are_log_uniform_in_every_stage(tmp_path):
    tuner = _search(
        tmp_path, stages=[{"trials": 120}, {"trials": 120}], top_k=10, margin=0.2
    )
    oracle = tuner.oracle
    for stage in (1, 2):
        r = oracle.stage_ranges[stage - 1]["ranges"]["learning_rate"]
        lo, hi = math.log10(r["min_value"]), math.log10(r["max_value"])
        values = [
            t.hyperparameters.values["learning_rate"]
            for t in oracle.trials.values()
            if oracle.stage_of(t.trial_id) == stage
        ]
        u = (np.log10(values) - lo) / (hi - lo)
        assert np.all((u >= -1e-9) & (u <= 1 + 1e-9))
        # 5 bins, 4 degrees of freedom: 18.5 is the 0.1% critical value.
        # Uniform in linear space would put ~all values in the last bin.
        assert _chi_square_uniform(u, 5) < 18.5, stage
        assert abs(np.mean(u) - 0.5) < 0.08


def _stage_quantiles(oracle, stage, name):
    r = oracle.stage_ranges[stage - 1]["ranges"][name]
    lo, hi = math.log10(r["min_value"]), math.log10(r["max_value"])
    values = [
        t.hyperparameters.values[name]
        for t in oracle.trials.values()
        if oracle.stage_of(t.trial_id) == stage
    ]
    return (np.log10(values) - lo) / (hi - lo)


def test_latin_hypercube_stages_cover_every_stratum_once(tmp_path):
    stages = [{"trials": 10, "epochs": 1}, {"trials": 8, "epochs": 2}]
    oracle = _search(tmp_path, stages=stages, top_k=3).oracle
    for stage, n in ((1, 10), (2, 8)):
        for name in ("learning_rate", "l2"):
            u = _stage_quantiles(oracle, stage, name)
            strata = sorted(int(min(q, 1 - 1e-9) * n + 1e-9) for q in u)
            assert strata == list(range(n)), (stage, name, u)
        # The Choice is balanced too: 10 trials over 3 values, 3 or 4 each.
        kept = oracle.stage_ranges[stage - 1]["ranges"]["activation"]["values"]
        used = [
            t.hyperparameters.values["activation"]
            for t in oracle.trials.values()
            if oracle.stage_of(t.trial_id) == stage
        ]
        counts = [used.count(v) for v in kept]
        assert max(counts) - min(counts) <= 1, (stage, counts)
    # Plain random draws leave strata empty at this size (the seed shows it).
    rnd = _search(tmp_path / "r", stages=stages, top_k=3, design="random").oracle
    u = _stage_quantiles(rnd, 1, "learning_rate")
    assert len({int(q * 10) for q in u}) < 10


def test_promote_reruns_the_best_configurations_first_with_the_new_budget(tmp_path):
    stages = [{"trials": 8, "epochs": 1}, {"trials": 5, "epochs": 3}]
    tuner = _search(tmp_path, stages=stages, top_k=3, promote=2)
    oracle = tuner.oracle
    best = sorted(
        (t for t in oracle.trials.values() if oracle.stage_of(t.trial_id) == 1),
        key=lambda t: t.score,
    )[:2]
    info = oracle.stage_ranges[1]
    assert info["promoted"] == [t.trial_id for t in best]
    second = [c for c in tuner.calls if c[1] == 2]
    assert [c[2] for c in second] == [3] * 5
    for call, old in zip(second[:2], best):
        trial = oracle.trials[call[0]]
        assert trial.hyperparameters.values == old.hyperparameters.values
        assert trial.score == old.score  # the synthetic score ignores epochs
    # The other three are new draws, a Latin hypercube of three points.
    fresh = [oracle.trials[c[0]].hyperparameters.values for c in second[2:]]
    assert all(v not in [t.hyperparameters.values for t in best] for v in fresh)
    assert len(info["design"]["learning_rate"]) == 3
    assert "re-runs first the best trials" in oracle.stage_summary()
    assert len(oracle.trials) == 13


@pytest.mark.parametrize("design", ["latin_hypercube", "random"])
def test_seeds_draw_independent_values_and_a_seed_repeats_its_search(tmp_path, design):
    def lrs(seed, where):
        oracle = _search(tmp_path / where, seed=seed, design=design).oracle
        return [
            oracle.trials[t].hyperparameters.values["learning_rate"]
            for t in sorted(oracle.trials)
        ]

    one, two, again = lrs(1, "a"), lrs(2, "b"), lrs(1, "c")
    assert one == again
    # keras-tuner's own seeding (value k drawn with seed + k) would make seed
    # 2's trials seed 1's shifted by one value: here none is shared.
    assert not set(one) & set(two)


# ---------------------------------------------------------------------------
# Resume and state
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("interrupt_at", [3, 8])  # In stage 1, in stage 2.
def test_resume_after_interruption_continues_the_same_stage(tmp_path, interrupt_at):
    stages = [{"trials": 6, "epochs": 1}, {"trials": 5, "epochs": 2}]
    kwargs = dict(
        directory=str(tmp_path), project_name="resume", stages=stages, top_k=3, seed=3
    )
    first = SyntheticSearch(interrupt_at=interrupt_at, overwrite=True, **kwargs)
    with pytest.raises(KeyboardInterrupt):
        first.search(verbose=0)
    before = first.oracle.stage_ranges
    stage_before = first.oracle.current_stage

    resumed = SyntheticSearch(overwrite=False, **kwargs)
    oracle = resumed.oracle
    assert oracle.current_stage == stage_before
    assert oracle.stage_ranges == before
    resumed.search(verbose=0)

    # The interrupted trial is run again first, with its own stage's epochs.
    interrupted = f"{interrupt_at:02d}"
    assert resumed.calls[0][0] == interrupted
    assert resumed.calls[0][1] == (1 if interrupt_at < 6 else 2)
    done = [c[0] for c in first.calls + resumed.calls]
    assert sorted(done) == [f"{i:02d}" for i in range(11)]
    assert len(set(done)) == 11
    assert all(t.status == "COMPLETED" for t in oracle.trials.values())
    assert [oracle.stage_of(f"{i:02d}") for i in range(11)] == [1] * 6 + [2] * 5
    if interrupt_at >= 6:  # Stage 2 was open: its ranges were not recomputed.
        assert oracle.stage_ranges[1] == before[1]
    assert len(oracle.stage_ranges) == 2
    # The resumed search is the search that was never interrupted.
    whole = SyntheticSearch(**{**kwargs, "directory": str(tmp_path / "whole")})
    whole.search(verbose=0)
    assert whole.oracle.stage_ranges == oracle.stage_ranges
    for trial_id, trial in whole.oracle.trials.items():
        assert oracle.trials[trial_id].hyperparameters.values == (
            trial.hyperparameters.values
        )


def test_state_round_trip_and_mismatched_stages(tmp_path):
    tuner = _search(tmp_path, stages=[{"trials": 5, "epochs": 1}, {"trials": 2}])
    state = json.loads(json.dumps(tuner.oracle.get_state()))
    clone = CoarseToFineOracle(
        objective=keras_tuner.Objective("score", "min"),
        stages=[{"trials": 5, "epochs": 1}, {"trials": 2}],
    )
    clone.trials = tuner.oracle.trials
    clone.set_state(state)
    assert clone.stage_ranges == tuner.oracle.stage_ranges
    assert clone.current_stage == 2
    other = CoarseToFineOracle(stages=[{"trials": 5}, {"trials": 3}])
    other.trials = tuner.oracle.trials
    with pytest.raises(ValueError, match="stages"):
        other.set_state(state)


def test_small_discrete_space_ends_stage_early(tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", [1e-3, 1e-2])
    hp.Choice("l2", [1e-2])
    hp.Choice("activation", ["relu"])
    with pytest.warns(UserWarning, match="ends early"):
        tuner = _search(
            tmp_path,
            hyperparameters=hp,
            stages=[{"trials": 4}, {"trials": 2}],
            top_k=1,
        )
    oracle = tuner.oracle
    assert [oracle.stage_of(c[0]) for c in tuner.calls] == [1, 1, 2]
    assert oracle.stage_ranges[0]["exhausted"]
    assert oracle.stage_ranges[1]["ranges"]["learning_rate"]["values"] == [1e-3]


# ---------------------------------------------------------------------------
# Distributed: a chief oracle and two workers on localhost
# ---------------------------------------------------------------------------

_DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, {root!r})
    import kerasreg  # keras-tuner is optional: this alone must not import it.
    with open(os.path.join({log_dir!r}, os.environ["KERASTUNER_TUNER_ID"] + ".imports"),
              "w") as f:
        f.write(str("keras_tuner" in sys.modules))
    from kerasreg.tuners import trial_epochs, trial_stage
    from tests.tuners.synthetic import SyntheticSearch, objective_value

    class Logged(SyntheticSearch):
        def run_trial(self, trial, *args, **kwargs):
            start = time.time()
            time.sleep(0.5)  # 7 trials: both workers get some
            values = trial.hyperparameters.values
            assert not any(k.startswith("tuner/") for k in values), values
            record = dict(trial_id=trial.trial_id,
                          stage=trial_stage(trial.hyperparameters),
                          epochs=trial_epochs(trial.hyperparameters), start=start,
                          end=time.time(), tuner=os.environ["KERASTUNER_TUNER_ID"])
            with open(os.path.join({log_dir!r}, record["tuner"] + ".jsonl"), "a") as f:
                f.write(json.dumps(record) + "\\n")
            return {{"score": objective_value(values)}}

    tuner = Logged(directory={directory!r}, project_name="dist", seed=5, top_k=2,
                   stages=[{{"trials": 4, "epochs": 1}}, {{"trials": 3, "epochs": 2}}])
    tuner.idle_wait = 0.1
    # Both workers start searching together: on a loaded machine one worker
    # could otherwise still be importing TensorFlow when the other has run
    # every trial, and keras-tuner's chief shuts its server down as soon as
    # the search is over for every worker that has asked it for a trial (the
    # late worker then fails with "Socket closed").
    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    if tuner_id != "chief":
        open(os.path.join({log_dir!r}, tuner_id + ".ready"), "w").close()
        deadline = time.time() + 200
        while not all(
            os.path.exists(os.path.join({log_dir!r}, t + ".ready"))
            for t in ("tuner0", "tuner1")
        ):
            if time.time() > deadline:
                raise SystemExit("the other worker never started")
            time.sleep(0.05)
    tuner.search(verbose=0)
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_chief_and_two_workers_run_every_trial_once(tmp_path):
    # Three processes are the costly part of this area's tests, so they also
    # check that `import kerasreg` alone does not import keras-tuner.
    pytest.importorskip("grpc")
    root = str(Path(__file__).resolve().parents[2])
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    script = tmp_path / "search.py"
    script.write_text(
        _DISTRIBUTED_SCRIPT.format(
            root=root, log_dir=str(log_dir), directory=str(tmp_path / "project")
        )
    )
    port = str(_free_port())
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = dict(
            os.environ,
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=port,
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        procs[tuner_id] = subprocess.Popen(
            [sys.executable, str(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        for tuner_id in ("tuner0", "tuner1"):
            out, _ = procs[tuner_id].communicate(timeout=240)
            assert procs[tuner_id].returncode == 0, out[-3000:]
    finally:
        # keras-tuner's chief polls every 20 s for the end of the search; the
        # results are on disk once the workers are done.
        chief = procs["chief"]
        if chief.poll() is None:
            chief.terminate()
        chief.communicate(timeout=30)

    # Each process imported kerasreg first: that did not load keras-tuner.
    imports = {p.stem: p.read_text() for p in log_dir.glob("*.imports")}
    assert imports == dict.fromkeys(("chief", "tuner0", "tuner1"), "False"), imports

    records = []
    for path in log_dir.glob("*.jsonl"):
        records += [json.loads(line) for line in path.read_text().splitlines()]
    ids = sorted(r["trial_id"] for r in records)
    assert ids == [str(i) for i in range(7)], ids  # Every trial exactly once.
    assert {r["tuner"] for r in records} == {"tuner0", "tuner1"}
    stage1 = [r for r in records if r["stage"] == 1]
    stage2 = [r for r in records if r["stage"] == 2]
    assert len(stage1) == 4 and len(stage2) == 3
    assert {r["epochs"] for r in stage1} == {1} and {r["epochs"] for r in stage2} == {2}
    # The boundary: no stage-2 trial starts before every stage-1 trial ended.
    assert min(r["start"] for r in stage2) >= max(r["end"] for r in stage1)

    state = json.loads((tmp_path / "project" / "dist" / "oracle.json").read_text())
    assert {k: v + 1 for k, v in state["stage_of"].items()} == {
        r["trial_id"]: r["stage"] for r in records
    }
    assert len(state["stage_info"]) == 2
    assert set(state["stage_info"][1]["from_trials"]) <= {r["trial_id"] for r in stage1}
    assert len(state["stage_info"][1]["from_trials"]) == 2


# ---------------------------------------------------------------------------
# Real training: callbacks copied per trial, exploding trials
# ---------------------------------------------------------------------------


class _Recorder(keras.callbacks.Callback):
    seen = []

    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_train_begin(self, logs=None):
        _Recorder.seen.append(id(self))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def _build(hp):
    # Seeded weights: whether a step at lr 1e6 kills every ReLU (a flat,
    # finite loss) or blows the loss up must not depend on the trial order.
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                8,
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(1),
            ),
            keras.layers.Dense(
                3,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(2),
            ),
        ]
    )
    model.compile(
        keras.optimizers.SGD(hp.Choice("learning_rate", [1e6, 3e6, 0.05])),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class _EpochLog(CoarseToFineSearch):
    def on_epoch_end(self, trial, model, epoch, logs=None):
        self.epoch_log = getattr(self, "epoch_log", [])
        self.epoch_log.append(trial.trial_id)


def test_callbacks_are_deep_copied_per_trial(tmp_path):
    x, y = toolkit.classification_data(32, 8, 3)
    recorder = _Recorder()
    _Recorder.seen = []
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", [0.05, 0.01])
    tuner = CoarseToFineSearch(
        _build,
        objective="val_accuracy",
        stages=[{"trials": 2, "epochs": 1}],
        top_k=1,
        seed=1,
        hyperparameters=hp,
        tune_new_entries=False,
        directory=str(tmp_path),
        project_name="copies",
    )
    tuner.search(
        x, y, validation_data=(x, y), batch_size=16, verbose=0, callbacks=[recorder]
    )
    assert recorder.epochs == 0  # The original was never used ...
    assert (
        len(_Recorder.seen) == 2 and len(set(_Recorder.seen)) == 2
    )  # ... copies were.
    assert id(recorder) not in _Recorder.seen
    copy.deepcopy(tuner.oracle.get_state())


def test_exploding_trial_ends_early_scores_worst_and_search_goes_on(tmp_path):
    x, y = toolkit.classification_data(64, 8, 3)
    tuner = _EpochLog(
        _build,
        objective="val_accuracy",
        stages=[{"trials": 3, "epochs": 3}],
        top_k=1,
        seed=2,
        max_consecutive_failed_trials=1,
        directory=str(tmp_path),
        project_name="explode",
    )
    tuner.search(x, y, validation_data=(x, y), batch_size=16, verbose=0)
    trials = tuner.oracle.trials
    assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials.values())
    lrs = {
        t.trial_id: t.hyperparameters.values["learning_rate"] for t in trials.values()
    }
    assert sorted(lrs.values()) == [0.05, 1e6, 3e6]
    for trial_id, lr in lrs.items():
        trial = trials[trial_id]
        epochs = tuner.epoch_log.count(trial_id)
        if lr > 1:
            assert trial.score == -math.inf
            assert trial.metrics.get_last_value(EXPLODED_METRIC) == 1.0
            assert epochs < 3  # Ended early.
        else:
            assert math.isfinite(trial.score) and trial.score > 0.5
            assert not trial.metrics.exists(EXPLODED_METRIC)
            assert epochs == 3
    assert tuner.get_best_hyperparameters()[0].values["learning_rate"] == 0.05


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stages=[]), "stages"),
        (dict(stages=[{"trials": 0}]), "stages"),
        (dict(stages=[{"epochs": 3}]), "stages"),
        (dict(stages=[{"trials": 5, "epochs": 0}]), "stages"),
        (dict(stages=[{"trials": 5, "epoch": 2}]), "unknown keys"),
        (dict(stages={"trials": 5}), "stages"),
        (dict(stages=[{"trials": 4}, {"trials": 4}], top_k=5), "top_k=5"),
        (dict(top_k=0), "top_k"),
        (dict(margin=-0.1), "margin"),
        (dict(margin=float("nan")), "margin"),
        (dict(design="sobol"), "design"),
        (dict(stages=[{"trials": 5}, {"trials": 3}], top_k=2, promote=3), "promote"),
        (dict(stages=[{"trials": 5}, {"trials": 2}], top_k=3, promote=2), "promote"),
        (dict(promote=-1), "promote"),
        (dict(promote=True), "promote"),
        (dict(rank_by="mean"), "rank_by"),
    ],
)
def test_bad_oracle_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoarseToFineOracle(objective="val_loss", **kwargs)


def test_bad_tuner_arguments(tmp_path):
    with pytest.raises(ValueError, match="explosion_factor"):
        CoarseToFineSearch(
            _build, objective="val_loss", explosion_factor=1.0, directory=str(tmp_path)
        )
    with pytest.raises(ValueError, match="log"):
        hp = keras_tuner.HyperParameters()
        hp.Float("learning_rate", 0.0, 1.0, sampling="log")


def test_objective_value_helper_has_its_optimum():
    assert objective_value(OPTIMUM) == 0.0


# ---------------------------------------------------------------------------
# Search bookkeeping is not a hyper-parameter
# ---------------------------------------------------------------------------


def _build_from_values(units, learning_rate):
    """The keras-tuner guide's style: a builder of plain keyword arguments."""
    model = keras.Sequential()  # not built before fit, too
    model.add(keras.layers.Dense(units, activation="relu"))
    model.add(keras.layers.Dense(3, activation="softmax"))
    model.compile(
        keras.optimizers.SGD(learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class _ValuesHyperModel(keras_tuner.HyperModel):
    seen = []
    fit_epochs = []

    def fit(self, hp, model, *args, **kwargs):
        _ValuesHyperModel.fit_epochs.append(kwargs["epochs"])
        return super().fit(hp, model, *args, **kwargs)

    def build(self, hp):
        _ValuesHyperModel.seen.append(
            (sorted(hp.values), trial_stage(hp), trial_epochs(hp, default=99))
        )
        return _build_from_values(
            hp.Int("units", 4, 16),
            hp.Float("learning_rate", 1e-3, 1e-1, sampling="log"),
        )


def test_best_hyperparameters_are_only_the_searched_ones(tmp_path, capsys):
    # best_hp.values used to contain "tuner/stage" and "tuner/epochs":
    # build(**best_hp.values) raised "unexpected keyword argument
    # 'tuner/stage'" and the summaries listed them as hyper-parameters.
    x, y = toolkit.classification_data(32, 8, 3)
    _ValuesHyperModel.seen, _ValuesHyperModel.fit_epochs = [], []
    tuner = CoarseToFineSearch(
        _ValuesHyperModel(),
        objective="val_accuracy",
        stages=[{"trials": 2, "epochs": 1}, {"trials": 1, "epochs": 2}, {"trials": 1}],
        top_k=1,
        seed=3,
        explosion_factor=None,
        directory=str(tmp_path),
        project_name="values",
    )
    tuner.search(x, y, validation_data=(x, y), batch_size=16, epochs=3, verbose=0)
    # The hypermodel saw only its hyper-parameters, and the stage and epochs
    # through the public helpers (a stage without epochs: the default; the
    # first build is keras-tuner declaring the space, outside any trial).
    seen = _ValuesHyperModel.seen
    assert [s[1:] for s in seen] == [(None, 99), (1, 1), (1, 1), (2, 2), (3, 99)]
    assert all(names == ["learning_rate", "units"] for names, _, _ in seen[1:])
    best_hp = tuner.get_best_hyperparameters()[0]
    assert sorted(best_hp.values) == ["learning_rate", "units"]
    model = _build_from_values(**best_hp.values)
    model.fit(x, y, epochs=1, verbose=0)
    # Every recorded trial is clean; the oracle still knows stages and epochs.
    oracle = tuner.oracle
    for trial in oracle.trials.values():
        assert sorted(trial.hyperparameters.values) == ["learning_rate", "units"]
        # fit's History reached the oracle with the last epoch's objective
        # (rank_by="last" reads it) beside keras-tuner's best-epoch metrics.
        last = trial.metrics.get_last_value(LAST_METRIC)
        assert 0.0 <= last <= trial.score
    stages = sorted(oracle.stage_of(t) for t in oracle.trials)
    assert stages == [1, 1, 2, 3]
    assert [oracle.budget_of(t)["epochs"] for t in sorted(oracle.trials)][-1] is None
    assert _ValuesHyperModel.fit_epochs == [1, 1, 2, 3]  # search()'s for stage 3
    capsys.readouterr()
    tuner.results_summary()
    assert "tuner/" not in capsys.readouterr().out
    # The saved trials are clean too (a reloaded project reads them).
    reloaded = CoarseToFineSearch(
        _ValuesHyperModel(),
        objective="val_accuracy",
        stages=[{"trials": 2, "epochs": 1}, {"trials": 1, "epochs": 2}, {"trials": 1}],
        top_k=1,
        seed=3,
        directory=str(tmp_path),
        project_name="values",
        overwrite=False,
    )
    assert sorted(reloaded.get_best_hyperparameters()[0].values) == [
        "learning_rate",
        "units",
    ]
    assert sorted(reloaded.oracle.stage_of(t) for t in reloaded.oracle.trials) == stages


def test_trial_epochs_reads_hyperband_bookkeeping():
    hp = keras_tuner.HyperParameters()
    assert trial_epochs(hp) is None and trial_stage(hp) is None
    hp.values["tuner/epochs"] = 4
    assert trial_epochs(hp, default=1) == 4


class _PeakThenFall(SyntheticSearch):
    """Reports a curve whose best epoch and last epoch rank trials oppositely."""

    def run_trial(self, trial, *args, **kwargs):
        super().run_trial(trial, *args, **kwargs)
        peak = math.log10(trial.hyperparameters.values["learning_rate"])
        # The higher the learning rate, the higher the peak, the lower the end.
        return {"score": peak, LAST_METRIC: -peak}


@pytest.mark.parametrize("rank_by", ["best", "last"])
def test_rank_by_chooses_the_next_stage_by_best_or_last_epoch(tmp_path, rank_by):
    stages = [{"trials": 6, "epochs": 2}, {"trials": 3, "epochs": 4}]
    tuner = _PeakThenFall(
        directory=str(tmp_path),
        project_name="p",
        objective=keras_tuner.Objective("score", "max"),
        stages=stages,
        top_k=2,
        promote=1,
        rank_by=rank_by,
        seed=3,
    )
    tuner.search(verbose=0)
    oracle = tuner.oracle
    first = [t for t in oracle.trials.values() if oracle.stage_of(t.trial_id) == 1]
    lr = {t.trial_id: t.hyperparameters.values["learning_rate"] for t in first}
    order = sorted(lr, key=lr.get, reverse=rank_by == "best")
    info = oracle.stage_ranges[1]
    assert info["from_trials"] == order[:2]
    assert info["promoted"] == order[:1]
    # The reported best is still the best-scored trial, whatever ranks stages.
    best = tuner.get_best_hyperparameters()[0].values["learning_rate"]
    assert best == max(
        t.hyperparameters.values["learning_rate"] for t in oracle.trials.values()
    )
    state = oracle.get_state()
    assert state["rank_by"] == rank_by


def test_search_adds_the_last_epoch_to_every_history(tmp_path):
    history = keras.callbacks.History()
    history.history = {
        "loss": [2.0, 1.0, 3.0],
        "val_accuracy": [0.2, 0.5, 0.4],
    }
    # Added whatever rank_by: a worker's tuner does not know the chief's.
    tuner = CoarseToFineSearch(
        _build, objective="val_accuracy", directory=str(tmp_path), project_name="a"
    )
    assert tuner._with_last_value(history) is history
    assert history.history[LAST_METRIC] == [0.4] * 3
    assert tuner._with_last_value({"val_accuracy": 0.3}) == {"val_accuracy": 0.3}
    # A multi-objective: keras-tuner's signed sum at the last epoch.
    multi = CoarseToFineSearch(
        _build,
        objective=[
            keras_tuner.Objective("val_accuracy", "max"),
            keras_tuner.Objective("loss", "min"),
        ],
        directory=str(tmp_path),
        project_name="b",
    )
    history.history.pop(LAST_METRIC)
    multi._with_last_value(history)
    assert history.history[LAST_METRIC] == [pytest.approx(3.0 - 0.4)] * 3


def test_rank_by_last_excludes_a_trial_whose_last_epoch_is_nan(tmp_path):
    class _NanEnd(SyntheticSearch):
        # The higher the learning rate the better, both at the best and at
        # the last epoch, but above 1e-3 the last epoch is NaN (diverged).
        def run_trial(self, trial, *args, **kwargs):
            super().run_trial(trial, *args, **kwargs)
            lr = math.log10(trial.hyperparameters.values["learning_rate"])
            return {"score": lr, LAST_METRIC: math.nan if lr > -3 else lr}

    tuner = _NanEnd(
        directory=str(tmp_path),
        project_name="p",
        objective=keras_tuner.Objective("score", "max"),
        stages=[{"trials": 4, "epochs": 1}, {"trials": 2, "epochs": 1}],
        top_k=1,
        promote=1,
        rank_by="last",
        seed=1,
    )
    tuner.search(verbose=0)
    oracle = tuner.oracle
    lr = {
        t.trial_id: t.hyperparameters.values["learning_rate"]
        for t in oracle.trials.values()
        if oracle.stage_of(t.trial_id) == 1
    }
    # The Latin hypercube puts one trial in [10^-2.25, 10^-1]: NaN at the end.
    assert max(lr.values()) > 1e-3
    finite = {t: v for t, v in lr.items() if v <= 1e-3}
    assert oracle.stage_ranges[1]["promoted"] == [max(finite, key=finite.get)]
