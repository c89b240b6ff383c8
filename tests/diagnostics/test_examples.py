"""Smoke runs of the diagnostics and transfer examples on real CIFAR-10.

They run only where the shared CIFAR-10 folder exists (`toolkit.cifar10_dir`
skips otherwise) and use a few hundred images.
"""

import importlib.util
import json
from pathlib import Path

import pytest

from tests import toolkit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_lecture_pipeline_quick(tmp_path):
    data_dir = toolkit.cifar10_dir()
    example = _load("lecture_pipeline")
    result = example.main(
        [
            "--quick",
            "--no-tuner",
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(tmp_path),
            "--coarse-trials",
            "2",
            "--fine-trials",
            "1",
        ]
    )
    sanity = result["sanity"]
    checks = {c["name"]: c for c in sanity["checks"]}
    # The lecture's numbers: ln(10) at init, 3.07 with reg 1e3, 20 examples fit.
    assert checks["initial loss"]["numbers"]["loss"] == pytest.approx(2.3026, abs=1e-3)
    assert checks["regularization"]["numbers"]["regularized_loss"] == pytest.approx(
        3.07, abs=0.05
    )
    assert checks["tiny overfit"]["status"] == "pass"
    verdicts = [d["verdict"] for d in result["rate_diagnoses"]]
    assert "too low" in verdicts[0] and "too high" in verdicts[1]
    assert len(result["search"]["trials"]) == 3  # 2 coarse + 1 fine
    saved = json.loads((tmp_path / "lecture_pipeline.json").read_text())
    assert saved["search"]["best"]["val_acc"] == result["search"]["best"]["val_acc"]
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["best_val_accuracy"] == result["search"]["best"]["val_acc"]
    assert summary["budget"] == "quick" and summary["trials"] == 3
    assert summary["epochs"] == 3  # --quick: 1-epoch trials in both stages
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["test_accuracy"] == pytest.approx(result["test_accuracy"])
    assert summary["seconds"] > 0


def test_lecture_budget_is_the_notes_protocol():
    example = _load("lecture_pipeline")
    args = example.parse_args(["--budget", "lecture"])
    assert (args.coarse_trials, args.coarse_epochs) == (100, 5)
    assert (args.fine_trials, args.fine_epochs) == (100, 5)
    assert args.batch_size == 100 and args.top_k == 10
    assert args.momentum == 0.0  # the notes' trainer's default: plain SGD
    assert example.parse_args([]).momentum == 0.9
    # Options given explicitly still win.
    args = example.parse_args(["--budget", "lecture", "--fine-trials", "40"])
    assert args.fine_trials == 40 and args.coarse_trials == 100


@pytest.mark.slow
def test_transfer_learning_quick(tmp_path):
    data_dir = toolkit.cifar10_dir()
    example = _load("transfer_learning")
    rows = example.main(
        [
            "--quick",
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(tmp_path),
            "--sizes",
            "20",
            "--steps",
            "2",
            "--strategies",
            "linear_probe,fine_tune_many,scratch",
        ]
    )
    assert [r["strategy"] for r in rows] == [
        "linear_probe",
        "fine_tune_many",
        "scratch",
    ]
    assert [r["recommended"] for r in rows].count(True) == 1
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in rows)
    table = (tmp_path / "transfer_learning.md").read_text()
    assert "linear_probe" in table and "(recommended)" in table
    assert (tmp_path / "transfer_learning.csv").read_text().startswith("examples,")
