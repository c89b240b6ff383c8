import copy
import json
import math

import keras
import numpy as np
import pytest

import kerasreg
from kerasreg.callbacks import ExplosionDetector, TrainingExplodedError
from tests import toolkit
from tests.toolkit import mirrored_strategy

NAN, INF = math.nan, math.inf


def _batches(values):
    return [{"loss": v} for v in values]


@pytest.mark.parametrize(
    "batch_values, factor, warmup, expected",
    [
        # (batch logs of epoch 0, factor, warmup_batches, (epoch, batch) or None)
        ([2.0, 2.0, 1.9, 1.8, 1.7], 3.0, 2, None),
        ([2.0, 2.0, 1.9, 6.1, 1.7], 3.0, 2, (0, 3)),  # 6.1 > 3 x 2.0
        ([2.0, 2.0, 1.9, 5.9, 1.7], 3.0, 2, None),  # 5.9 < 6.0
        ([2.0, NAN, 1.9], 3.0, 5, (0, 1)),  # NaN during the warm-up too
        ([2.0, 2.0, INF], 3.0, 1, (0, 2)),
        ([2.0, 2.0, -INF], 3.0, 1, (0, 2)),
        ([2.0, 2.4, 4.7], 2.0, 2, None),  # reference = 2.4 (mean of 2 batches)
        ([2.0, 2.4, 4.9], 2.0, 2, (0, 2)),  # 4.9 > 2 x 2.4
        # Inside the warm-up the first batch's cost is the reference already.
        ([1.0, 3.0, 2.5], 2.0, 2, (0, 1)),
        ([2.3, 9.0, 8e8], 3.0, 10, (0, 1)),
        # The default: the reference is the first batch's (original) cost.
        ([2.3, 2.2, 6.8], 3.0, 1, None),
        ([2.3, 2.2, 7.0], 3.0, 1, (0, 2)),
        # Costs that start at zero or below: the threshold uses the magnitude
        # (at least min_scale = 0.1), so stable runs go on ...
        ([0.0, 0.01, 0.05, 0.15], 3.0, 1, None),  # threshold 0 + 2 x 0.1
        ([-0.02, -0.05, 0.03, -0.3, -0.6], 3.0, 1, None),  # a cosine loss
        ([-1.0, -1.5, -2.0, -2.8], 3.0, 1, None),  # threshold -1 + 2 x 1 = 1
        # ... and explosions still stop them.
        ([0.0, 0.01, 0.25], 3.0, 1, (0, 2)),
        ([-1.0, -1.5, 1.2], 3.0, 1, (0, 2)),
        ([-0.02, -0.05, NAN], 3.0, 1, (0, 2)),
    ],
)
def test_scripted_batches(batch_values, factor, warmup, expected):
    det = ExplosionDetector(factor=factor, warmup_batches=warmup, verbose=0)
    model = toolkit.tiny_model()
    stopped = toolkit.run_scripted(
        det,
        [{"loss": batch_values[0]}],  # the epoch's value never decides here
        model=model,
        batch_logs=[_batches(batch_values)],
    )
    if expected is None:
        assert stopped is None and not det.exploded
    else:
        assert stopped == 0
        assert (det.exploded_at_epoch, det.exploded_at_batch) == expected
        assert "smaller learning rate" in det.message


@pytest.mark.parametrize(
    "order, expected_batch",
    [
        ([2, 0, 1, 3], 2),  # batch 2 exploded and was seen first
        ([3, 2, 1, 0], 2),  # the first exploding batch is reported
        ([1, 3, 0, 2], 2),
        ([0, 1, 2, 3], 2),
    ],
)
def test_out_of_order_batch_hooks(order, expected_batch):
    """Keras's async dispatch runs an epoch's batch hooks in any order."""
    values = [2.0, 2.1, 7.0, 9.0]  # 7.0 > 3 x 2.0: batch 2 exploded
    det = ExplosionDetector(verbose=0)
    model = toolkit.tiny_model()
    det.set_model(model)
    det.on_train_begin({})
    det.on_epoch_begin(0, {})
    for batch in order:
        det.on_train_batch_end(batch, {"loss": values[batch]})
    det.on_epoch_end(0, {"loss": 5.0})
    det.on_train_end({})
    assert det.reference == 2.0  # always batch 0's cost
    assert (det.exploded_at_epoch, det.exploded_at_batch) == (0, expected_batch)
    assert det.value == 7.0 and "batch 2" in det.message


@pytest.mark.parametrize("order", [[78, 5, 0, 1], [1, 0], [0, 1, 78]])
def test_reference_is_the_first_batch_whatever_the_order(order):
    det = ExplosionDetector(warmup_batches=2, verbose=0)
    det.set_model(toolkit.tiny_model())
    det.on_train_begin({})
    det.on_epoch_begin(0, {})
    for batch in order:
        det.on_train_batch_end(batch, {"loss": 2.0 + batch / 100})
    det.on_epoch_end(0, {"loss": 2.0})
    assert det.reference == pytest.approx(2.01)  # batch 1: the mean of 2 batches
    assert not det.exploded


