"""Tests of kerasreg.diagnostics.bias_variance."""

import keras
import numpy as np
import pytest

from kerasreg.diagnostics import bias_variance
from kerasreg.diagnostics.bias_variance import _domingos
from tests import toolkit

NOISE_STD = 0.5


def _linear():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.2), "mse")
    return model


def _quadratic_problem(seed=0):
    """t = x^2 + N(0, 0.5^2), x ~ U(-1, 1): a line has a known bias."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (1200, 1)).astype("float32")
    t = (x[:, 0] ** 2 + rng.normal(0, NOISE_STD, len(x))).astype("float32")
    return x[:200], t[:200], x[200:], t[200:]


def test_recovers_known_noise_and_bias():
    x, t, x_test, t_test = _quadratic_problem()
    result = bias_variance(
        _linear,
        x,
        t,
        x_test,
        t_test,
        n_models=4,
        true_fn=lambda v: v[:, 0] ** 2,
        fit_kwargs={"epochs": 2, "batch_size": 10, "verbose": 0},
    )
    assert result.task == "regression" and result.n_models == 4
    # Noise: the variance of the targets around x^2, 0.25.
    assert result.noise == pytest.approx(NOISE_STD**2, rel=0.15)
    # Bias^2: the best line through x^2 on U(-1, 1) is the constant 1/3, off
    # by E[(x^2 - 1/3)^2] = 1/5 - 1/9 = 4/45 on average (here: on x_test).
    expected_bias = float(np.mean((x_test[:, 0] ** 2 - 1 / 3) ** 2))
    assert expected_bias == pytest.approx(4 / 45, rel=0.1)
    assert result.bias == pytest.approx(expected_bias, abs=0.03)
    # Variance: a 2-parameter fit on 200 noisy points varies little.
    assert 1e-4 < result.variance < 0.03
    # The three parts add up to the measured expected loss.
    total = result.bias + result.variance + result.noise
    assert total == pytest.approx(result.expected_loss, rel=0.1)
    assert "high bias" in result.reading
    assert "bias^2" in str(result) and "noise" in str(result)
    assert result.predictions.shape == (4, 1000, 1)


def test_known_noise_variance_and_unknown_noise():
    x, t, x_test, t_test = _quadratic_problem(seed=1)
    kwargs = {"fit_kwargs": {"epochs": 2, "batch_size": 10, "verbose": 0}}
    given = bias_variance(
        _linear, x, t, x_test, t_test, n_models=2, noise=NOISE_STD**2, **kwargs
    )
    assert given.noise == NOISE_STD**2 and given.noise_source == "given"
    assert given.bias == pytest.approx(4 / 45, abs=0.04)
    unknown = bias_variance(_linear, x, t, x_test, t_test, n_models=2, **kwargs)
    assert unknown.noise is None
    assert unknown.bias == pytest.approx(4 / 45 + NOISE_STD**2, abs=0.05)
    assert "bias^2 + noise" in str(unknown)


def test_domingos_decomposition_by_hand():
    # 3 models, 4 examples, 3 classes.
    labels = np.array([[0, 1, 2, 1], [0, 1, 0, 2], [0, 2, 0, 2]])
    target = np.array([0, 1, 0, 1])
    parts = _domingos(labels, target)
    # Main predictions: 0, 1, 0, 2 -> biased only on the last example.
    assert parts["bias"] == pytest.approx(1 / 4)
    # Variance per example: 0, 1/3, 1/3, 1/3.
    assert parts["variance"] == pytest.approx(1 / 4)
    assert parts["unbiased_variance"] == pytest.approx((1 / 3 + 1 / 3) / 4)
    assert parts["biased_variance"] == pytest.approx(1 / 12)
    # On the biased example the one model that differs from the main
    # prediction hits the target (c = 1): variance there removes loss.
    assert parts["net_variance"] == pytest.approx(1 / 6 - 1 / 12)
    # Expected loss = bias + net variance, exactly.
    assert parts["expected_loss"] == pytest.approx(4 / 12)
    assert parts["bias"] + parts["net_variance"] == pytest.approx(
        parts["expected_loss"]
    )


def test_classification_end_to_end():
    x, y = toolkit.classification_data(160, 8, 3)

    def build():
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(3, activation="softmax")]
        )
        model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
        return model

    result = bias_variance(
        build,
        x[:80],
        y[:80],
        x[80:],
        y[80:],
        n_models=3,
        fit_kwargs={"epochs": 2, "batch_size": 16, "verbose": 0},
    )
    assert result.task == "classification"
    assert result.noise == 0.0
    assert 0 <= result.bias <= 1 and 0 <= result.variance <= 1
    assert result.bias + result.net_variance == pytest.approx(result.expected_loss)
    assert result.predictions.shape == (3, 80)
    assert "Reading" in str(result)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_models": 1}, "n_models"),
        ({"task": "ranking"}, "task"),
        ({"noise": -1.0}, "noise"),
        ({"noise": 0.1, "true_fn": np.sin}, "either"),
    ],
)
def test_bad_arguments(kwargs, message):
    x, t, x_test, t_test = _quadratic_problem()
    with pytest.raises(ValueError, match=message):
        bias_variance(_linear, x, t, x_test, t_test, **kwargs)


def test_mismatched_data():
    x, t, x_test, t_test = _quadratic_problem()
    with pytest.raises(ValueError, match="same number"):
        bias_variance(_linear, x, t[:10], x_test, t_test)
