"""The bag-of-tricks example: its reporting on synthetic histories, and a quick run."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import toolkit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cifar10_bag_of_tricks.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("cifar10_bag_of_tricks", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run(example, row, seed, acc, train_acc=0.9):
    hist = {
        "loss": list(np.linspace(2.0, 0.5, 5)),
        "val_loss": list(np.linspace(2.1, 1.0, 5)),
        "accuracy": list(np.linspace(0.2, train_acc, 5)),
        "val_accuracy": list(np.linspace(0.2, acc, 5)),
    }
    return example.RunResult(
        row, seed, acc, 1.0 - acc, train_acc, 10.0 + seed, 1234, 5, hist
    )


def test_summary_table_and_files(example, tmp_path):
    results = [
        _run(example, "baseline", 0, 0.50),
        _run(example, "baseline", 1, 0.52),
        _run(example, "all", 0, 0.60, train_acc=0.7),
        _run(example, "all", 1, 0.64, train_acc=0.7),
    ]
    summaries = example.summarize(results)
    assert [s.row for s in summaries] == ["baseline", "all"]
    base, all_ = summaries
    assert base.test_accuracy == pytest.approx(0.51)
    assert base.test_accuracy_std == pytest.approx(np.std([0.50, 0.52], ddof=1))
    assert all_.gap == pytest.approx(0.7 - 0.62)
    md, csv_path = example.write_results(
        summaries, results, tmp_path, header="synthetic"
    )
    text = md.read_text()
    assert text.startswith("synthetic")
    # The delta is paired by seed: (0.60 - 0.50, 0.64 - 0.52) -> +11.0 ± 1.4.
    assert "| all | 62.00% ± 2.83 | +11.0 ± 1.4 pts |" in text
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == ["baseline", "all"]
    assert float(rows[1]["test_accuracy"]) == pytest.approx(0.62)
    assert "augment" in rows[1]["tricks"] and rows[0]["tricks"] == "none"
    payload = json.loads((tmp_path / "runs.json").read_text())
    runs = payload["runs"]
    assert len(runs) == 4 and runs[0]["history"]["loss"][0] == 2.0
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def test_learning_curves_png(example, tmp_path):
    pytest.importorskip("matplotlib")
    hist = {r: _run(example, r, 0, 0.5).history for r in ("baseline", "all")}
    path = example.save_learning_curves(hist, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_rows_are_validated(example):
    assert example.tricks_of("augment+ema") == {"augment", "ema"}
    assert "snapshot" in example.tricks_of("all_snapshot")
    assert example.training_of("ema") == example.training_of("tta") == "baseline"
    assert example.training_of("all") == "all_single_view"
    assert example.training_of("augment+ema") == "augment"
    # Early stopping decides on the EMA weights: EMA changes that training.
    assert example.training_of("early_stopping+ema") == "early_stopping+ema"
    with pytest.raises(ValueError, match="`tricks`.*Received: tricks='mixup'"):
        example.tricks_of("mixup")
    args = example.parse_args(["--quick", "--epochs", "1", "--tricks", "baseline,all"])
    assert args.epochs == 1 and args.seeds == [0] and args.rows == ["baseline", "all"]
    quick = example.parse_args(["--quick"])
    assert quick.rows == list(example.QUICK_ROWS) and quick.batch_size == 64
    assert example.parse_args([]).batch_size == 128


def test_snapshot_rows_refused_when_cycles_cannot_converge(example):
    short = example.Settings(epochs=6, snapshots=3)
    with pytest.raises(
        ValueError, match="cycles of at least 5 epochs.*tricks='snapshot'"
    ):
        example.check_rows(["baseline", "snapshot"], short)
    example.check_rows(["baseline", "snapshot"], example.Settings(epochs=30))
    with pytest.raises(ValueError, match="tune_stages"):
        example.parse_stages("10-6")
    assert example.parse_stages("10x6,3x30") == [
        {"trials": 10, "epochs": 6},
        {"trials": 3, "epochs": 30},
    ]


def test_merge_combines_runs_in_row_order(example, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    example.write_results(
        [], [_run(example, "all", 0, 0.6), _run(example, "baseline", 1, 0.5)], a
    )
    example.write_results([], [_run(example, "baseline", 0, 0.4)], b)
    (a / "runs.json").write_text(  # the list format of older runs is read too
        json.dumps(json.loads((a / "runs.json").read_text())["runs"])
    )
    summaries = example.main(
        ["--merge", str(a), str(b), "--output-dir", str(tmp_path / "m")]
    )
    assert [(s.row, s.seeds) for s in summaries] == [("baseline", 2), ("all", 1)]
    assert summaries[0].test_accuracy == pytest.approx(0.45)
    assert (tmp_path / "m" / "learning_curves.png").exists()


def test_quick_run_end_to_end_on_real_images(example, tmp_path):
    data_dir = toolkit.cifar10_dir()
    summaries = example.main(
        [
            "--quick",
            "--data-dir",
            str(data_dir),
            "--train-size",
            "200",
            "--val-size",
            "100",
            "--test-size",
            "100",
            "--batch-size",
            "50",
            "--verbose",
            "0",
            "--epochs",
            "2",
            "--width",
            "4",
            "--tricks",
            "baseline,all",  # every trick but the snapshot ensemble (below)
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert [s.row for s in summaries] == ["baseline", "all"]
    assert all(0.0 <= s.test_accuracy <= 1.0 for s in summaries)
    assert (tmp_path / "results.md").exists() and (
        tmp_path / "learning_curves.png"
    ).exists()


def _synthetic_data(n_train=96, n_val=32, n_test=32, seed=0):
    """Tiny CIFAR-shaped data whose class shows in the mean colour."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 10, size=n).astype("int32")
        x = rng.integers(0, 96, size=(n, 32, 32, 3)) + 16 * y[:, None, None, None]
        return x.astype("uint8"), y

    return split(n_train), split(n_val), split(n_test)


