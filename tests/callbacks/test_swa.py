import copy

import keras
import numpy as np
import pytest

from kerasreg.callbacks import SWA, update_batch_norm
from tests import toolkit
from tests.toolkit import mirrored_strategy


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    return x, y


def _model(bn=True):
    layers = [keras.Input((4,)), keras.layers.Dense(6)]
    if bn:
        layers.append(keras.layers.BatchNormalization(momentum=0.9))
    layers.append(keras.layers.Dense(1))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


class _EpochEnd(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights, self.lrs = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.lrs.append(float(self.model.optimizer.learning_rate.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([v.numpy().copy() for v in self.model.trainable_variables])


def test_average_and_constant_lr():
    x, y = _data()
    model = _model(bn=False)
    rec = _EpochEnd()
    swa = SWA(start_epoch=2, swa_lr=0.01)
    model.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[swa, rec])
    assert swa.n_averaged == 3
    want = [np.mean([w[i] for w in rec.weights[2:]], axis=0) for i in range(4)]
    for v, w in zip(model.trainable_variables, want):
        np.testing.assert_allclose(v.numpy(), w, rtol=1e-5, atol=1e-6)
    assert rec.lrs == pytest.approx([0.05, 0.05, 0.01, 0.01, 0.01])
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    # The last training weights are kept.
    np.testing.assert_allclose(swa.training_weights[0], rec.weights[-1][0])


def test_update_batch_norm_is_a_cumulative_average():
    x, _ = _data()
    model = _model()
    model.layers[1].moving_mean.assign(np.full(6, 100.0, "float32"))
    n = update_batch_norm(model, x, batch_size=16)
    assert n == 4
    h = keras.ops.convert_to_numpy(model.layers[0](x))
    means = [h[i : i + 16].mean(axis=0) for i in range(0, 64, 16)]
    variances = [h[i : i + 16].var(axis=0) for i in range(0, 64, 16)]
    bn = model.layers[1]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean(means, 0), rtol=1e-4)
    np.testing.assert_allclose(
        bn.moving_variance.numpy(), np.mean(variances, 0), rtol=1e-3
    )
    assert bn.momentum == 0.9  # put back


def test_update_batch_norm_datasets_and_no_bn():
    import tensorflow as tf

    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    assert update_batch_norm(_model(), ds) == 4
    assert update_batch_norm(_model(), (x, y), batch_size=32) == 2
    assert update_batch_norm(_model(), x, steps=1) == 1
    assert update_batch_norm(_model(bn=False), x) == 0


def test_fit_recomputes_batch_norm():
    x, y = _data()
    model = _model()
    swa = SWA(start_epoch=1, data=x, batch_size=16)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[swa])
    bn = model.layers[1]
    h = keras.ops.convert_to_numpy(model.layers[0](x))
    want = np.mean([h[i : i + 16].mean(axis=0) for i in range(0, 64, 16)], 0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), want, rtol=1e-4, atol=1e-5)


def test_warns_without_data_for_batch_norm():
    x, y = _data()
    with pytest.warns(UserWarning, match="BatchNormalization"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[SWA(start_epoch=0)])


def test_start_after_training_leaves_weights():
    x, y = _data()
    model = _model(bn=False)
    swa = SWA(start_epoch=10)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[swa])
    assert swa.n_averaged == 0 and swa.swa_weights is None


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"start_epoch": -1}, "start_epoch"),
        ({"start_epoch": 0, "swa_lr": 0.0}, "swa_lr"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        SWA(**kwargs)


def test_deepcopy_and_reuse():
    cb, _ = toolkit.assert_deepcopy_and_reuse(lambda: SWA(start_epoch=1, swa_lr=0.01))
    assert cb.n_averaged == 1
    assert copy.deepcopy(cb).get_config() == cb.get_config()


@toolkit.requires_tensorflow
def test_mirrored_strategy():
    x, y = _data()
    strategy = mirrored_strategy()
    with strategy.scope():
        model = _model()
    swa = SWA(start_epoch=1, swa_lr=0.01, data=x)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[swa])
    assert swa.n_averaged == 2
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
