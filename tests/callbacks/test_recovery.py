"""Recovery that recovers: EMAWeights with BackupAndRestore, with
ExplosionDetector, after a fit that raised or was killed, and saving."""

import os
import signal
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from kerasreg.callbacks import EMAWeights, ExplosionDetector
from kerasreg.callbacks._train_step_hook import remove_train_step_hooks
from tests import toolkit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")
    return x, y


def _model(lr=1e-2):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(keras.optimizers.Adam(lr), "mse")
    return model


def _fit(model, callbacks, epochs=4, **kwargs):
    x, y = _data()
    return model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        validation_data=(x, y),
        callbacks=callbacks,
        **kwargs,
    )


def _reference(epochs=4):
    model = _model()
    ema = EMAWeights(decay=0.9)
    _fit(model, [ema], epochs)
    return model, ema


def _close(got, want, **kw):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), **kw)


def _ordered(backup, order):
    """(EMAWeights(decay=0.9), the callbacks): the backup after it, or owned."""
    if order == "ema_first":
        ema = EMAWeights(decay=0.9)
        return ema, [ema, backup]
    ema = EMAWeights(decay=0.9, backup=backup)  # order == "owned"
    return ema, [ema]


def _resume(backup_dir, order):
    """A new model and callbacks resume from the backup: (model, ema, history)."""
    model = _model()
    ema, callbacks = _ordered(keras.callbacks.BackupAndRestore(backup_dir), order)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the whole state loads
        history = _fit(model, callbacks)
    return model, ema, history


class _Crash(keras.callbacks.Callback):
    """Raises at batch `batch` of epoch `epoch` (a crash mid-epoch)."""

    def __init__(self, epoch, batch=1):
        super().__init__()
        self.epoch, self.batch, self._now = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._now = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._now == self.epoch and batch == self.batch:
            raise RuntimeError("crash")


