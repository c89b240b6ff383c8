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
    assert "| all | 62.00% ± 2.83 | +11.0 pts |" in text
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == ["baseline", "all"]
    assert float(rows[1]["test_accuracy"]) == pytest.approx(0.62)
    assert "augment" in rows[1]["tricks"] and rows[0]["tricks"] == "none"
    runs = json.loads((tmp_path / "runs.json").read_text())
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
    with pytest.raises(ValueError, match="`tricks`.*Received: tricks='mixup'"):
        example.tricks_of("mixup")
    args = example.parse_args(["--quick", "--epochs", "1", "--tricks", "baseline,all"])
    assert args.epochs == 1 and args.seeds == [0] and args.rows == ["baseline", "all"]


def test_merge_combines_runs_in_row_order(example, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    example.write_results(
        [], [_run(example, "all", 0, 0.6), _run(example, "baseline", 1, 0.5)], a
    )
    example.write_results([], [_run(example, "baseline", 0, 0.4)], b)
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
            "--epochs",
            "1",
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
            "--tricks",
            "baseline,all,all_snapshot",  # between them, every trick
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert [s.row for s in summaries] == ["baseline", "all", "all_snapshot"]
    assert all(0.0 <= s.test_accuracy <= 1.0 for s in summaries)
    assert (tmp_path / "results.md").exists() and (
        tmp_path / "learning_curves.png"
    ).exists()
