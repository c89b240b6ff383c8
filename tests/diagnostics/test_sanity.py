"""Tests of kerasreg.diagnostics.sanity_check."""

import math

import keras
import numpy as np
import pytest

from kerasreg.diagnostics import SanityReport, sanity_check
from tests import toolkit

SCCE = "sparse_categorical_crossentropy"


def _data(n=64, classes=3):
    x, y = toolkit.classification_data(n, 8, classes)
    x = (x - x.mean(0)) / x.std(0)
    return x.astype("float32"), y


def _small_init(seed=0):
    return keras.initializers.RandomNormal(stddev=0.01, seed=seed)


def _net(classes=3, *, head="softmax", extra=None, regularizer=None):
    layers = [
        keras.Input((8,)),
        keras.layers.Dense(32, activation="relu", kernel_regularizer=regularizer),
        keras.layers.Dense(
            classes,
            activation=head,
            kernel_initializer=_small_init(),
            kernel_regularizer=regularizer,
        ),
    ]
    if extra is not None:
        layers.append(keras.layers.Activation(extra))
    return keras.Sequential(layers)


def _compiled(loss=SCCE, **kwargs):
    model = _net(**kwargs)
    model.compile(keras.optimizers.Adam(1e-2), loss)
    return model


def test_correct_model_passes():
    x, y = _data()
    report = sanity_check(
        _compiled(), x, y, tiny=20, epochs=150, learning_rates=[1e-6, 1e-1, 1e6]
    )
    assert isinstance(report, SanityReport)
    assert report.passed, report
    assert report.names() == [
        "initial loss",
        "regularization",
        "lr bracket",
        "tiny overfit",
    ]
    initial = report["initial loss"].numbers
    assert initial["reference"] == pytest.approx(math.log(3))
    assert initial["loss"] == pytest.approx(math.log(3), rel=0.02)
    reg = report["regularization"].numbers
    assert reg["regularized_loss"] > reg["loss"] and reg["attached"] == 2
    tiny = report["tiny overfit"].numbers
    assert tiny["accuracy"] == 1.0 and tiny["loss"] <= tiny["goal_loss"]
    assert "model's optimizer" in tiny["optimizer"]
    bracket = report["lr bracket"].numbers
    verdicts = {r["lr"]: r["verdict"] for r in bracket["runs"]}
    assert verdicts == {1e-6: "too low", 1e-1: "ok", 1e6: "too high"}
    assert bracket["bracket"] == (1e-1, 1e-1)
    text = str(report)
    assert "PASSED" in text and "tiny overfit" in text and "ln(3)" in text


def test_user_model_untouched():
    x, y = _data()
    regularizer = keras.regularizers.L2(1e-3)
    model = _compiled(regularizer=regularizer)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # Optimizer has state.
    weights = [w.copy() for w in model.get_weights()]
    opt_vars = [np.array(v) for v in model.optimizer.variables]
    configs = [layer.get_config() for layer in model.layers]
    trainable = [layer.trainable for layer in model.layers]
    loss, optimizer = model.loss, model.optimizer
    losses = [float(v) for v in model.losses]

    sanity_check(model, x, y, tiny=10, epochs=30, learning_rates=[1e-2, 1e3])

    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(opt_vars) == len(model.optimizer.variables)
    for a, b in zip(opt_vars, model.optimizer.variables):
        np.testing.assert_array_equal(a, np.array(b))
    assert [layer.get_config() for layer in model.layers] == configs
    assert [layer.trainable for layer in model.layers] == trainable
    assert model.loss is loss and model.optimizer is optimizer
    assert model.layers[0].kernel_regularizer is regularizer
    assert [float(v) for v in model.losses] == losses


def test_logits_to_probability_loss_fails_initial_loss():
    x, y = _data()
    model = _net(head=None)
    model.layers[-1].kernel.assign(
        np.random.default_rng(0).normal(0, 1.0, (32, 3)).astype("float32")
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=False))
    report = sanity_check(model, x, y, tiny=10, epochs=20, learning_rates=None)
    check = report["initial loss"]
    assert check.status == "fail" and not report.passed
    assert "logits" in check.hint and "from_logits" in check.hint
    assert "Hints:" in str(report)