def _assert_same_as_reference(model, ema, ref_model, ref_ema):
    _close(model.get_weights(), ref_model.get_weights(), rtol=1e-5, atol=1e-6)
    _close(ema.ema_weights, ref_ema.ema_weights, rtol=1e-5, atol=1e-6)
    _close(ema.training_weights, ref_ema.training_weights, rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 16
    _close(
        [v.numpy() for v in model.optimizer.variables],
        [v.numpy() for v in ref_model.optimizer.variables],
        rtol=1e-5,
        atol=1e-6,
    )


# -- 1. BackupAndRestore --------------------------------------------------------


@pytest.mark.parametrize("order", ["ema_first", "owned"])
def test_crash_and_resume_with_backup_matches_uninterrupted_run(order, tmp_path):
    ref_model, ref_ema = _reference()
    backup_dir = str(tmp_path / "backup")
    model = _model()
    backup = keras.callbacks.BackupAndRestore(backup_dir)
    with pytest.raises(RuntimeError, match="crash"):
        _fit(model, [*_ordered(backup, order)[1], _Crash(epoch=2)])
    # The same process resumes with new callbacks and a new model.
    model, ema, history = _resume(backup_dir, order)
    assert history.epoch == [2, 3]
    _assert_same_as_reference(model, ema, ref_model, ref_ema)
    assert not os.path.exists(backup_dir)  # finished: Keras removed the backup


_KILL_SCRIPT = """
import os, signal, sys
import keras
from tests.callbacks.test_recovery import _fit, _model, _ordered

class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

model = _model()
backup = keras.callbacks.BackupAndRestore(sys.argv[1])
_fit(model, [*_ordered(backup, sys.argv[2])[1], Kill()])
"""


def run_killed(script, *args):
    """Runs `script` in a new Python; it must end killed by SIGKILL."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


@pytest.mark.parametrize("order", ["ema_first", "owned"])
def test_kill_and_resume_with_backup_matches_uninterrupted_run(order, tmp_path):
    # Used to end 4-6e-2 away from the uninterrupted run.
    backup_dir = str(tmp_path / "backup")
    run_killed(_KILL_SCRIPT, backup_dir, order)
    assert os.path.exists(backup_dir)
    ref_model, ref_ema = _reference()
    model, ema, history = _resume(backup_dir, order)
    assert history.epoch == [2, 3]
    _assert_same_as_reference(model, ema, ref_model, ref_ema)


# -- 2. ExplosionDetector --------------------------------------------------------


class _Blowup(keras.callbacks.Callback):
    """A huge learning rate from epoch `epoch` on: the loss explodes."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.learning_rate.assign(1e8)


@pytest.mark.parametrize("order", ["ema_first", "detector_first"])
@pytest.mark.parametrize("ema_at_end", [True, False])
def test_explosion_restores_finite_weights_and_averages(order, ema_at_end):
    # The state at the start of epoch 2: a run of 2 epochs.
    ref_model = _model()
    ref = EMAWeights(decay=0.9, ema_at_end=ema_at_end)
    _fit(ref_model, [ref], epochs=2)
    model = _model()
    ema = EMAWeights(decay=0.9, ema_at_end=ema_at_end)
    detector = ExplosionDetector(verbose=0)
    callbacks = [ema, detector] if order == "ema_first" else [detector, ema]
    _fit(model, [_Blowup(2), *callbacks])
    assert detector.exploded_at_epoch == 2
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    _close(model.get_weights(), ref_model.get_weights(), rtol=1e-5, atol=1e-6)
    _close(ema.training_weights, ref.training_weights, rtol=1e-5, atol=1e-6)
    _close(ema.ema_weights, ref.ema_weights, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ema.ema_weights[0], ema.training_weights[0])


# -- 3. A fit that raises ---------------------------------------------------------


class _FailAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise OSError(28, "No space left on device")


@pytest.mark.parametrize("then", ["plain_fit", "explicit"])
def test_fit_that_raises_puts_the_training_weights_back(then):
    plain = _model()
    _fit(plain, [], epochs=1)
    n_plain = len(plain.optimizer.variables)
    model = _model()
    ema = EMAWeights(decay=0.9)
    # Raises after EMAWeights swapped the EMA weights in (end of epoch 1).
    with pytest.raises(OSError, match="No space"):
        _fit(model, [ema, _FailAtEpochEnd()])
    # The training weights of the moment it raised: a 2-epoch run.
    ref_model = _model()
    ref = EMAWeights(decay=0.9, ema_at_end=False)
    _fit(ref_model, [ref], epochs=2)
    if then == "explicit":
        assert remove_train_step_hooks(model) == 1
    else:
        before = int(model.optimizer.iterations.numpy())
        _fit(model, [], epochs=1)  # starts from the training weights
        ref_model.fit(*_data(), batch_size=8, epochs=1, verbose=0, shuffle=False)
        assert int(model.optimizer.iterations.numpy()) == before + 4
    assert "train_step" not in model.__dict__
    assert "make_train_function" not in model.__dict__
    assert len(model.optimizer.variables) == n_plain
    _close(model.get_weights(), ref_model.get_weights(), rtol=1e-5, atol=1e-6)
    if then == "explicit":
        _close(ema.training_weights, ref.training_weights, rtol=1e-5, atol=1e-6)
        _close(ema.ema_weights, ref.ema_weights, rtol=1e-5, atol=1e-6)


def test_interrupted_train_step_puts_the_model_back_at_once():
    plain = _model()
    _fit(plain, [], epochs=1)
    model = _model()
    ema = EMAWeights(decay=0.9)
    data = toolkit.failing_data(*_data())
    with pytest.raises(BaseException) as info:  # noqa: B017 - TF wraps it
        model.fit(data, epochs=3, verbose=0, callbacks=[ema, toolkit.arm_at(data, 1)])
    assert info.type is KeyboardInterrupt or "KeyboardInterrupt" in str(info.value)
    assert "train_step" not in model.__dict__
    assert len(model.optimizer.variables) == len(plain.optimizer.variables)
    # Training weights in the model (those after 5 steps), both sets kept.
    _close(model.get_weights(), ema.training_weights, rtol=0, atol=0)
    # Stopped in epoch 1 (TensorFlow's prefetching reports it a step or two late).
    assert 5 <= int(model.optimizer.iterations.numpy()) <= 8
    assert not np.allclose(ema.ema_weights[0], ema.training_weights[0])


# -- 4. Saving ------------------------------------------------------------------------


def _loads_cleanly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return keras.models.load_model(path)


def test_saved_models_keep_their_optimizer_state(tmp_path):
    plain = _model()
    _fit(plain, [], epochs=2)
    for name, callbacks in [
        ("ema.keras", [EMAWeights(decay=0.9)]),
        ("raised.keras", [EMAWeights(decay=0.9), _FailAtEpochEnd()]),
    ]:
        model = _model()
        try:
            _fit(model, callbacks, epochs=2)
        except OSError:
            remove_train_step_hooks(model)
        path = str(tmp_path / name)
        model.save(path)
        loaded = _loads_cleanly(path)
        assert len(loaded.optimizer.variables) == len(plain.optimizer.variables)
        _close(
            [v.numpy() for v in loaded.optimizer.variables],
            [v.numpy() for v in model.optimizer.variables],
            rtol=0,
            atol=0,
        )
        _close(loaded.get_weights(), model.get_weights(), rtol=0, atol=0)
        assert int(loaded.optimizer.iterations.numpy()) == 8


def test_model_checkpoint_during_fit_holds_the_ema_weights(tmp_path):
    # A full model written during fit has the callback's optimizer variables
    # (documented): Keras loads its weights, not its optimizer state.
    model = _model()
    ema = EMAWeights(decay=0.9, ema_at_end=False)
    path = str(tmp_path / "ckpt.keras")
    _fit(model, [ema, keras.callbacks.ModelCheckpoint(path)], epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loaded = keras.models.load_model(path)
    _close(loaded.get_weights(), ema.ema_weights, rtol=1e-6, atol=1e-7)
