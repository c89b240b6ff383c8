"""The `Example:` blocks of the callbacks' and ensembles' docstrings run."""

import doctest
import importlib
import tempfile

import keras
import numpy as np
import pytest

import kerasreg

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
    module = importlib.import_module(name)
    # As in Keras's docstrings, examples assume `keras` and `np` are imported.
    globs = {"keras": keras, "np": np, "kerasreg": kerasreg, **vars(module)}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    attempted = 0
    for test in doctest.DocTestFinder().find(module, name, globs=globs):
        if test.examples:
            result = runner.run(test)
            attempted += result.attempted
            assert result.failed == 0, f"docstring example failed in {test.name}"
    assert attempted > 0