def test_double_softmax_passes_initial_loss_but_fails_tiny_overfit():
    x, y = _data()
    model = _compiled(extra="softmax")  # softmax applied twice
    report = sanity_check(model, x, y, tiny=10, epochs=150, learning_rates=None)
    initial = report["initial loss"]
    assert initial.status == "pass"
    assert initial.numbers["loss"] == pytest.approx(math.log(3), rel=0.01)
    tiny = report["tiny overfit"]
    assert tiny.status == "fail" and not report.passed
    # Softmax of probabilities tops out at e / (e + 2): the loss cannot fall
    # below -ln(e / (e + 2)) = 0.55 even with every example right.
    assert tiny.numbers["loss"] > 0.5
    assert tiny.numbers["accuracy"] == 1.0
    assert "twice" in tiny.hint
    assert len(tiny.numbers["attempts"]) >= 2  # Other optimizers were tried.


def test_frozen_model_fails_tiny_overfit():
    x, y = _data()
    model = _compiled()
    for layer in model.layers:
        layer.trainable = False
    report = sanity_check(model, x, y, tiny=10, epochs=40, learning_rates=None)
    tiny = report["tiny overfit"]
    assert tiny.status == "fail"
    assert "no trainable weights" in tiny.hint


class _PlainDense(keras.layers.Layer):
    """A layer without regularizer arguments."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=_small_init()
        )

    def call(self, x):
        return keras.ops.softmax(keras.ops.matmul(x, self.w))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_regularization_check_fails_without_any_penalty():
    x, y = _data()
    model = keras.Sequential([keras.Input((8,)), _PlainDense(3)])
    model.compile("adam", SCCE)
    report = sanity_check(model, x, y, tiny=5, epochs=1, learning_rates=None)
    reg = report["regularization"]
    assert reg.status == "fail"
    assert reg.numbers["increase"] == pytest.approx(0.0, abs=1e-6)
    assert "regularizer" in reg.hint


def test_existing_regularizers_are_scaled():
    x, y = _data()
    model = _compiled(regularizer=keras.regularizers.L2(1e-4))
    report = sanity_check(model, x, y, tiny=5, epochs=1, learning_rates=None)
    reg = report["regularization"].numbers
    assert reg["scaled"] == 2 and reg["attached"] == 0
    assert reg["increase"] > 0


def test_binary_and_regression_references():
    x, y = _data(classes=2)
    model = _net(classes=1, head="sigmoid")
    model.compile("adam", "binary_crossentropy")
    report = sanity_check(model, x, y, tiny=10, epochs=1, learning_rates=None)
    assert report["initial loss"].numbers["reference"] == pytest.approx(math.log(2))
    assert report["initial loss"].status == "pass"

    target = (x[:, 0] * 2 + 1).astype("float32")
    reg = _net(classes=1, head=None)
    reg.compile(keras.optimizers.Adam(1e-2), "mse")
    report = sanity_check(reg, x, target, tiny=10, epochs=300, learning_rates=None)
    initial = report["initial loss"].numbers
    assert initial["reference"] == pytest.approx(float(np.mean(target**2)), rel=1e-5)
    assert report["initial loss"].status == "pass"
    assert report["tiny overfit"].status == "pass"
    assert report["tiny overfit"].numbers["accuracy"] is None


def test_one_hot_targets():
    x, y = _data()
    model = _compiled(loss="categorical_crossentropy")
    report = sanity_check(model, x, np.eye(3)[y], tiny=5, epochs=1, learning_rates=None)
    assert report["initial loss"].status == "pass"
    assert report["initial loss"].numbers["reference"] == pytest.approx(math.log(3))
    with pytest.raises(ValueError, match="one-hot"):
        sanity_check(model, x, np.eye(4)[y], tiny=5, epochs=1, learning_rates=None)


@pytest.mark.parametrize(
    "kwargs, labels, message",
    [
        ({}, "out_of_range", "Labels out of range"),
        ({"tiny": 65}, None, "tiny"),
        ({"tiny": 0}, None, "tiny"),
        ({"epochs": 0}, None, "epochs"),
        ({"learning_rates": [-1.0]}, None, "learning_rates"),
        ({"num_classes": 5}, None, "num_classes=5"),
    ],
)
def test_bad_input(kwargs, labels, message):
    x, y = _data()
    if labels == "out_of_range":
        y = y.copy()
        y[0] = 3
    with pytest.raises(ValueError, match=message):
        sanity_check(_compiled(), x, y, **kwargs)


def test_uncompiled_model_needs_a_loss():
    x, y = _data()
    with pytest.raises(ValueError, match="not compiled"):
        sanity_check(_net(), x, y)
    with pytest.raises(ValueError, match="same number"):
        sanity_check(_compiled(), x, y[:10])
    report = sanity_check(
        _net(), x, y, loss=SCCE, tiny=5, epochs=60, learning_rates=None
    )
    # No optimizer of its own: Adam is the first one tried.
    assert "Adam" in report["tiny overfit"].numbers["optimizer"]


def test_subsets_are_drawn_at_random_from_sorted_data():
    x, y = _data()
    order = np.argsort(y, kind="stable")  # Data grouped by class.
    report = sanity_check(
        _compiled(), x[order], y[order], tiny=10, epochs=1, learning_rates=None
    )
    assert not report.notes
    single = np.zeros_like(y)
    report = sanity_check(
        _compiled(), x, single, tiny=10, epochs=1, learning_rates=None
    )
    assert any("same label" in note for note in report.notes)
    assert "Notes:" in str(report)


def _tiny_resnet(classes=4, width=8):
    """A BatchNorm ResNet (two residual blocks), small enough for CI."""
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for strides in (1, 2):
        y = keras.layers.Conv2D(width, 3, strides, padding="same", use_bias=False)(x)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
        y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization()(y)
        if strides != 1:
            x = keras.layers.Conv2D(width, 1, strides, use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(
        classes, activation="softmax", kernel_initializer=_small_init()
    )(x)
    return keras.Model(inputs, outputs)


def test_batch_norm_resnet_passes_the_tiny_overfit():
    """BatchNorm's lagging moving statistics must not fail a model that fits."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 12, 12, 3)).astype("float32")
    y = rng.integers(0, 4, size=96)
    model = _tiny_resnet()
    model.compile(keras.optimizers.Adam(1e-2), SCCE)
    report = sanity_check(
        model, x, y, tiny=12, epochs=150, learning_rates=[1e-4, 1e-2, 1e0, 1e4]
    )
    tiny = report["tiny overfit"]
    assert tiny.status == "pass", report
    assert tiny.numbers["accuracy"] == 1.0
    assert "BatchNorm statistics re-estimated on the 12 examples" in tiny.summary
    attempt = tiny.numbers["attempts"][0]
    assert (
        attempt["batch_norm_refreshed"] and "model's optimizer" in attempt["optimizer"]
    )
    # Without re-estimation the same weights look much worse in inference
    # mode: that is what used to fail the check.
    assert report["lr bracket"].status == "pass", report
    verdicts = {r["lr"]: r["verdict"] for r in report["lr bracket"].numbers["runs"]}
    assert verdicts[1e4] == "too high" and verdicts[1e-2] == "ok"


