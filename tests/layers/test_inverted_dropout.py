"""Tests for kerasreg.layers.inverted_dropout and kerasreg.mc_predict."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.layers import DropConnectDense, InvertedDropout
from tests import toolkit
from tests.toolkit import check_layer
from tests.toolkit import to_numpy as _np


def test_toolkit(tmp_path):
    check_layer(
        lambda: InvertedDropout(0.3, seed=1),
        toolkit.images(8, 4, 4, 2, value_range=(0, 1)),
        tmp_path,
    )


def test_mc_toolkit(tmp_path):
    # Random at inference: the round trip compares configs and weights.
    make = lambda: InvertedDropout(0.3, noise_shape=(None, 1), seed=1, mc=True)  # noqa: E731
    x = toolkit.classification_data(8, 6)[0]
    toolkit.assert_symbolic_matches_eager(make, x)
    toolkit.assert_save_load_roundtrip(make, x, tmp_path, compare_outputs=False)
    toolkit.assert_jit_compile(make, x)


def test_mean_preserved_and_values():
    rate = 0.3
    x = np.full((400, 100), 2.0, "float32")
    out = _np(InvertedDropout(rate, seed=0)(x, training=True))
    np.testing.assert_allclose(np.unique(out), [0.0, 2.0 / (1 - rate)], rtol=1e-6)
    # 40000 draws: std of the mean is 2/0.7*sqrt(0.3*0.7/40000) = 0.0065.
    assert abs(out.mean() - 2.0) < 0.033
    assert abs(np.mean(out == 0) - rate) < 0.012


def test_identity_at_inference_and_rate_zero():
    x = toolkit.classification_data(8, 6)[0]
    np.testing.assert_array_equal(_np(InvertedDropout(0.5)(x)), x)
    np.testing.assert_array_equal(_np(InvertedDropout(0.0)(x, training=True)), x)
    np.testing.assert_array_equal(_np(InvertedDropout(0.0, mc=True)(x)), x)


def test_noise_shape_broadcasts():
    x = np.ones((64, 5, 3), "float32")
    out = _np(InvertedDropout(0.5, noise_shape=(None, 1, 3), seed=0)(x, training=True))
    assert np.all(out == out[:, :1, :])  # one draw per (example, channel)
    assert len(np.unique(out[:, 0, :])) == 2


def test_same_seed_same_masks():
    x = np.ones((4, 50), "float32")
    a = _np(InvertedDropout(0.5, seed=3)(x, training=True))
    b = _np(InvertedDropout(0.5, seed=3)(x, training=True))
    c = _np(InvertedDropout(0.5, seed=4)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _bn_model(mc=True, rate=0.5):
    inputs = keras.Input((6,))
    bn = keras.layers.BatchNormalization()
    h = bn(inputs)
    h = InvertedDropout(rate, mc=mc, seed=0)(h)
    model = keras.Model(inputs, h)
    # Known moving statistics, far from the batch statistics of `x` below.
    bn.moving_mean.assign(np.full(6, 5.0, "float32"))
    bn.moving_variance.assign(np.full(6, 4.0, "float32"))
    return model, bn


def test_mc_varies_at_inference_while_batchnorm_stays_in_inference_mode():
    model, bn = _bn_model(mc=True)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    bn_inference = (x - 5.0) / np.sqrt(4.0 + bn.epsilon)
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    assert not np.array_equal(first, second)  # dropout active at inference
    for out in (first, second, _np(model(x))):
        kept = out != 0
        # Kept units are the BN *inference* output scaled by 1/keep:
        np.testing.assert_allclose(out[kept], bn_inference[kept] / 0.5, rtol=1e-5)
        assert 0.3 < kept.mean() < 0.7
    # ... and the moving statistics were not updated.
    np.testing.assert_array_equal(_np(bn.moving_mean), np.full(6, 5.0))
    # Contrast: training=True would use the batch statistics.
    train_out = _np(model(x, training=True))
    kept = train_out != 0
    assert not np.allclose(train_out[kept], bn_inference[kept] / 0.5, atol=0.1)


def test_mc_false_is_deterministic_at_inference():
    model, _ = _bn_model(mc=False)
    x = np.ones((4, 6), "float32")
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), model.predict(x, verbose=0)
    )


# ---------------------------------------------------------------------------
# mc_predict
# ---------------------------------------------------------------------------


def _linear_mc_model(rate=0.5, noise_shape=None):
    model = keras.Sequential(
        [
            keras.Input((5,)),
            InvertedDropout(rate, noise_shape=noise_shape, mc=True, seed=0),
            keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones"),
        ]
    )
    model.layers[-1].kernel.assign(np.arange(10, dtype="float32").reshape(5, 2) / 10.0)
    return model


def test_mc_predict_mean_and_std_match_the_analytic_ones():
    rate = 0.5
    model = _linear_mc_model(rate)
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    samples = 1000
    mean, std = kerasreg.mc_predict(model, x, samples=samples, batch_size=3)
    assert mean.shape == (7, 2) and std.shape == (7, 2)
    assert mean.dtype == np.float32
    w = _np(model.layers[-1].kernel)
    exact_mean = x @ w + 1.0
    exact_std = np.sqrt(rate / (1 - rate) * (x**2) @ (w**2))
    np.testing.assert_array_less(
        np.abs(mean - exact_mean), 5 * exact_std / np.sqrt(samples) + 1e-5
    )
    np.testing.assert_allclose(std, exact_std, rtol=0.15)


def test_mc_predict_exports():
    # One import path: the package (defined in kerasreg.mc), not kerasreg.layers.
    assert kerasreg.mc_predict is kerasreg.mc.mc_predict
    assert not hasattr(kerasreg.layers, "mc_predict")


def test_mc_predict_with_batch_shared_noise_still_gives_independent_draws():
    # noise_shape (1, 5) shares one mask across the batch: repeated rows of a
    # chunk would share their draws, so mc_predict must not rely on them.
    model = _linear_mc_model(0.5, noise_shape=(1, 5))
    x = np.ones((4, 5), "float32")
    _, std = kerasreg.mc_predict(model, x, samples=40, batch_size=4)
    assert np.all(std > 0.1)


def test_mc_predict_multi_input_and_dropconnect_sampling():
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    h = keras.layers.Concatenate()([a, b])
    out = DropConnectDense(
        2, rate=0.5, activation="relu", inference="sampling", num_samples=4, seed=0
    )(h)
    model = keras.Model({"a": a, "b": b}, out)
    x = {"a": np.ones((5, 3), "float32"), "b": np.ones((5, 2), "float32")}
    mean, std = kerasreg.mc_predict(model, x, samples=10, batch_size=2)
    assert mean.shape == (5, 2) and np.all(np.isfinite(std))
    assert np.any(std > 0)


def test_mc_predict_warns_without_stochastic_layers():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dropout(0.5), keras.layers.Dense(1)]
    )
    with pytest.warns(UserWarning, match="no layer that is random at inference"):
        mean, std = kerasreg.mc_predict(model, np.ones((4, 3)), samples=5)
    np.testing.assert_array_equal(std, 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"samples": 1}, "samples=1"), ({"batch_size": 0}, "batch_size=0")],
)
def test_mc_predict_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kerasreg.mc_predict(_linear_mc_model(), np.ones((2, 5)), **kwargs)


# ---------------------------------------------------------------------------
# Bad arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": -0.5}, "rate=-0.5"),
        ({"rate": 1.0}, "rate=1.0"),
        ({"rate": 2}, "rate=2"),
        ({"rate": 0.5, "noise_shape": "abc"}, "noise_shape='abc'"),
        ({"rate": 0.5, "noise_shape": (None, 0)}, r"noise_shape=\(None, 0\)"),
        ({"rate": 0.5, "mc": "yes"}, "mc='yes'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InvertedDropout(**kwargs)


def test_docstring_examples():
    from kerasreg.layers import inverted_dropout as module
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(module)


def test_mc_predict_docstring_example():
    from kerasreg import mc
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(mc)
