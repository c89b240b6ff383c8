import copy
import warnings

import keras
import numpy as np
import pytest

from kerasreg.callbacks import EMAWeights, ema_decay
from tests import toolkit
from tests.toolkit import mirrored_strategy


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")
    return x, y


def _model(optimizer=None):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer or keras.optimizers.SGD(0.1), "mse")
    return model


def _float_vars(model, non_trainable=True):
    vs = list(model.trainable_variables)
    if non_trainable:
        vs += [v for v in model.non_trainable_variables if "float" in str(v.dtype)]
    return vs


class _Recorder(keras.callbacks.Callback):
    """Records the training weights after every step (test only)."""

    def __init__(self, non_trainable=True):
        super().__init__()
        self.snaps = []
        self.non_trainable = non_trainable

    def on_train_begin(self, logs=None):
        self.start = [v.numpy().copy() for v in _float_vars(self.model)]

    def on_train_batch_end(self, batch, logs=None):
        self.snaps.append([v.numpy().copy() for v in _float_vars(self.model)])


def _numpy_ema(start, snaps, decay, warmup=True, power=2 / 3, every=1, start_step=0):
    ema = [w.copy() for w in start]
    n = 0
    for t, weights in enumerate(snaps):
        if t < start_step:
            ema = [w.copy() for w in weights]
            continue
        if (t - start_step) % every:
            continue
        d = min(decay, 1 - (1 + n) ** -power) if warmup else decay
        ema = [d * e + (1 - d) * w for e, w in zip(ema, weights)]
        n += 1
    return ema


@pytest.mark.parametrize(
    "kwargs",
    [
        {"decay": 0.9},
        {"decay": 0.8, "warmup": False},
        {"decay": 0.95, "update_every": 3},
        {"decay": 0.9, "start_step": 5, "warmup_power": 0.75},
    ],
)
def test_matches_numpy_reference(kwargs):
    x, y = _data()
    model = _model()
    rec = _Recorder()
    ema = EMAWeights(**kwargs)
    model.fit(
        x, y, batch_size=8, epochs=3, verbose=0, shuffle=False, callbacks=[rec, ema]
    )
    expected = _numpy_ema(
        rec.start,
        rec.snaps,
        kwargs["decay"],
        kwargs.get("warmup", True),
        kwargs.get("warmup_power", 2 / 3),
        kwargs.get("update_every", 1),
        kwargs.get("start_step", 0),
    )
    for got, want in zip(_float_vars(model), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    # The training weights are the last step's weights.
    by_id = {id(w): a for w, a in zip(model.weights, ema.training_weights)}
    for v, want in zip(_float_vars(model), rec.snaps[-1]):
        np.testing.assert_allclose(by_id[id(v)], want, rtol=1e-6)


def test_batch_norm_statistics_can_be_left_alone():
    x, y = _data()
    model = _model()
    rec = _Recorder()
    ema = EMAWeights(decay=0.9, average_non_trainable=False)
    model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[rec, ema]
    )
    n_trainable = len(model.trainable_variables)
    # Moving statistics are the training model's, not averaged.
    for v, want in zip(_float_vars(model)[n_trainable:], rec.snaps[-1][n_trainable:]):
        np.testing.assert_allclose(v.numpy(), want, rtol=1e-6)
    assert len(ema.averaged_variables) == n_trainable


def test_decay_schedule():
    d = keras.ops.convert_to_numpy(ema_decay(np.arange(4), 0.999))
    np.testing.assert_allclose(d, 1 - (1 + np.arange(4)) ** (-2 / 3), rtol=1e-6)
    assert d[0] == 0.0
    late = keras.ops.convert_to_numpy(ema_decay(10**9, 0.999))
    np.testing.assert_allclose(late, 0.999)
    flat = keras.ops.convert_to_numpy(ema_decay(0, 0.9, warmup=False))
    np.testing.assert_allclose(flat, 0.9)


