"""Tests for kerasreg.regularizers (ElasticNet, add_weight_regularization)."""

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.layers import LowRankDense
from kerasreg.regularizers import ElasticNet, add_weight_regularization
from tests import toolkit
from tests.toolkit import to_numpy as _np

# ---------------------------------------------------------------------------
# ElasticNet
# ---------------------------------------------------------------------------


def test_elastic_net_value_is_the_lecture_form():
    w = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    reg = ElasticNet(strength=0.01, beta=3.0)
    expected = 0.01 * np.sum(3.0 * w**2 + np.abs(w))
    assert float(reg(w)) == pytest.approx(expected, rel=1e-5)
    # ... which is Keras's L1L2 with l1 = strength, l2 = strength * beta.
    l1l2 = keras.regularizers.L1L2(l1=0.01, l2=0.03)
    assert float(reg(w)) == pytest.approx(float(l1l2(w)), rel=1e-5)


def test_elastic_net_config_and_serialization():
    reg = ElasticNet(0.2, beta=0.5)
    assert reg.get_config() == {"strength": 0.2, "beta": 0.5}
    clone = keras.regularizers.deserialize(keras.regularizers.serialize(reg))
    assert isinstance(clone, ElasticNet) and clone.get_config() == reg.get_config()
    assert kerasreg.regularizers.ElasticNet is ElasticNet


def test_elastic_net_in_a_saved_layer(tmp_path):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_regularizer=ElasticNet(0.1))]
    )
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[0].kernel_regularizer, ElasticNet)
    assert float(loaded.losses[0]) == pytest.approx(float(model.losses[0]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strength": -1.0}, "strength=-1.0"),
        ({"strength": float("nan")}, "strength=nan"),
        ({"beta": -0.1}, "beta=-0.1"),
        ({"beta": "x"}, "beta='x'"),
    ],
)
def test_elastic_net_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ElasticNet(**kwargs)


# ---------------------------------------------------------------------------
# add_weight_regularization
# ---------------------------------------------------------------------------


def _model():
    inputs = keras.Input((8,))
    h = keras.layers.Dense(6, activation="relu", name="d1")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = LowRankDense(5, rank=2, name="low")(h)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs)


def test_setting_the_attribute_on_a_built_layer_is_not_enough():
    # The Keras 3 behaviour add_weight_regularization exists for.
    model = _model()
    model.get_layer("d1").kernel_regularizer = keras.regularizers.L2(1.0)
    assert model.losses == []


def test_kernels_get_the_regularizer_and_losses_are_exact():
    model = _model()
    reg = ElasticNet(0.01, beta=2.0)
    assert add_weight_regularization(model, reg) is model
    # d1/kernel, low/u, low/v, out/kernel: no bias, no BN weight.
    assert len(model.losses) == 4
    kernels = [
        model.get_layer("d1").kernel,
        model.get_layer("low").u,
        model.get_layer("low").v,
        model.get_layer("out").kernel,
    ]
    expected = sum(float(reg(_np(k))) for k in kernels)
    assert sum(float(v) for v in model.losses) == pytest.approx(expected, rel=1e-5)


def test_include_biases_and_normalization():
    model = add_weight_regularization(
        _model(), "l2", include_biases=True, include_normalization=True
    )
    # 4 kernels + 3 biases + BN gamma and beta.
    assert len(model.losses) == 9
    assert model.get_layer("bn").gamma_regularizer is not None


@pytest.mark.parametrize("already_fit", [False, True])
def test_fit_loss_rises_by_the_penalty(already_fit):
    x, y = toolkit.classification_data(32, 8, 3)
    model = _model()
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    if already_fit:  # traced train/test functions must be refreshed
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    base_fit = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history["loss"][0]
    # (after fit: the BatchNormalization moving statistics moved; lr=0 keeps
    # the weights, so the two fits see the same data loss)
    base = model.evaluate(x, y, batch_size=32, verbose=0)
    add_weight_regularization(model, keras.regularizers.L2(0.5))
    penalty = sum(float(v) for v in model.losses)
    assert penalty > 0
    regularized = model.evaluate(x, y, batch_size=32, verbose=0)
    fit_loss = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history["loss"][0]
    assert regularized == pytest.approx(base + penalty, rel=1e-4)
    assert fit_loss == pytest.approx(base_fit + penalty, rel=1e-4)


def test_regularization_changes_training():
    x, y = toolkit.classification_data(64, 8, 3)
    keras.utils.set_random_seed(0)
    plain = _model()
    keras.utils.set_random_seed(0)
    regularized = add_weight_regularization(_model(), keras.regularizers.L2(0.1))
    norms = []
    for model in (plain, regularized):
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=3, verbose=0)
        norms.append(np.linalg.norm(_np(model.get_layer("d1").kernel)))
    assert norms[1] < norms[0]  # weight decay shrank the kernel


def test_save_and_reload_keeps_regularization(tmp_path):
    model = add_weight_regularization(_model(), ElasticNet(0.01))
    model.save(tmp_path / "reg.keras")
    loaded = keras.saving.load_model(tmp_path / "reg.keras")
    assert len(loaded.losses) == 4
    assert sum(float(v) for v in loaded.losses) == pytest.approx(
        sum(float(v) for v in model.losses), rel=1e-6
    )


def test_unbuilt_model_and_conv_and_nested():
    model = keras.Sequential(
        [
            keras.layers.Conv2D(2, 3),
            keras.layers.DepthwiseConv2D(3),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    add_weight_regularization(model, keras.regularizers.L2(0.1))
    model.build((None, 8, 8, 1))
    assert len(model.losses) == 3  # conv kernel, depthwise kernel, dense kernel
    inputs = keras.Input((8, 8, 1))
    outer = keras.Model(
        inputs, keras.layers.Dense(1)(keras.layers.Flatten()(model(inputs)))
    )
    fresh = add_weight_regularization(outer, keras.regularizers.L1(0.1))
    assert len(fresh.losses) == 4


def test_frozen_weights_are_left_alone():
    model = _model()
    model.get_layer("d1").trainable = False
    add_weight_regularization(model, "l2")
    assert len(model.losses) == 3


def test_bad_regularizer():
    with pytest.raises(ValueError):
        add_weight_regularization(_model(), "not-a-regularizer")


def test_docstring_examples():
    from kerasreg import regularizers
    from tests.toolkit import assert_docstring_examples

    assert_docstring_examples(regularizers)


def test_custom_layer_with_nested_sublayers():
    @keras.saving.register_keras_serializable(package="kerasreg_tests")
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(4)
            self.norm = keras.layers.LayerNormalization()

        def call(self, x):
            return self.norm(self.dense(x))

    model = keras.Sequential([keras.Input((3,)), Block()])
    add_weight_regularization(model, "l2")
    assert len(model.losses) == 1  # the dense kernel only
    add_weight_regularization(
        model, "l2", include_biases=True, include_normalization=True
    )
    assert len(model.losses) == 4
