"""The `Example:` blocks of the callbacks' and ensembles' docstrings run."""

import importlib
import tempfile

import pytest

from tests import toolkit

MODULES = [
    "kerasreg.callbacks.explosion_detector",
    "kerasreg.callbacks.ema_weights",
    "kerasreg.callbacks.smoothed_early_stopping",
    "kerasreg.callbacks.snapshot_ensemble",
    "kerasreg.callbacks.learning_rate_finder",
    "kerasreg.callbacks.swa",
    "kerasreg.ensembles",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    # The examples' `tempfile.mkdtemp()` folders and any relative paths land in
    # pytest's temporary directory, not in /tmp or the checkout.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    toolkit.assert_docstring_examples(importlib.import_module(name))
