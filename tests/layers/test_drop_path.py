"""Tests for kerasreg.layers.drop_path (DropPath) and kerasreg.ops.drop_path."""

import keras
import numpy as np
import pytest

from kerasreg.layers import DropPath
from kerasreg.ops import drop_path
from tests import toolkit
from tests.toolkit import check_layer
from tests.toolkit import to_numpy as _np


def test_toolkit(tmp_path):
    check_layer(
        lambda: DropPath(0.3, seed=1),
        toolkit.images(8, 4, 4, 2, value_range=(0, 1)),
        tmp_path,
        trainable_weights=0,
        non_trainable_weights=0,
        seed_generators=1,
    )


def test_whole_example_dropped_or_rescaled():
    rate = 0.25
    x = toolkit.images(2000, 3, 3, 2, value_range=(1, 2))
    out = _np(DropPath(rate, seed=0)(x, training=True))
    flat_out, flat_x = out.reshape(len(x), -1), x.reshape(len(x), -1)
    dropped = np.all(flat_out == 0, axis=1)
    np.testing.assert_allclose(
        flat_out[~dropped], flat_x[~dropped] / (1 - rate), rtol=1e-6
    )
    # 2000 per-example draws: std 0.0097; 5 sigma.
    assert abs(dropped.mean() - rate) < 0.05
    # The mean is preserved.
    assert abs(out.mean() / x.mean() - 1) < 0.05


def test_identity_at_inference_and_rate_zero():
    x = toolkit.images(4, 3, 3, 2)
    np.testing.assert_array_equal(_np(DropPath(0.5)(x)), x)
    np.testing.assert_array_equal(_np(DropPath(0.0)(x, training=True)), x)


def test_op_and_seed():
    x = np.ones((64, 7), "float32")
    a = _np(drop_path(x, 0.5, seed=3))
    b = _np(drop_path(x, 0.5, seed=3))
    np.testing.assert_array_equal(a, b)
    assert np.all(a == a[:, :1])  # one decision per example


def test_in_a_residual_block():
    inputs = keras.Input((8, 8, 4))
    branch = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    outputs = keras.layers.Add()([inputs, DropPath(0.5, seed=0)(branch)])
    model = keras.Model(inputs, outputs)
    x = toolkit.images(16, 8, 8, 4, value_range=(0, 1))
    out = _np(model(x, training=True))
    # Examples whose branch was dropped pass through unchanged.
    identity = np.all(np.isclose(out, x), axis=(1, 2, 3))
    assert 0 < identity.sum() < 16


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.2, "0.5"])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=f"argument `rate`.*Received: rate={rate!r}"):
        DropPath(rate)


def test_docstring_examples():
    from kerasreg.layers import drop_path as module
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(module)
