"""Tests for kerasreg.layers.low_rank (LowRankDense)."""

import keras
import numpy as np
import pytest

from kerasreg.layers import LowRankDense, LowRankReport
from tests import toolkit
from tests.toolkit import check_layer
from tests.toolkit import to_numpy as _np


def _data(n=8, features=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, features)).astype("float32")


def test_toolkit(tmp_path):
    check_layer(lambda: LowRankDense(5, rank=2), _data(), tmp_path)


def test_output_and_kernel_rank():
    layer = LowRankDense(5, rank=2, activation="relu")
    x = _data()
    out = _np(layer(x))
    w = _np(layer.u) @ _np(layer.v)
    assert _np(layer.u).shape == (6, 2) and _np(layer.v).shape == (2, 5)
    np.testing.assert_allclose(out, np.maximum(x @ w + _np(layer.bias), 0), atol=1e-5)
    np.testing.assert_allclose(_np(layer.kernel), w, atol=1e-6)
    assert np.linalg.matrix_rank(w) == 2
    assert layer.count_params() == 2 * (6 + 5) + 5


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(12, 7), (7, 12)])
def test_from_dense_full_rank_reproduces_dense(use_bias, shape):
    in_dim, units = shape
    x = _data(16, in_dim)
    dense = keras.layers.Dense(
        units, activation="tanh", use_bias=use_bias, bias_initializer="random_normal"
    )
    expected = _np(dense(x))
    low = LowRankDense.from_dense(dense, rank=min(in_dim, units))
    np.testing.assert_allclose(_np(low(x)), expected, atol=1e-5)
    assert low.get_config()["activation"] == "tanh"
    report = low.compression_report
    assert isinstance(report, LowRankReport)
    assert report.reconstruction_error == pytest.approx(0.0, abs=1e-5)


def test_from_dense_report_numbers():
    x = _data(4, 20)
    dense = keras.layers.Dense(10)
    dense(x)
    w = _np(dense.kernel).astype("float64")
    low = LowRankDense.from_dense(dense, rank=3)
    r = low.compression_report
    s = np.linalg.svd(w, compute_uv=False)
    assert (r.rank, r.full_rank) == (3, 10)
    assert r.dense_params == 20 * 10 + 10 == dense.count_params()
    assert r.low_rank_params == 3 * 30 + 10 == low.count_params()
    assert r.parameter_saving == pytest.approx(1 - 100 / 210)
    # Error reported = actual ||W - U V||_F = sqrt(sum of dropped s_i^2).
    actual = np.linalg.norm(w - _np(low.kernel))
    assert r.reconstruction_error == pytest.approx(actual, rel=1e-4)
    assert r.reconstruction_error == pytest.approx(np.sqrt(np.sum(s[3:] ** 2)))
    assert r.relative_error == pytest.approx(actual / np.linalg.norm(w), rel=1e-4)
    np.testing.assert_allclose(r.singular_values, s, rtol=1e-5)
    assert "rank 3/10" in str(r) and "% saved" in str(r)
    # Truncated SVD is the best rank-3 approximation: better than a random one.
    rng = np.random.default_rng(0)
    rand = rng.normal(size=(20, 3)) @ rng.normal(size=(3, 10))
    coef = np.sum(rand * w) / np.sum(rand * rand)
    assert r.reconstruction_error < np.linalg.norm(w - coef * rand)


def test_from_dense_model_trains_and_saves(tmp_path):
    x, y = toolkit.classification_data(32, 8, 3)
    dense = keras.layers.Dense(3, activation="softmax")
    dense(x)
    model = keras.Sequential([keras.Input((8,)), LowRankDense.from_dense(dense, 2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "low.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 4, "rank": 0}, "rank=0"),
        ({"units": 4, "rank": 5}, "rank=5"),
        ({"units": 4, "rank": 1.5}, "rank=1.5"),
        ({"units": 0, "rank": 1}, "units=0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LowRankDense(**kwargs)


def test_rank_larger_than_input_dim_raises_at_build():
    with pytest.raises(
        ValueError, match=r"argument `rank`.*min\(input_dim, units\).*rank=4"
    ):
        LowRankDense(8, rank=4).build((None, 3))


def test_from_dense_bad_arguments():
    dense = keras.layers.Dense(4)
    with pytest.raises(ValueError, match="layer"):
        LowRankDense.from_dense(dense, 2)  # not built
    dense(_data(2, 6))
    with pytest.raises(ValueError, match="rank=5"):
        LowRankDense.from_dense(dense, 5)
    with pytest.raises(ValueError, match="rank=0"):
        LowRankDense.from_dense(dense, 0)
    with pytest.raises(ValueError, match="layer"):
        LowRankDense.from_dense(keras.layers.Conv2D(2, 3), 1)


def test_docstring_examples():
    from kerasreg.layers import low_rank as module
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(module)
