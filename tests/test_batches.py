"""The one data adapter (`kerasreg._batches`)."""

import numpy as np
import pytest

from kerasreg._batches import fit_arguments, input_batches, take


def _shapes(batches):
    return [np.shape(b) for b in batches]


def test_arrays_and_xy_tuples_are_cut_into_batches():
    x, y = np.zeros((5, 3)), np.zeros(5)
    assert _shapes(input_batches(x, 2)) == [(2, 3), (2, 3), (1, 3)]
    assert _shapes(input_batches((x, y), 4)) == [(4, 3), (1, 3)]
    assert _shapes(input_batches((x, y, y), 5)) == [(5, 3)]
    image = np.zeros((8, 8, 3))
    assert _shapes(input_batches(image, 4, example_rank=3)) == [(1, 8, 8, 3)]


def test_iterables_give_their_inputs():
    x = np.zeros((4, 3))

    def generator():
        yield x, np.zeros(4)
        yield x

    assert _shapes(input_batches(generator(), 2)) == [(4, 3), (4, 3)]
    batches = list(input_batches(iter([{"a": x}]), 2))
    assert list(batches[0]) == ["a"]


def test_datasets_are_read_as_numpy():
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((5, 3)), np.zeros(5))).batch(2)
    batches = list(input_batches(ds, 99))
    assert _shapes(batches) == [(2, 3), (2, 3), (1, 3)]
    assert all(isinstance(b, np.ndarray) for b in batches)


def test_fit_arguments_and_take():
    x, y, w = np.zeros((4, 3)), np.zeros(4), np.ones(4)
    assert set(fit_arguments((x, y), 8)) == {"x", "y", "batch_size"}
    assert set(fit_arguments((x, y, w), 8)) == {"x", "y", "sample_weight", "batch_size"}
    assert fit_arguments((i for i in ()), 8).keys() == {"x"}
    parts = take({"a": x, "b": [y, y]}, [0, 2])
    assert parts["a"].shape == (2, 3) and parts["b"][1].shape == (2,)