class _Probe(keras.callbacks.Callback):
    """Records the first kernel at each hook (placed after EMAWeights)."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def _rec(self, name):
        self.seen.setdefault(name, []).append(
            self.model.trainable_variables[0].numpy().copy()
        )

    def on_test_begin(self, logs=None):
        self._rec("test")

    def on_predict_begin(self, logs=None):
        self._rec("predict")

    def on_epoch_end(self, epoch, logs=None):
        self._rec("epoch_end")

    def on_epoch_begin(self, epoch, logs=None):
        self._rec("epoch_begin")


@pytest.mark.parametrize("swap_for_eval", [True, False])
@pytest.mark.parametrize("ema_at_end", [True, False])
def test_weights_after_fit_evaluate_predict(swap_for_eval, ema_at_end):
    x, y = _data()
    model = _model()
    ema = EMAWeights(decay=0.9, swap_for_eval=swap_for_eval, ema_at_end=ema_at_end)
    probe = _Probe()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        validation_data=(x, y),
        callbacks=[ema, probe],
    )
    k = model.trainable_variables[0]
    ema_k = ema.ema_weights[0]
    train_k = ema.training_weights[0]
    assert not np.allclose(ema_k, train_k)
    after_fit = ema_k if ema_at_end else train_k
    np.testing.assert_allclose(k.numpy(), after_fit)
    # During fit: validation and end-of-epoch hooks saw the EMA weights
    # iff swap_for_eval, the next epoch trained from the training weights.
    last_val, last_end = probe.seen["test"][-1], probe.seen["epoch_end"][-1]
    np.testing.assert_allclose(last_val, last_end)
    if swap_for_eval:
        np.testing.assert_allclose(last_end, ema_k)
    else:
        np.testing.assert_allclose(last_end, train_k)
    # evaluate / predict with the callback: EMA weights inside when
    # swap_for_eval, and the weights of before afterwards, every time.
    for run in ("evaluate", "predict"):
        probe.seen.clear()
        if run == "evaluate":
            model.evaluate(x, y, verbose=0, callbacks=[ema, probe])
            inside = probe.seen["test"][0]
        else:
            model.predict(x, verbose=0, callbacks=[ema, probe])
            inside = probe.seen["predict"][0]
        np.testing.assert_allclose(inside, ema_k if swap_for_eval else after_fit)
        np.testing.assert_allclose(k.numpy(), after_fit)


def test_predict_uses_ema_weights_and_restores():
    x, y = _data()
    model = _model()
    ema = EMAWeights(decay=0.9, ema_at_end=False)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ema])
    raw = model.predict(x, verbose=0)
    with_ema = model.predict(x, verbose=0, callbacks=[ema])
    again = model.predict(x, verbose=0)
    np.testing.assert_allclose(raw, again, rtol=1e-6)
    assert not np.allclose(raw, with_ema)
    # EMA predictions equal a model holding the EMA weights.
    clone = _model()
    clone.set_weights(ema.ema_weights)
    np.testing.assert_allclose(clone.predict(x, verbose=0), with_ema, rtol=1e-5)


def test_model_checkpoint_saves_ema_weights(tmp_path):
    x, y = _data()
    model = _model()
    ema = EMAWeights(decay=0.9, ema_at_end=False)
    path = tmp_path / "ckpt.weights.h5"
    ckpt = keras.callbacks.ModelCheckpoint(str(path), save_weights_only=True)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ema, ckpt])
    loaded = _model()
    loaded.load_weights(str(path))
    np.testing.assert_allclose(
        loaded.trainable_variables[0].numpy(), ema.ema_weights[0], rtol=1e-6
    )


def test_deepcopy_and_reuse_does_not_grow_optimizer():
    def make():
        return EMAWeights(decay=0.9)

    toolkit.assert_deepcopy_and_reuse(make)
    x, y = _data()
    model = _model()
    ema = EMAWeights(decay=0.9)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[ema])
    n = len(model.optimizer.variables)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[ema])
    assert len(model.optimizer.variables) == n
    clone = copy.deepcopy(ema)
    assert clone.get_config() == ema.get_config()


def test_train_step_restored_after_fit():
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[EMAWeights(0.9)])
    assert "train_step" not in model.__dict__
    before = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # plain fit still works
    assert not all(np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_any_optimizer():
    x, y = _data()
    for opt in (keras.optimizers.Adam(1e-2),):
        model = _model(opt)
        ema = EMAWeights(decay=0.9)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[ema])
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"decay": 0.0}, "decay"),
        ({"decay": 1.0}, "decay"),
        ({"decay": 1.5}, "decay"),
        ({"update_every": 0}, "update_every"),
        ({"start_step": -1}, "start_step"),
        ({"warmup_power": 0.0}, "warmup_power"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        EMAWeights(**kwargs)


def test_jit_compile():
    x, y = _data()
    model = _model()
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
    ema = EMAWeights(decay=0.9, ema_at_end=False)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[ema])
    assert not np.allclose(ema.ema_weights[0], ema.training_weights[0])


@toolkit.requires_tensorflow
def test_mirrored_strategy():
    x, y = _data()
    strategy = mirrored_strategy()
    with strategy.scope():
        model = _model()
    rec = _Recorder()
    ema = EMAWeights(decay=0.9)
    model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[rec, ema]
    )
    expected = _numpy_ema(rec.start, rec.snaps, 0.9)
    for got, want in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


def test_early_stopping_after_ema_keeps_the_best_averaged_weights():
    # [EMAWeights, ..., SmoothedEarlyStopping]: early stopping sees (and
    # restores) the EMA weights of its best epoch, not the final EMA.
    from kerasreg.callbacks import SmoothedEarlyStopping

    class ScriptAndRecord(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [1.0, 0.2, 2.0, 3.0][epoch]
            self.weights.append([w.numpy().copy() for w in self.model.weights])

    x, y = _data()
    model = _model()
    ema = EMAWeights(decay=0.9)
    probe = ScriptAndRecord()
    stop = SmoothedEarlyStopping(
        monitor="val_loss", smoothing="ema", alpha=1.0, patience=10
    )
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=4,
        verbose=0,
        validation_data=(x, y),
        callbacks=[ema, probe, stop],
    )
    assert stop.best_epoch == 1
    for got, want in zip(model.weights, probe.weights[1]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # What the probe saw at the end of each epoch were the EMA weights.
    for got, want in zip(probe.weights[-1], ema.ema_weights):
        np.testing.assert_allclose(got, want, rtol=1e-6)


# -- models that are not built before fit ------------------------------------


class SubclassedNet(keras.Model):
    """A subclassed model: no variables until it is called."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(3)
        self.norm = keras.layers.BatchNormalization()
        self.out = keras.layers.Dense(2)

    def call(self, x, training=False):
        return self.out(self.norm(self.hidden(x), training=training))