def test_explosion_in_the_first_steps_of_a_real_fit():
    """SGD at lr 1e4: the loss explodes within the first batches."""
    x, y = toolkit.classification_data(256, 8, 3)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, "relu"), keras.layers.Dense(3)]
    )
    model.compile(
        keras.optimizers.SGD(1e4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    det = ExplosionDetector(verbose=0)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[det])
    assert det.exploded and det.exploded_at_epoch == 0
    assert det.exploded_at_batch is not None and det.exploded_at_batch < 10
    assert det.reference < 5.0  # the original cost, not an exploded one
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_stable_cosine_similarity_run_is_not_stopped():
    """A negative, near-zero-starting loss: a plain ratio would stop it."""
    x, _ = toolkit.classification_data(128, 8, 3)
    y = np.tanh(x[:, :4] * 0.5)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    model.compile(keras.optimizers.SGD(0.05), "cosine_similarity")
    det = ExplosionDetector(verbose=0)
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[det])
    assert not det.exploded and len(history.epoch) == 4
    assert history.history["loss"][-1] < history.history["loss"][0] < 0.5


def test_scripted_epoch_level_monitor():
    det = ExplosionDetector(monitor="val_loss", factor=2.0, verbose=0)
    logs = [{"val_loss": 1.0}, {"val_loss": 1.5}, {"val_loss": 2.5}, {"val_loss": 1.0}]
    assert toolkit.run_scripted(det, logs) == 2
    assert det.reference == 1.0 and det.value == 2.5
    assert det.exploded_at_batch is None


def test_scripted_nan_epoch():
    det = ExplosionDetector(verbose=0)
    assert toolkit.run_scripted(det, [{"loss": 1.0}, {"loss": NAN}]) == 1