TINY = ["--width", "2", "--batch-size", "32", "--verbose", "0", "--epochs", "1"]


@pytest.fixture
def tiny(example, monkeypatch):
    """The example on synthetic data, recording every training it starts."""
    data = _synthetic_data()
    monkeypatch.setattr(example, "load_data", lambda *args, **kwargs: data)
    started = []
    real = example.run_training

    def recording(training, rows, *args, **kwargs):
        started.append((training, kwargs.get("seed", args[2]), tuple(rows)))
        return real(training, rows, *args, **kwargs)

    monkeypatch.setattr(example, "run_training", recording)
    return started


def test_killed_run_resumes_and_skips_finished_pairs(example, tiny, tmp_path):
    argv = [*TINY, "--output-dir", str(tmp_path), "--seeds", "0,1"]
    argv += ["--tricks", "baseline,ema,augment"]
    real_evaluate = example.evaluate_rows
    calls = []

    def killed_in_the_third_training(rows, trained, *args):
        calls.append(trained.training)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a kill during (row, seed) = (baseline, 1)
        return real_evaluate(rows, trained, *args)

    example.evaluate_rows = killed_in_the_third_training
    try:
        with pytest.raises(KeyboardInterrupt):
            example.main(argv)
    finally:
        example.evaluate_rows = real_evaluate
    _, kept = example.load_runs(tmp_path / "runs.json")
    # Both trainings of seed 0 were written at once, rows shared or not.
    assert sorted((r.row, r.seed) for r in kept) == [
        ("augment", 0),
        ("baseline", 0),
        ("ema", 0),
    ]
    assert not list(tmp_path.glob(".*"))  # no half-written file
    tiny.clear()
    summaries = example.main(argv)
    assert tiny == [("baseline", 1, ("baseline", "ema")), ("augment", 1, ("augment",))]
    assert [(s.row, s.seeds) for s in summaries] == [
        ("baseline", 2),
        ("ema", 2),
        ("augment", 2),
    ]
    kept_by_pair = {(r.row, r.seed): r for r in kept}
    _, final = example.load_runs(tmp_path / "runs.json")
    for r in final:  # the finished runs were kept as they were
        if (r.row, r.seed) in kept_by_pair:
            assert r == kept_by_pair[(r.row, r.seed)]
    tiny.clear()
    example.main(argv)  # everything is there: nothing trains
    assert tiny == []


def test_resume_refuses_other_settings(example, tiny, tmp_path):
    argv = [*TINY, "--output-dir", str(tmp_path), "--seeds", "0"]
    example.main([*argv, "--tricks", "baseline"])
    with pytest.raises(SystemExit, match=r"other settings \(epochs: 1 -> 2\)"):
        example.main([*argv, "--tricks", "baseline", "--epochs", "2"])
    with pytest.raises(SystemExit, match=r"width: 2 -> 3"):
        example.main([*argv, "--tricks", "baseline", "--width", "3"])
    # Other rows and seeds with the same settings go into the same table.
    example.main([*argv, "--tricks", "baseline,dropout", "--seeds", "0,1"])
    _, runs = example.load_runs(tmp_path / "runs.json")
    assert len(runs) == 4


