"""Tests for kerasreg.layers.drop_connect (DropConnectDense, DropConnectConv2D)."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasreg.layers import DropConnectConv2D, DropConnectDense
from kerasreg.ops import drop_connect as dc_ops
from tests import toolkit
from tests.toolkit import check_layer
from tests.toolkit import to_numpy as _np


def _data(n=8, features=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, features)).astype("float32")


# ---------------------------------------------------------------------------
# Toolkit battery
# ---------------------------------------------------------------------------


def test_dense_toolkit(tmp_path):
    check_layer(lambda: DropConnectDense(5, rate=0.3, seed=1), _data(), tmp_path)


def test_dense_example_mask_toolkit(tmp_path):
    # The full battery runs on the default mask above; the per-example path
    # gets the checks that exercise its own code: shapes, save/load, XLA,
    # float16.
    make = lambda: DropConnectDense(  # noqa: E731
        5, rate=0.3, mask="example", activation="relu", seed=1
    )
    x = _data()
    toolkit.assert_symbolic_matches_eager(make, x, training=True)
    toolkit.assert_save_load_roundtrip(make, x, tmp_path)
    toolkit.assert_jit_compile(make, x)
    toolkit.assert_mixed_precision(make, x)


def test_dense_sampling_inference_toolkit(tmp_path):
    # Sampling inference is random at inference time: outputs are compared
    # in distribution (below), not across save/load.
    make = lambda: DropConnectDense(  # noqa: E731
        5, rate=0.3, activation="tanh", inference="sampling", num_samples=8, seed=1
    )
    x = _data()
    toolkit.assert_symbolic_matches_eager(make, x)
    toolkit.assert_save_load_roundtrip(make, x, tmp_path, compare_outputs=False)
    toolkit.assert_jit_compile(make, x)
    toolkit.assert_mixed_precision(make, x)


def test_conv_toolkit(tmp_path):
    check_layer(
        lambda: DropConnectConv2D(4, 3, rate=0.3, padding="same", seed=2),
        toolkit.images(8, 8, 8, 3, value_range=(0, 1)),
        tmp_path,
    )


# ---------------------------------------------------------------------------
# rate=0 is exactly Dense / Conv2D
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("training", [False, True])
def test_rate_zero_is_dense(training):
    x = _data()
    dense = keras.layers.Dense(5, activation="relu")
    expected = _np(dense(x))
    dc = DropConnectDense(5, rate=0.0, activation="relu", mask="example")
    dc.build(x.shape)
    dc.set_weights(dense.get_weights())
    np.testing.assert_array_equal(_np(dc(x, training=training)), expected)


@pytest.mark.parametrize("training", [False, True])
def test_rate_zero_is_conv2d(training):
    x = toolkit.images(2, 8, 8, 3, value_range=(0, 1))
    conv = keras.layers.Conv2D(4, 3, strides=2, activation="relu")
    expected = _np(conv(x))
    dc = DropConnectConv2D(4, 3, rate=0.0, strides=2, activation="relu")
    dc.build(x.shape)
    dc.set_weights(conv.get_weights())
    np.testing.assert_array_equal(_np(dc(x, training=training)), expected)


def test_inference_mean_is_plain_kernel():
    x = _data()
    dc = DropConnectDense(5, rate=0.6, activation="relu", seed=0)
    out = _np(dc(x))
    expected = np.maximum(x @ _np(dc.kernel) + _np(dc.bias), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Seeded statistical checks
# ---------------------------------------------------------------------------


def _identity_probe(units=400, rate=0.3, mask="batch", rows=1, seed=0):
    """A layer whose training output is exactly its rescaled kernel mask."""
    layer = DropConnectDense(
        units,
        rate=rate,
        mask=mask,
        use_bias=False,
        kernel_initializer="ones",
        seed=seed,
    )
    x = np.ones((rows, 1), "float32")
    return layer, x


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_fraction_of_dropped_weights_matches_rate(mask):
    rate = 0.3
    layer, x = _identity_probe(units=2000, rate=rate, mask=mask, rows=10)
    out = _np(layer(x, training=True))  # = mask / keep, one row per example
    realised = dc_ops._realised_rate(rate)
    assert abs(realised - rate) <= 1 / 4096
    np.testing.assert_allclose(np.unique(out), [0.0, 1.0 / (1 - realised)], rtol=1e-6)
    dropped = np.mean(out == 0)
    # 20000 Bernoulli(0.3) draws: std 0.0032; 5 sigma.
    assert abs(dropped - rate) < 0.017, dropped


def test_fraction_of_dropped_kernel_weights_op():
    kernel = ops.ones((300, 300))
    masked = _np(dc_ops.drop_connect_kernel(kernel, 0.7, seed=3))
    assert abs(np.mean(masked == 0) - 0.7) < 0.01
    assert np.allclose(masked[masked != 0], 1 / (1 - dc_ops._realised_rate(0.7)))
    # An odd last axis and the exact path of small rates (off the 1/2048 grid).
    for rate, shape in ((0.3, (301, 7)), (0.013, (400, 500))):
        assert dc_ops._realised_rate(0.013) == 0.013
        mask = _np(dc_ops.drop_connect_mask(shape, rate, seed=4))
        assert mask.shape == shape
        assert abs(np.mean(mask == 0) - rate) < 5 * np.sqrt(rate / mask.size) + 1e-3
        assert abs(mask.mean() - 1) < 0.02


def test_two_entries_per_draw_are_independent():
    mask = _np(dc_ops.drop_connect_mask((2000, 200), 0.5, seed=5)) == 0
    # Columns j and j + 100 are cut from the same uniform draw.
    corr = np.corrcoef(mask[:, :100].ravel(), mask[:, 100:].ravel())[0, 1]
    assert abs(corr) < 0.01


def test_example_mask_differs_per_row_batch_mask_does_not():
    layer, x = _identity_probe(units=64, mask="example", rows=8)
    out = _np(layer(x, training=True))
    for i in range(8):
        for j in range(i + 1, 8):
            assert not np.array_equal(out[i], out[j])
    layer, x = _identity_probe(units=64, mask="batch", rows=8)
    out = _np(layer(x, training=True))
    assert all(np.array_equal(out[0], row) for row in out)


def _linear_layer(mask, seed=0, rate=0.4):
    layer = DropConnectDense(3, rate=rate, mask=mask, seed=seed)
    x = np.random.default_rng(1).normal(size=(1, 10)).astype("float32")
    layer.build(x.shape)
    layer.bias.assign(np.array([0.5, -0.5, 1.0], "float32"))
    return layer, x


def _analytic_std(layer, x, rate):
    w = _np(layer.kernel)
    return np.sqrt(rate / (1 - rate) * (x**2) @ (w**2))[0]


def test_training_mean_matches_inference_example_mask():
    rate = 0.4
    layer, x = _linear_layer("example", rate=rate)
    n = 4000
    draws = _np(layer(np.repeat(x, n, axis=0), training=True))
    inference = _np(layer(x))[0]
    sigma = _analytic_std(layer, x, rate)
    np.testing.assert_array_less(
        np.abs(draws.mean(axis=0) - inference), 5 * sigma / np.sqrt(n) + 1e-6
    )
    # The variance formula used by inference="sampling" matches the
    # empirical variance of the real per-example masks (within 10%).
    np.testing.assert_allclose(draws.std(axis=0), sigma, rtol=0.1)


def test_training_mean_matches_inference_batch_mask():
    rate = 0.4
    layer, x = _linear_layer("batch", rate=rate)
    n = 150
    draws = np.stack([_np(layer(x, training=True))[0] for _ in range(n)])
    inference = _np(layer(x))[0]
    sigma = _analytic_std(layer, x, rate)
    np.testing.assert_array_less(
        np.abs(draws.mean(axis=0) - inference), 5 * sigma / np.sqrt(n) + 1e-6
    )


def test_conv_training_mean_matches_inference():
    rate = 0.5
    layer = DropConnectConv2D(2, 3, rate=rate, seed=0)
    x = toolkit.images(1, 5, 5, 2, value_range=(-1, 1))
    inference = _np(layer(x))
    n = 150
    mean = np.mean([_np(layer(x, training=True)) for _ in range(n)], axis=0)
    var = rate / (1 - rate) * _np(layer.convolution_op(x**2, layer.kernel**2))
    np.testing.assert_array_less(np.abs(mean - inference), 5 * np.sqrt(var / n) + 1e-6)


@pytest.mark.parametrize("mask", ["batch", "example"])
def test_same_seed_same_outputs(mask):
    x = _data()
    outs = []
    for seed in (7, 7, 8):
        layer = DropConnectDense(5, rate=0.5, mask=mask, seed=seed)
        layer.build(x.shape)
        layer.set_weights([np.full((6, 5), 0.1, "float32"), np.zeros(5, "float32")])
        outs.append([_np(layer(x, training=True)) for _ in range(2)])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert not np.array_equal(outs[0][0], outs[0][1])  # fresh mask per call
    assert not np.array_equal(outs[0][0], outs[2][0])  # other seed


# ---------------------------------------------------------------------------
# inference="sampling" (Gaussian moment matching)
# ---------------------------------------------------------------------------


def test_sampling_linear_converges_to_mean():
    layer = DropConnectDense(
        4, rate=0.5, inference="sampling", num_samples=20000, seed=0
    )
    x = _data(2, 6)
    out = _np(layer(x))
    mean = x @ _np(layer.kernel) + _np(layer.bias)
    sigma = _analytic_std(layer, x[:1], 0.5)
    np.testing.assert_allclose(out[0], mean[0], atol=float(5 * sigma.max() / 141))


def test_sampling_matches_relu_of_gaussian():
    # E[relu(u)] for u ~ N(m, s^2) = m * Phi(m/s) + s * phi(m/s).
    from math import erf, exp, pi, sqrt

    rate = 0.5
    layer = DropConnectDense(
        3, rate=rate, activation="relu", inference="sampling", num_samples=40000, seed=0
    )
    x = _data(1, 6)
    out = _np(layer(x))[0]
    m = (x @ _np(layer.kernel) + _np(layer.bias))[0]
    s = _analytic_std(layer, x, rate)
    expected = [
        mi * 0.5 * (1 + erf(mi / si / sqrt(2)))
        + si * exp(-0.5 * (mi / si) ** 2) / sqrt(2 * pi)
        for mi, si in zip(m, s)
    ]
    np.testing.assert_allclose(out, expected, atol=float(0.03 * s.max()))
    # ... which differs from relu of the mean: the sampling is meaningful.
    assert not np.allclose(out, np.maximum(m, 0), atol=0.05 * s.max())


def test_conv_sampling_runs_and_is_close_to_mean_for_linear():
    layer = DropConnectConv2D(
        2, 3, rate=0.2, inference="sampling", num_samples=1000, seed=0
    )
    x = toolkit.images(2, 6, 6, 2, value_range=(-1, 1))
    out = _np(layer(x))
    mean = _np(layer.convolution_op(x, layer.kernel)) + _np(layer.bias)
    np.testing.assert_allclose(out, mean, atol=0.1)


# ---------------------------------------------------------------------------
# from_dense
# ---------------------------------------------------------------------------


def test_from_dense_copies_weights_and_config():
    x = _data()
    dense = keras.layers.Dense(5, activation="relu", use_bias=True)
    expected = _np(dense(x))
    dc = DropConnectDense.from_dense(dense, rate=0.25, mask="example", seed=3)
    assert isinstance(dc, DropConnectDense)
    assert dc.rate == 0.25 and dc.mask == "example" and dc.units == 5
    assert dc.get_config()["activation"] == "relu"
    np.testing.assert_allclose(_np(dc(x)), expected, rtol=1e-6)
    # Training drops weights of the copied kernel.
    assert not np.allclose(_np(dc(x, training=True)), expected)


def test_from_dense_in_a_model_trains():
    x, y = toolkit.classification_data(32, 8, 3)
    dense = keras.layers.Dense(3, activation="softmax")
    dense(x)
    model = keras.Sequential(
        [keras.Input((8,)), DropConnectDense.from_dense(dense, 0.2)]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_from_dense_rejects_bad_layers():
    with pytest.raises(ValueError, match="layer"):
        DropConnectDense.from_dense(keras.layers.Dense(3), rate=0.5)  # not built
    with pytest.raises(ValueError, match="layer"):
        DropConnectDense.from_dense(keras.layers.Conv2D(3, 3), rate=0.5)
    dense = keras.layers.Dense(3)
    dense(_data())
    with pytest.raises(ValueError, match="rate=1.5"):
        DropConnectDense.from_dense(dense, rate=1.5)


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": -0.1}, "rate=-0.1"),
        ({"rate": 1.0}, "rate=1.0"),
        ({"rate": 1.5}, "rate=1.5"),
        ({"mask": "row"}, "mask='row'"),
        ({"inference": "mc"}, "inference='mc'"),
        ({"num_samples": 0}, "num_samples=0"),
        ({"seed": "a"}, "seed='a'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"argument `{message.split('=')[0]}`"):
        DropConnectDense(4, **kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DropConnectConv2D(4, 3, **kwargs)


def test_conv_has_no_per_example_mask():
    with pytest.raises(ValueError, match="mask='example'"):
        DropConnectConv2D(4, 3, mask="example")


@pytest.mark.parametrize("shape", [(2, 8, 3), (2, 4, 8, 8, 3)])
def test_conv_rejects_non_4d_input_at_build(shape):
    layer = DropConnectConv2D(4, 3)
    with pytest.raises(ValueError, match=r"argument `input_shape`.*4D"):
        layer.build(shape)
    with pytest.raises(ValueError, match=r"argument `input_shape`.*4D"):
        keras.Sequential([keras.Input(shape[1:]), DropConnectConv2D(4, 3)])


def test_docstring_examples():
    from kerasreg.layers import drop_connect as module
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(module)