def test_check_is_pure():
    det = ExplosionDetector(factor=3.0, verbose=0)
    det.reference = 1.0
    assert det.check(2.9) is None
    assert "above 3 x" in det.check(3.1)
    assert det.check(-0.5, reference=-1.0) is None  # -1 + 2 x 1 = 1
    assert "above the reference -1 + 2 x 1 (= 1)" in det.check(1.5, reference=-1.0)
    assert det.threshold(0.0) == pytest.approx(0.2)  # 2 x min_scale
    assert "not finite" in det.check(NAN)
    assert not det.exploded


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": 0.5}, "factor"),
        ({"warmup_batches": 0}, "warmup_batches"),
        ({"min_scale": -1.0}, "min_scale"),
        ({"monitor": ""}, "monitor"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        ExplosionDetector(**kwargs)


def _regression_data():
    x, _ = toolkit.classification_data(64, 8, 3)
    y = (x @ np.linspace(-1.0, 1.0, 8)).astype("float32")[:, None]
    return x, y


def _regression_model():
    """A linear regression: a too-large learning rate makes it diverge."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    return model


def _exploding_fit(det, extra_callbacks=(), epochs=3, lr_boom=10.0):
    """Trains normally for one epoch, then the learning rate explodes."""
    x, y = _regression_data()
    model = _regression_model()

    class Boom(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.learning_rate.assign(lr_boom)

    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        verbose=0,
        callbacks=[Boom(), det, *extra_callbacks],
    )
    return model, history


def test_real_fit_restores_epoch_start_weights():
    det = ExplosionDetector(factor=3.0, warmup_batches=2, verbose=0)
    seen = {}

    class Keep(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen[epoch] = [w.copy() for w in self.model.get_weights()]

    model, history = _exploding_fit(det, [Keep()])
    assert det.exploded and det.exploded_at_epoch == 1
    assert len(history.epoch) == 2  # stopped in the second epoch
    for a, b in zip(model.get_weights(), seen[1]):
        np.testing.assert_array_equal(a, b)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_raise_error():
    det = ExplosionDetector(factor=3.0, warmup_batches=2, raise_error=True, verbose=0)
    with pytest.raises(TrainingExplodedError, match="smaller learning rate"):
        _exploding_fit(det)
    assert all(np.all(np.isfinite(w)) for w in det.model.get_weights())


class _BoomAtEpoch2(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            self.model.optimizer.learning_rate.assign(10.0)


def test_backup_and_restore_is_kept(tmp_path):
    backup_dir = tmp_path / "backup"
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    det = ExplosionDetector(factor=3.0, warmup_batches=2, backup=backup, verbose=0)
    x, y = _regression_data()
    model = _regression_model()
    model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[_BoomAtEpoch2(), det])
    assert det.exploded_at_epoch == 2
    # The backup survives, and it is the one of the last good epoch (epoch 2
    # resumes), not the exploded one.
    assert backup_dir.exists()
    meta = json.loads((backup_dir / "training_metadata.json").read_text())
    assert meta["epoch"] == 2
    # The BackupAndRestore instance works normally afterwards: a clean run
    # resumes from the backup and deletes it at the end.
    model2 = _regression_model()
    h = model2.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[backup])
    assert h.epoch == [2, 3]
    assert not backup_dir.exists()


def test_backup_saving_per_batch_never_saves_an_exploded_batch(tmp_path):
    backup_dir = tmp_path / "backup"
    backup = keras.callbacks.BackupAndRestore(str(backup_dir), save_freq=1)
    det = ExplosionDetector(factor=3.0, warmup_batches=2, backup=backup, verbose=0)
    assert not det.async_safe  # the backup writes files from the batch hook
    x, y = _regression_data()
    model = _regression_model()
    model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[_BoomAtEpoch2(), det])
    assert det.exploded_at_epoch == 2
    meta = json.loads((backup_dir / "training_metadata.json").read_text())
    # Saved after each batch up to the last one checked before the explosion.
    assert meta["epoch"] == 2 and meta["batch"] < det.exploded_at_batch
    restored = _regression_model()
    restored.load_weights(str(backup_dir / "latest.weights.h5"))
    assert all(np.all(np.isfinite(w)) for w in restored.get_weights())


def test_owned_backup_without_explosion_is_a_plain_backup(tmp_path):
    """Crash, resume through the detector, finish: the backup is deleted."""
    backup_dir = tmp_path / "backup"
    x, y = _regression_data()

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("crash")

    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    det = ExplosionDetector(backup=backup, verbose=0)
    with pytest.raises(RuntimeError, match="crash"):
        _regression_model().fit(
            x, y, batch_size=8, epochs=4, verbose=0, callbacks=[det, Crash()]
        )
    meta = json.loads((backup_dir / "training_metadata.json").read_text())
    assert meta["epoch"] == 2
    # A new detector with a new backup of the same directory resumes.
    det = ExplosionDetector(
        backup=keras.callbacks.BackupAndRestore(str(backup_dir)), verbose=0
    )
    h = _regression_model().fit(
        x, y, batch_size=8, epochs=4, verbose=0, callbacks=[det]
    )
    assert h.epoch == [2, 3] and not det.exploded
    assert not backup_dir.exists()


def test_raise_error_keeps_the_owned_backup(tmp_path):
    backup_dir = tmp_path / "backup"
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    det = ExplosionDetector(
        factor=3.0, warmup_batches=2, raise_error=True, backup=backup, verbose=0
    )
    with pytest.raises(TrainingExplodedError):
        _exploding_fit(det)  # explodes in epoch 1
    meta = json.loads((backup_dir / "training_metadata.json").read_text())
    assert meta["epoch"] == 1


def test_backup_argument():
    with pytest.raises(ValueError, match="argument `backup`"):
        ExplosionDetector(backup="/tmp/backup")
    assert ExplosionDetector().async_safe and ExplosionDetector().backup is None
    backup = keras.callbacks.BackupAndRestore("/tmp/b", save_freq=3)
    det = ExplosionDetector(factor=4.0, backup=backup, verbose=0)
    assert det.backup is backup and not det.async_safe
    assert "backup" not in det.get_config()
    clone = copy.deepcopy(det)
    assert clone.backup is not backup
    assert (clone.backup.backup_dir, clone.backup.save_freq) == ("/tmp/b", 3)
    assert clone.get_config() == det.get_config()


def test_deepcopy_and_reuse():
    cb, _ = toolkit.assert_deepcopy_and_reuse(
        lambda: ExplosionDetector(factor=3.0, verbose=0)
    )
    assert not cb.exploded and cb.reference is not None


def test_second_fit_resets_state():
    det = ExplosionDetector(factor=3.0, warmup_batches=2, verbose=0)
    _exploding_fit(det)
    assert det.exploded
    x, y = _regression_data()
    _regression_model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[det])
    assert not det.exploded and det.exploded_at_epoch is None


def test_config_roundtrip():
    det = ExplosionDetector(monitor="val_loss", factor=4.0, warmup_batches=3)
    clone = ExplosionDetector.from_config(det.get_config())
    assert clone.get_config() == det.get_config()
    assert copy.deepcopy(det).get_config() == det.get_config()
    assert keras.saving.get_registered_object("kerasreg>ExplosionDetector") is (
        ExplosionDetector
    )


@toolkit.requires_tensorflow
def test_mirrored_strategy():
    strategy = mirrored_strategy()
    with strategy.scope():
        det = ExplosionDetector(factor=3.0, warmup_batches=2, verbose=0)
        model, _ = _exploding_fit(det)
    assert det.exploded_at_epoch == 1
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_exported():
    assert kerasreg.callbacks.ExplosionDetector is ExplosionDetector


def test_verbose_reports_like_keras_callbacks(capsys, caplog):
    for verbose in (0, 1):
        _exploding_fit(ExplosionDetector(factor=3.0, warmup_batches=2, verbose=verbose))
        out = capsys.readouterr().out
        assert ("ExplosionDetector: training exploded" in out) is bool(verbose)
    keras.config.disable_interactive_logging()
    try:
        with caplog.at_level("INFO", logger="kerasreg"):
            _exploding_fit(ExplosionDetector(factor=3.0, warmup_batches=2))
    finally:
        keras.config.enable_interactive_logging()
    assert "ExplosionDetector: training exploded" not in capsys.readouterr().out
    assert "ExplosionDetector: training exploded" in caplog.text