def _layers():
    return [
        keras.layers.Dense(3),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(2),
    ]


def _unbuilt(kind):
    """An unbuilt model and a built twin with the same initial weights."""
    keras.utils.set_random_seed(7)
    if kind == "sequential_add":
        model = keras.Sequential()
        for layer in _layers():
            model.add(layer)
    elif kind == "subclassed":
        model = SubclassedNet()
    else:  # functional: always built, the reference case
        inputs = keras.Input((4,))
        h = inputs
        for layer in _layers():
            h = layer(h)
        model = keras.Model(inputs, h)
    keras.utils.set_random_seed(7)
    twin = _model()
    for m in (model, twin):
        m.compile(keras.optimizers.Adam(1e-2), "mse")
    return model, twin


@pytest.mark.parametrize("kind", ["sequential_add", "subclassed", "functional"])
def test_unbuilt_model_averages_like_a_built_one(kind):
    # keras.Sequential() + add(...) and subclassed models used to fail on
    # TensorFlow with "Unknown variable ... This optimizer can only be called
    # for the variables it was originally built with".
    x, y = _data()
    model, twin = _unbuilt(kind)
    emas = []
    for m in (model, twin):
        # warmup=False: the first update mixes in the starting weights, so
        # the average must start from the weights before the first step.
        ema = EMAWeights(decay=0.8, warmup=False, ema_at_end=False)
        m.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[ema])
        emas.append(ema)
    assert len(emas[0].averaged_variables) == len(emas[1].averaged_variables) == 8
    # Same initial weights, same training, same average.
    for a, b in zip(emas[0].training_weights, emas[1].training_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(emas[0].ema_weights, emas[1].ema_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(emas[0].ema_weights[0], emas[0].training_weights[0])
    assert len(model.optimizer.variables) == len(twin.optimizer.variables)
    assert "train_step" not in model.__dict__
    # The model trains normally afterwards, with and without the callback.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[EMAWeights(0.9)])


def test_unbuilt_model_fit_without_steps_leaves_no_trace():
    x, y = _data()
    model, twin = _unbuilt("sequential_add")
    ema = EMAWeights(decay=0.9)
    model.fit(x, y, batch_size=8, epochs=0, verbose=0, callbacks=[ema])
    # No step, nothing averaged (TensorFlow never built the model; JAX did,
    # and the average is the starting weights).
    if ema.ema_weights is not None:
        for a, b in zip(ema.ema_weights, ema.training_weights):
            np.testing.assert_array_equal(a, b)
    # A plain fit afterwards runs no left-over setup of the callback.
    for m in (model, twin):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert "train_step" not in model.__dict__
    assert int(model.optimizer.iterations.numpy()) == 4
    assert len(model.optimizer.variables) == len(twin.optimizer.variables)


@pytest.mark.slow
def test_keras_tuner_trials_with_an_unbuilt_model_complete(tmp_path):
    keras_tuner = pytest.importorskip("keras_tuner")
    x, y = _data()

    def build(hp):
        model = keras.Sequential()  # the keras-tuner guide's style: no Input
        model.add(keras.layers.Dense(hp.Int("units", 2, 4)))
        model.add(keras.layers.Dense(2))
        model.compile(keras.optimizers.Adam(1e-2), "mse")
        return model

    tuner = keras_tuner.RandomSearch(
        build,
        objective="val_loss",
        max_trials=2,
        seed=0,
        directory=str(tmp_path),
        project_name="unbuilt",
    )
    tuner.search(
        x,
        y,
        epochs=1,
        batch_size=8,
        validation_data=(x, y),
        verbose=0,
        callbacks=[EMAWeights(decay=0.9)],
    )
    trials = tuner.oracle.trials.values()
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" for t in trials)
    assert all(np.isfinite(t.score) for t in trials)


# -- repeated fits -------------------------------------------------------------


def test_new_instance_per_fit_does_not_grow_the_optimizer_and_saves_cleanly(
    tmp_path,
):
    # A new EMAWeights per fit used to add a set of optimizer variables each
    # time (16 -> 22 -> 28), kept in saved models, whose optimizer state then
    # did not load ("Skipping variable loading for optimizer").
    x, y = _data()
    plain = _model(keras.optimizers.Adam(1e-2))
    plain.fit(x, y, batch_size=8, epochs=1, verbose=0)
    n = len(plain.optimizer.variables)
    model = _model(keras.optimizers.Adam(1e-2))
    reused = EMAWeights(decay=0.9)
    for callback in (EMAWeights(0.9), EMAWeights(0.9), reused, reused):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        assert len(model.optimizer.variables) == n
    # The reused instance still averaged in its second fit.
    assert not np.allclose(reused.ema_weights[0], reused.training_weights[0])
    # Its average still swaps in for predict after fit.
    ema_model = _model()
    ema_model.set_weights(reused.ema_weights)
    np.testing.assert_allclose(
        model.predict(x, verbose=0, callbacks=[reused]),
        ema_model.predict(x, verbose=0),
        rtol=1e-5,
    )
    path = str(tmp_path / "model.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        loaded = keras.models.load_model(path)
    assert len(loaded.optimizer.variables) == n
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(loaded.optimizer.iterations.numpy()) == 16
