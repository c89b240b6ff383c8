"""The search-response table: a trial of n epochs scores the best of the first n."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras_tuner")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "search_response.py"


def test_summary_reads_shorter_trials_from_the_start_of_each_curve():
    spec = importlib.util.spec_from_file_location("search_response", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    runs = [
        {"lr": 1e-4, "seed": 0, "val_accuracy": [0.1, 0.3, 0.2, 0.4]},
        {"lr": 1e-4, "seed": 1, "val_accuracy": [0.2, 0.1, 0.5, 0.3]},
        {"lr": 1e-3, "seed": 0, "val_accuracy": [0.6, 0.1]},  # stopped early
    ]
    rows = module.summary(runs, lengths=(2, 4)).splitlines()[2:]
    # In order of learning rate; 1e-3 ran 2 epochs: no 4-epoch figure.
    assert rows == [
        "| 1.00e-04 | 2 | 25.00% | 45.00% |",
        "| 1.00e-03 | 1 | 60.00% | - |",
    ]
