"""`check_layer` for the issue-2 layer tests, robust to several strategies.

`toolkit.assert_mirrored_strategy` builds a new `MirroredStrategy` with the
default (collective all-reduce) cross-device ops in every test. TensorFlow
numbers collective instances per strategy from the same start, so a second
strategy in the same process whose gradients have other shapes aborts with
"Shape mismatch in the collective instance 100" (reproduced with two plain
`keras.layers.Dense` / `Conv2D` models). Until the toolkit changes, these
tests run the toolkit battery without its strategy check and train under a
`MirroredStrategy` on the same two logical CPU devices that reduces with
`ReductionToOneDevice` (no collective ops), which tests the same thing for a
layer: replicated variables, per-replica random state, gradient reduction.
"""

from __future__ import annotations

from tests import toolkit


def assert_mirrored_strategy(make_layer, x, *, batch_size: int = 4):
    if toolkit.BACKEND != "tensorflow":
        return None
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        return toolkit.assert_fit_step(make_layer, x, batch_size=batch_size)


def check_layer(make_layer, x, tmp_path, *, distributed: bool = True, **kwargs):
    """`toolkit.check_layer`, with the strategy check above."""
    toolkit.check_layer(make_layer, x, tmp_path, distributed=False, **kwargs)
    if distributed:
        assert_mirrored_strategy(make_layer, x, batch_size=kwargs.get("batch_size", 4))


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
