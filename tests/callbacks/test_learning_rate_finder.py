import math

import keras
import numpy as np
import pytest

from kerasreg.callbacks import (
    LearningRateFinder,
    find_learning_rate,
    suggest_learning_rate,
)
from tests import toolkit
from tests.toolkit import mirrored_strategy


def _model(optimizer=None):
    model = toolkit.tiny_model(compile=False)
    model.compile(
        optimizer or keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy"
    )
    return model


def _opt_state(model):
    return [v.numpy().copy() for v in model.optimizer.variables]


def test_sweep_restores_weights_and_optimizer_exactly():
    x, y = toolkit.classification_data(256, 8, 3)
    model = _model()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # non-trivial Adam state
    weights, opt = model.get_weights(), _opt_state(model)
    result = find_learning_rate(model, (x, y), min_lr=1e-5, max_lr=10.0, steps=40)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_opt_state(model), opt):
        np.testing.assert_array_equal(a, b)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    # The sweep is exponential and the smoothed losses bias-corrected.
    lrs = np.array(result.lrs)
    assert lrs[0] == pytest.approx(1e-5)
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, (10.0 / 1e-5) ** (1 / 39), rtol=1e-6)
    assert result.losses[0] == pytest.approx(result.raw_losses[0])
    assert result.stop_reason in ("diverged", "steps", "non_finite")
    assert result.suggestion is not None and 1e-5 <= result.suggestion <= 10.0
    assert result.rule in ("steepest", "minimum/10")


def test_training_after_the_finder_is_unchanged():
    x, y = toolkit.classification_data(128, 8, 3)
    keras.utils.set_random_seed(3)
    a = _model()
    keras.utils.set_random_seed(3)
    b = _model()
    b.set_weights(a.get_weights())
    find_learning_rate(b, (x, y), min_lr=1e-4, max_lr=1.0, steps=10)
    for m in (a, b):
        m.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)


def test_per_batch_losses_are_recovered():
    # A batch-wise scripted mean: the finder undoes Keras's running mean.
    finder = LearningRateFinder(min_lr=1e-3, max_lr=1.0, steps=10, beta=0.0)
    model = _model()
    toolkit.run_scripted(
        finder,
        [{"loss": 2.0}],
        model=model,
        batch_logs=[[{"loss": 1.0}, {"loss": 1.5}, {"loss": 2.0}]],  # 1, 2, 3
    )
    np.testing.assert_allclose(finder.result.raw_losses, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(finder.result.losses, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "batch_losses, reason, n",
    [
        ([1.0, 0.9, 0.8, 0.7], "data", 4),
        ([1.0, 0.5, 0.4, 2.5, 9.0], "diverged", 4),
        ([1.0, 0.9, math.nan, 0.5], "non_finite", 3),
    ],
)
def test_scripted_stops(batch_losses, reason, n):
    finder = LearningRateFinder(
        min_lr=1e-3, max_lr=1.0, steps=50, beta=0.0, diverge=4.0
    )
    # One batch per epoch: batch logs are the batch losses themselves.
    stopped = toolkit.run_scripted(
        finder,
        [{"loss": v} for v in batch_losses],
        model=_model(),
        batch_logs=[[{"loss": v}] for v in batch_losses],
    )
    assert finder.result.stop_reason == reason
    assert len(finder.result.lrs) == n
    assert (stopped is not None) == (reason != "data")


def test_suggestion_rules():
    lrs = np.logspace(-5, 0, 50)
    loss = 2.0 - np.tanh((np.log10(lrs) + 3) * 2)  # falls fastest at 1e-3
    loss[40:] += np.linspace(0, 10, 10)
    s, rule, rules = suggest_learning_rate(lrs, loss)
    assert rule == "steepest" and s == pytest.approx(1e-3, rel=0.3)
    assert rules["minimum/10"] == pytest.approx(lrs[np.argmin(loss)] / 10)
    assert suggest_learning_rate([1e-3], [1.0])[0] is None


def test_plot_saves_a_file(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = toolkit.classification_data(128, 8, 3)
    result = find_learning_rate(_model(), (x, y), min_lr=1e-4, max_lr=1.0, steps=12)
    path = tmp_path / "lr.png"
    fig = result.plot(path)
    assert path.exists() and path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == ["lr.png"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_dataset_input():
    import tensorflow as tf

    x, y = toolkit.classification_data(64, 8, 3)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    result = find_learning_rate(_model(), ds, min_lr=1e-4, max_lr=1.0, steps=10)
    assert len(result.lrs) == 10


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"min_lr": 0.0}, "min_lr"),
        ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr"),
        ({"steps": 1}, "steps"),
        ({"beta": 1.0}, "beta"),
        ({"diverge": 1.0}, "diverge"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        LearningRateFinder(**kwargs)


def test_deepcopy_and_reuse():
    cb, _ = toolkit.assert_deepcopy_and_reuse(
        lambda: LearningRateFinder(min_lr=1e-4, max_lr=1.0, steps=5),
        make_model=_model,
    )
    assert len(cb.result.lrs) == 5


@toolkit.requires_tensorflow
def test_mirrored_strategy():
    x, y = toolkit.classification_data(128, 8, 3)
    strategy = mirrored_strategy()
    with strategy.scope():
        model = _model()
    weights = model.get_weights()
    result = find_learning_rate(model, (x, y), min_lr=1e-4, max_lr=1.0, steps=8)
    assert len(result.lrs) == 8
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def _unbuilt(kind):
    """An unbuilt model and a built twin with the same initial weights."""
    keras.utils.set_random_seed(5)
    if kind == "sequential_add":
        model = keras.Sequential()
        model.add(keras.layers.Dense(16, activation="relu"))
        model.add(keras.layers.Dense(3, activation="softmax"))
    elif kind == "subclassed":
        model = toolkit.subclassed_classifier()
    else:
        model = toolkit.tiny_model(compile=False)
    keras.utils.set_random_seed(5)
    twin = toolkit.tiny_model(compile=False)
    for m in (model, twin):
        m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model, twin


@pytest.mark.parametrize("kind", ["sequential_add", "subclassed", "functional"])
def test_unbuilt_model_is_left_as_freshly_built(kind):
    # Unbuilt models used to fail on TensorFlow ("Unknown variable ... This
    # optimizer can only be called for the variables it was originally built
    # with"). Now the sweep runs, and afterwards the model holds its freshly
    # initialised weights and an untouched optimizer, as a built twin would.
    x, y = toolkit.classification_data(256, 8, 3)
    model, twin = _unbuilt(kind)
    initial = twin.get_weights()
    results = []
    for m in (model, twin):
        keras.utils.set_random_seed(0)  # the same shuffling
        results.append(
            find_learning_rate(m, (x, y), min_lr=1e-4, max_lr=10.0, steps=20)
        )
    assert len(results[0].lrs) == len(results[1].lrs) > 2
    np.testing.assert_allclose(results[0].losses, results[1].losses, rtol=1e-4)
    for a, b in zip(model.get_weights(), initial):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations.numpy()) == 0
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert len(model.optimizer.variables) == len(twin.optimizer.variables)
    for a in _opt_state(model)[2:]:  # the moments are zero again
        assert not np.any(a)
    # Training afterwards is training from the initial weights.
    for m in (model, twin):
        m.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
