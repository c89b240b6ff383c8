"""Helpers shared by the layer tests: docstring examples run as doctests."""

from __future__ import annotations


def assert_docstring_examples(module) -> None:
    """Runs the `Example:` blocks of `module`'s docstrings as doctests."""
    import doctest

    import keras
    import numpy as np

    import kerasreg

    globs = {"np": np, "keras": keras, "kerasreg": kerasreg, **vars(module)}
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    tests = doctest.DocTestFinder().find(module, module.__name__, globs=globs)
    attempted = 0
    for test in tests:
        if test.examples:
            result = runner.run(test)
            attempted += result.attempted
            assert result.failed == 0, f"docstring example failed in {test.name}"
    assert attempted > 0