def test_shared_rows_equal_a_separate_evaluation(example, tmp_path):
    import keras

    import kerasreg

    data = _synthetic_data()
    s = example.Settings(epochs=2, width=2, batch_size=32, verbose=0)
    rows = ["baseline", "ema", "tta"]
    trained = example.run_training("baseline", rows, data, s, 0, tmp_path)
    results = {r.row: r for r in example.evaluate_rows(rows, trained, data, s)}
    assert {r.training for r in results.values()} == {"baseline"}
    (x_train, y_train), _, (x_test, y_test) = data
    model = trained.model
    assert trained.ema_weights is not None
    # The training run kept the training weights in the model ...
    raw_acc, raw_loss = example.evaluate_probs(model.predict(x_test, verbose=0), y_test)
    assert results["baseline"].test_loss == pytest.approx(raw_loss, rel=1e-5)
    assert results["baseline"].test_accuracy == raw_acc
    # ... and the EMA row is what the EMA weights give, evaluated on their
    # own: saved, then loaded into a fresh model (Keras finalizes an adapted
    # Normalization layer on load, not on `set_weights`).
    raw_weights = model.get_weights()
    model.set_weights(trained.ema_weights)
    path = str(tmp_path / "ema.weights.h5")
    model.save_weights(path)
    model.set_weights(raw_weights)
    ema_model = keras.models.clone_model(model)
    ema_model.load_weights(path)
    assert any(
        not np.allclose(a, b)
        for a, b in zip(ema_model.get_weights(), model.get_weights())
    )
    acc, loss = example.evaluate_probs(ema_model.predict(x_test, verbose=0), y_test)
    assert results["ema"].test_loss == pytest.approx(loss, rel=1e-5)
    assert results["ema"].test_accuracy == acc
    train_acc, _ = example.evaluate_probs(
        ema_model.predict(x_train, verbose=0), y_train
    )
    assert results["ema"].train_accuracy == train_acc
    # The evaluation put the training weights back.
    for a, b in zip(raw_weights, trained.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The TTA row: ten views of the trained model.
    tta = kerasreg.TestTimeAugmentation(model, crops="ten", padding=s.tta_padding)
    acc, loss = example.evaluate_probs(tta.predict(x_test, verbose=0), y_test)
    assert results["tta"].test_loss == pytest.approx(loss, rel=1e-5)
    assert results["tta"].test_accuracy == acc
    assert results["tta"].test_loss != pytest.approx(raw_loss, rel=1e-5)
    assert results["tta"].train_accuracy == results["baseline"].train_accuracy


def test_shadow_ema_does_not_change_training(example, tmp_path):
    data = _synthetic_data()
    s = example.Settings(epochs=1, width=2, batch_size=32, verbose=0)
    alone = example.run_training("baseline", ["baseline"], data, s, 0, tmp_path)
    shared = example.run_training("baseline", ["baseline", "ema"], data, s, 0, tmp_path)
    assert alone.ema_weights is None and shared.ema_weights is not None
    for a, b in zip(alone.model.get_weights(), shared.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_tune_chooses_a_recipe_on_validation_only(example, monkeypatch, tmp_path):
    pytest.importorskip("keras_tuner")
    data = _synthetic_data(n_train=128)
    (x_train, y_train), val, (x_test, _) = data
    poisoned = (np.full_like(x_test, 255), np.full(len(x_test), -1, "int32"))
    # The test split must never be used: labels of -1 would break any use.
    monkeypatch.setattr(
        example,
        "load_data",
        lambda *args, **kwargs: ((x_train, y_train), val, poisoned),
    )
    example.main(
        [*TINY, "--tune", "--tune-stages", "3x1,2x2", "--output-dir", str(tmp_path)]
    )
    out = tmp_path / "tune"
    recipe = json.loads((out / "recipe.json").read_text())
    assert set(recipe) == set(example.SEARCH_SPACE)
    low, high, _ = example.SEARCH_SPACE["weight_decay"]
    assert low <= recipe["weight_decay"] <= high
    assert recipe["ema_decay"] in example.SEARCH_SPACE["ema_decay"]
    table = (out / "search_table.md").read_text()
    assert "augment_strength" in table and table.count("COMPLETED") == 5
    if importlib.util.find_spec("matplotlib"):
        assert (out / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_snapshot_row_chooses_its_snapshots_on_validation(example, tmp_path):
    data = _synthetic_data()
    s = example.Settings(epochs=5, snapshots=1, width=2, batch_size=32, verbose=0)
    example.check_rows(["snapshot"], s)  # one cycle of 5 epochs is allowed
    result = example.run_row("snapshot", data, s, 0, tmp_path)
    assert result.row == "snapshot" and result.epochs_run == 5
    assert 0.0 <= result.test_accuracy <= 1.0 and np.isfinite(result.test_loss)
    assert list(tmp_path.glob("snapshot-seed0-snapshots/snapshot_*.weights.h5"))
