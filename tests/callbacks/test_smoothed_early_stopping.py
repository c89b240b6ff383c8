import math

import keras
import numpy as np
import pytest

from kerasreg.callbacks import SmoothedEarlyStopping
from tests import toolkit
from tests.toolkit import mirrored_strategy

NAN, INF = math.nan, math.inf


def _logs(values, key="val_loss"):
    return [{key: v} for v in values]


# A decreasing, noisy curve with one bad epoch (0.62 after 0.5).
NOISY = [1.0, 0.8, 0.6, 0.5, 0.62, 0.45, 0.4, 0.38, 0.37, 0.36]


@pytest.mark.parametrize(
    "values, kwargs, expected_stop, expected_best",
    [
        # One bad epoch: raw EarlyStopping(patience=1) stops at 4, we do not.
        (NOISY, {"patience": 1}, None, 9),
        (NOISY, {"patience": 1, "smoothing": "window", "window": 3}, None, 9),
        # A plateau stops after `patience` epochs of the smoothed curve.
        ([1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], {"patience": 2, "alpha": 1.0}, 3, 1),
        ([1.0, 0.9, 1.2, 1.3, 1.4, 1.5], {"patience": 2}, 3, 1),
        # NaN / inf stop at once.
        ([1.0, 0.9, NAN, 0.5], {"patience": 5}, 2, 1),
        ([1.0, INF, 0.5], {"patience": 5}, 1, 0),
        # start_from_epoch: no patience counted before epoch 4.
        ([1.0, 1.1, 1.2, 1.3, 1.4, 1.5], {"patience": 1, "start_from_epoch": 4}, 4, 0),
        # min_delta: small improvements of the smoothed value do not count.
        (
            [1.0, 0.99, 0.98, 0.97],
            {"patience": 2, "alpha": 1.0, "min_delta": 0.05},
            2,
            0,
        ),
        # mode="max" for accuracies (auto).
        ([0.5, 0.6, 0.7, 0.65, 0.8], {"patience": 1}, None, 4),
    ],
)
def test_scripted(values, kwargs, expected_stop, expected_best):
    key = "val_accuracy" if values[0] == 0.5 and values[-1] == 0.8 else "val_loss"
    cb = SmoothedEarlyStopping(monitor=key, restore_best_weights=False, **kwargs)
    assert toolkit.run_scripted(cb, _logs(values, key)) == expected_stop
    assert cb.best_epoch == expected_best
    assert cb.stopped_epoch == expected_stop
    if expected_stop is not None:
        assert cb.stop_reason in ("patience", "non_finite")


def test_keras_early_stopping_stops_on_the_bad_epoch():
    keras_cb = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1)
    assert toolkit.run_scripted(keras_cb, _logs(NOISY)) == 4
    ours = SmoothedEarlyStopping(patience=1, restore_best_weights=False)
    assert toolkit.run_scripted(ours, _logs(NOISY)) is None


def test_ema_smoothing_values_and_logs():
    cb = SmoothedEarlyStopping(alpha=0.5, patience=10, restore_best_weights=False)
    logs = _logs([1.0, 0.0, 1.0])
    model = toolkit.tiny_model()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, entry in enumerate(logs):
        cb.on_epoch_end(epoch, entry)
    assert [e["val_loss_smoothed"] for e in logs] == [1.0, 0.5, 0.75]
    assert cb.history == [1.0, 0.5, 0.75]


def test_window_smoothing_values():
    cb = SmoothedEarlyStopping(smoothing="window", window=2, restore_best_weights=False)
    for v, want in zip([1.0, 3.0, 5.0], [1.0, 2.0, 4.0]):
        assert cb.smooth(v) == want


def test_nan_stop_message():
    cb = SmoothedEarlyStopping(patience=3, restore_best_weights=False)
    toolkit.run_scripted(cb, _logs([1.0, NAN]))
    assert cb.stop_reason == "non_finite" and "not finite" in cb.stop_message


def test_real_fit_restores_best_smoothed_weights():
    x, y = toolkit.classification_data(64, 8, 3)
    model = toolkit.tiny_model()
    weights_at = {}

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights_at[epoch] = [w.copy() for w in self.model.get_weights()]

    # The scripted validation curve bottoms out (smoothed) at epoch 2.
    curve = [1.0, 0.5, 0.4, 0.9, 1.2, 1.5, 2.0]

    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = curve[epoch]

    cb = SmoothedEarlyStopping(alpha=0.6, patience=2)
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=7,
        verbose=0,
        validation_data=(x, y),
        callbacks=[Script(), Keep(), cb],
    )
    assert "val_loss_smoothed" in history.history
    assert cb.best_epoch == 2 and cb.stopped_epoch == 4
    for a, b in zip(model.get_weights(), weights_at[2]):
        np.testing.assert_array_equal(a, b)


def test_deepcopy_and_reuse():
    cb, histories = toolkit.assert_deepcopy_and_reuse(
        lambda: SmoothedEarlyStopping(patience=5)
    )
    assert all("val_loss_smoothed" in h.history for h in histories)
    assert len(cb.history) == 2  # reset by the second fit


def test_missing_metric_warns():
    cb = SmoothedEarlyStopping(monitor="val_nope", restore_best_weights=False)
    with pytest.warns(UserWarning, match="val_nope.*Available metrics"):
        toolkit.run_scripted(cb, _logs([1.0, 2.0]))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"smoothing": "median"}, "smoothing"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"window": 0}, "window"),
        ({"patience": -1}, "patience"),
        ({"mode": "up"}, "mode"),
        ({"start_from_epoch": -2}, "start_from_epoch"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        SmoothedEarlyStopping(**kwargs)


def test_config_roundtrip():
    cb = SmoothedEarlyStopping(monitor="val_accuracy", smoothing="window", window=3)
    assert SmoothedEarlyStopping.from_config(cb.get_config()).get_config() == (
        cb.get_config()
    )


@toolkit.requires_tensorflow
def test_mirrored_strategy():
    x, y = toolkit.classification_data(64, 8, 3)
    strategy = mirrored_strategy()
    with strategy.scope():
        model = toolkit.tiny_model()
    cb = SmoothedEarlyStopping(patience=1)
    h = model.fit(
        x, y, batch_size=16, epochs=3, verbose=0, validation_data=(x, y), callbacks=[cb]
    )
    assert len(h.history["val_loss_smoothed"]) == len(h.epoch)
