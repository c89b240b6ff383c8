"""Tests for kerasreg.layers.drop_block (DropBlock2D) and kerasreg.ops.drop_block."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasreg.layers import DropBlock2D
from kerasreg.ops import drop_block as db_ops
from tests import toolkit
from tests.toolkit import check_layer
from tests.toolkit import to_numpy as _np


def test_toolkit(tmp_path):
    check_layer(
        lambda: DropBlock2D(0.2, block_size=3, seed=1),
        toolkit.images(8, 8, 8, 2, value_range=(0, 1)),
        tmp_path,
    )


def _covered_by_blocks(zero, bh, bw):
    """True where a pixel lies in an all-zero bh x bw window inside the map."""
    h, w = zero.shape
    covered = np.zeros_like(zero)
    for r in range(h - bh + 1):
        for c in range(w - bw + 1):
            if zero[r : r + bh, c : c + bw].all():
                covered[r : r + bh, c : c + bw] = True
    return covered


@pytest.mark.parametrize("block_size", [3, 4, (2, 5)])
def test_dropped_units_form_whole_blocks_inside_the_map(block_size):
    keep = _np(db_ops.drop_block_mask((2, 12, 14, 3), 0.3, block_size, seed=0))
    bh, bw = (block_size, block_size) if isinstance(block_size, int) else block_size
    assert set(np.unique(keep)) <= {0.0, 1.0}
    assert (keep == 0).any()
    for b in range(2):
        for c in range(3):
            zero = keep[b, :, :, c] == 0
            np.testing.assert_array_equal(_covered_by_blocks(zero, bh, bw), zero)


def test_single_seed_drops_exactly_one_block():
    # gamma close to 0 except that we force one seed via the op's building
    # blocks: the valid region has (H - bs + 1)^2 positions.
    valid = db_ops._drop_block_valid_region(9, 9, 3)
    assert valid.sum() == 7 * 7
    assert valid[0].sum() == 0 and valid[:, -1].sum() == 0 and valid[1, 1] == 1
    seeds = np.zeros((1, 9, 9, 1), "float32")
    seeds[0, 1, 1, 0] = 1  # a corner-most valid seed
    dropped = _np(ops.max_pool(seeds, pool_size=3, strides=1, padding="same"))
    np.testing.assert_array_equal(np.argwhere(dropped[0, :, :, 0]).min(axis=0), [0, 0])
    assert dropped.sum() == 9  # a whole 3x3 block inside the map


def test_gamma_formula():
    rate, h, w, bs = 0.1, 16, 12, 3
    expected = rate / bs**2 * (h * w) / ((h - bs + 1) * (w - bs + 1))
    assert db_ops._drop_block_gamma(rate, h, w, bs) == pytest.approx(expected)
    # A block larger than the map is clipped: one block covers everything.
    assert db_ops._drop_block_gamma(0.3, 5, 5, 7) == pytest.approx(0.3)
    assert db_ops._drop_block_valid_region(5, 5, 7).sum() == 1


def test_fraction_dropped_close_to_rate_and_mean_exact():
    rate = 0.1
    x = np.ones((8, 32, 32, 16), "float32")
    out = _np(DropBlock2D(rate, block_size=5, seed=0)(x, training=True))
    dropped = np.mean(out == 0)
    # Overlapping blocks make the realised fraction a bit below `rate`.
    assert 0.6 * rate < dropped < 1.1 * rate, dropped
    # The count-based normalisation keeps the mean exact at every step.
    assert out.mean() == pytest.approx(1.0, abs=1e-4)
    # Each feature map has its own mask.
    assert not np.array_equal(out[0, :, :, 0] == 0, out[0, :, :, 1] == 0)


def test_channels_first():
    x = np.ones((2, 4, 10, 10), "float32")
    out = _np(
        DropBlock2D(0.2, 3, data_format="channels_first", seed=0)(x, training=True)
    )
    assert out.shape == x.shape
    assert out.mean() == pytest.approx(1.0, abs=1e-4)
    for b in range(2):
        for c in range(4):
            zero = out[b, c] == 0
            np.testing.assert_array_equal(_covered_by_blocks(zero, 3, 3), zero)


def test_identity_at_inference_and_rate_zero():
    x = toolkit.images(2, 8, 8, 3)
    np.testing.assert_array_equal(_np(DropBlock2D(0.5, 3)(x)), x)
    np.testing.assert_array_equal(_np(DropBlock2D(0.0, 3)(x, training=True)), x)


def test_same_seed_same_output():
    x = np.ones((2, 10, 10, 2), "float32")
    a = _np(DropBlock2D(0.3, 3, seed=5)(x, training=True))
    b = _np(DropBlock2D(0.3, 3, seed=5)(x, training=True))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(2, 8, 3), (2, 4, 8, 8, 3)])
def test_non_4d_input_raises_at_build(shape):
    with pytest.raises(ValueError, match=r"argument `input_shape`.*4D"):
        DropBlock2D(0.1, 3).build(shape)
    with pytest.raises(ValueError, match=r"argument `input_shape`.*4D"):
        keras.Sequential([keras.Input(shape[1:]), DropBlock2D(0.1, 3)])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 1.0}, "rate=1.0"),
        ({"rate": -0.2}, "rate=-0.2"),
        ({"block_size": 0}, "block_size=0"),
        ({"block_size": (3, 0)}, r"block_size=\(3, 0\)"),
        ({"block_size": 2.5}, "block_size=2.5"),
        ({"data_format": "nhwc"}, "data_format='nhwc'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DropBlock2D(**{"rate": 0.1, **kwargs})


def test_docstring_examples():
    from kerasreg.layers import drop_block as module
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(module)