class _InferenceOnlyZero(keras.layers.Layer):
    """Passes its input through in training, zeros at inference."""

    def call(self, x, training=False):
        return x if training else keras.ops.zeros_like(x)


def test_training_mode_fit_but_inference_fails_names_the_cause():
    x, y = _data()
    inputs = keras.Input((8,))
    h = keras.layers.Dense(32, activation="relu")(inputs)
    h = _InferenceOnlyZero()(h)
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-2), SCCE)
    report = sanity_check(model, x, y, tiny=6, epochs=150, learning_rates=None)
    tiny = report["tiny overfit"]
    assert tiny.status == "fail"
    assert "in training mode the model fit the examples" in tiny.hint
    assert "labels" not in tiny.hint


def test_lr_sweep_skips_rates_beyond_a_verdict():
    x, y = _data()
    rates = [10.0**k for k in range(-6, 7)]
    report = sanity_check(_compiled(), x, y, tiny=6, epochs=30, learning_rates=rates)
    runs = report["lr bracket"].numbers["runs"]
    assert [r["lr"] for r in runs] == rates  # every rate has its verdict, in order
    not_run = [r["lr"] for r in runs if r["final_loss"] is None]
    assert not_run, "the sweep should stop at a too-low and a too-high rate"
    for r in runs:
        if r["final_loss"] is None:
            side = "too low" if r["lr"] < 1.0 else "too high"
            assert r["verdict"] == side
    low = report["lr bracket"].numbers["too_low"]
    high = report["lr bracket"].numbers["too_high"]
    assert low and high and max(low) < min(high)
