import copy
import json
import math
import os

import keras
import numpy as np
import pytest

from kerasreg.callbacks import (
    SnapshotEnsemble,
    cycle_boundaries,
    snapshot_learning_rate,
)
from kerasreg.callbacks._train_step_hook import remove_train_step_hooks
from kerasreg.callbacks.snapshot_ensemble import MANIFEST
from kerasreg.ensembles import Ensemble
from tests import toolkit
from tests.toolkit import mirrored_strategy


def _model():
    model = toolkit.tiny_model(compile=False)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


class _LrRecorder(keras.callbacks.Callback):
    """The learning rate used by every step (test only)."""

    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        )


@pytest.mark.parametrize(
    "epochs, cycles, per_cycle, mult, ends",
    [
        (6, 3, None, 1.0, [2, 4, 6]),
        (7, 3, None, 1.0, [2, 5, 7]),
        (7, 3, None, 2.0, [1, 3, 7]),
        (10, 2, 3, 1.0, [3, 6]),
        (10, 2, 2, 2.0, [2, 6]),
    ],
)
def test_cycle_boundaries(epochs, cycles, per_cycle, mult, ends):
    assert cycle_boundaries(epochs, cycles, per_cycle, mult) == ends


def test_cycle_boundaries_too_many_cycles():
    with pytest.raises(ValueError, match="do not fit"):
        cycle_boundaries(2, 3, None, 1.0)


def test_learning_rate_formula():
    ends = [2, 4]
    pos = np.array([0.0, 0.5, 1.0, 1.999, 2.0, 3.0, 4.5], "float32")
    got = keras.ops.convert_to_numpy(snapshot_learning_rate(pos, ends, 0.1, 0.01))
    frac = np.array([0, 0.25, 0.5, 0.9995, 0, 0.5])
    want = 0.01 + 0.045 * (1 + np.cos(np.pi * frac))
    np.testing.assert_allclose(got[:6], want, rtol=1e-4)
    assert got[6] == pytest.approx(0.01)  # after the last cycle


def test_lr_set_every_batch_and_snapshots(tmp_path):
    x, y = toolkit.classification_data(64, 8, 3)
    model = _model()
    rec = _LrRecorder()
    snap = SnapshotEnsemble(cycles=3, max_lr=0.1, min_lr=0.001, directory=tmp_path)
    model.fit(x, y, batch_size=16, epochs=6, verbose=0, callbacks=[rec, snap])
    steps = 4
    pos = np.arange(6 * steps) / steps
    want = 0.001 + 0.0495 * (1 + np.cos(np.pi * (pos % 2) / 2))
    np.testing.assert_allclose(rec.lrs, want, rtol=1e-5)
    assert snap.snapshots == [
        str(tmp_path / f"snapshot_{i:03d}.weights.h5") for i in range(3)
    ]
    assert all(os.path.exists(p) for p in snap.snapshots)
    # No temporary left; the one hidden file is the manifest.
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == [MANIFEST]
    # The last snapshot is the final model; the optimizer's lr is restored.
    ens = snap.ensemble(last=2)
    assert isinstance(ens, Ensemble) and len(ens.members) == 2
    np.testing.assert_allclose(
        ens.members[-1].predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5
    )
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    assert "train_step" not in model.__dict__
    probs = ens.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    from_dir = Ensemble.from_snapshots(tmp_path, _model, last=2)
    np.testing.assert_allclose(from_dir.predict(x, verbose=0), probs, rtol=1e-5)


def test_keep_removes_old_snapshots(tmp_path):
    x, y = toolkit.classification_data(32, 8, 3)
    snap = SnapshotEnsemble(cycles=3, directory=tmp_path, keep=1)
    _model().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[snap])
    assert len(snap.snapshots) == 1
    assert sorted(os.listdir(tmp_path)) == [MANIFEST, "snapshot_002.weights.h5"]


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


def test_resumes_after_interruption(tmp_path):
    x, y = toolkit.classification_data(64, 8, 3)
    snap_dir, backup_dir = tmp_path / "snaps", tmp_path / "backup"

    # Reference: an uninterrupted run.
    keras.utils.set_random_seed(0)
    ref_rec = _LrRecorder()
    ref = SnapshotEnsemble(cycles=3, max_lr=0.1, directory=tmp_path / "ref")
    ref_model = _model()
    ref_model.fit(
        x,
        y,
        batch_size=16,
        epochs=6,
        verbose=0,
        shuffle=False,
        callbacks=[ref_rec, ref],
    )

    # Interrupted at the start of epoch 3 (after the first snapshot).
    keras.utils.set_random_seed(0)
    model = _model()
    snap = SnapshotEnsemble(cycles=3, max_lr=0.1, directory=snap_dir)
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=6,
            verbose=0,
            shuffle=False,
            callbacks=[snap, backup, _Interrupt(3)],
        )
    assert json.loads((backup_dir / "training_metadata.json").read_text())["epoch"] == 3
    assert sorted(os.listdir(snap_dir)) == [MANIFEST, "snapshot_000.weights.h5"]

    # A new process: a new model and a new callback, same folders.
    model = _model()
    model.build((None, 8))
    rec = _LrRecorder()
    snap = SnapshotEnsemble(cycles=3, max_lr=0.1, directory=snap_dir)
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=6,
        verbose=0,
        shuffle=False,
        callbacks=[backup, rec, snap],
    )
    assert history.epoch == [3, 4, 5]
    np.testing.assert_allclose(rec.lrs, ref_rec.lrs[3 * 4 :], rtol=1e-5)
    assert [os.path.basename(p) for p in snap.snapshots] == [
        f"snapshot_{i:03d}.weights.h5" for i in range(3)
    ]
    # Complete files: every snapshot loads; the last equals the reference's.
    ens = snap.ensemble()
    ref_ens = ref.ensemble()
    np.testing.assert_allclose(
        ens.predict(x, verbose=0), ref_ens.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"cycles": 0}, "cycles"),
        ({"cycles": 2, "min_lr": 0.5, "max_lr": 0.1}, "min_lr"),
        ({"cycles": 2, "max_lr": 0.0}, "max_lr"),
        ({"cycles": 2, "cycle_mult": 0.0}, "cycle_mult"),
        ({"cycles": 2, "keep": 0}, "keep"),
        ({"cycles": 2, "epochs_per_cycle": -1}, "epochs_per_cycle"),
    ],
)
def test_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        SnapshotEnsemble(directory=tmp_path, **kwargs)


def test_unwritable_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="argument `directory`"):
        SnapshotEnsemble(cycles=2, directory=blocker / "sub")


def test_schedule_optimizer_is_refused(tmp_path):
    x, y = toolkit.classification_data(32, 8, 3)
    model = toolkit.tiny_model(compile=False)
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(keras.optimizers.SGD(sched), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="learning_rate"):
        model.fit(
            x,
            y,
            epochs=2,
            verbose=0,
            callbacks=[SnapshotEnsemble(cycles=2, directory=tmp_path)],
        )


def test_deepcopy_and_reuse(tmp_path):
    cb, _ = toolkit.assert_deepcopy_and_reuse(
        lambda: SnapshotEnsemble(cycles=2, directory=tmp_path),
        make_model=_model,
    )
    assert len(cb.snapshots) == 2
    assert copy.deepcopy(cb).get_config() == cb.get_config()


@toolkit.requires_tensorflow
def test_mirrored_strategy(tmp_path):
    x, y = toolkit.classification_data(64, 8, 3)
    strategy = mirrored_strategy()
    with strategy.scope():
        model = _model()
    rec = _LrRecorder()
    snap = SnapshotEnsemble(cycles=2, max_lr=0.1, directory=tmp_path)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[rec, snap])
    assert len(snap.snapshots) == 2
    want = 0.05 * (1 + np.cos(np.pi * (np.arange(8) % 4) / 4))
    np.testing.assert_allclose(rec.lrs, want, rtol=1e-5, atol=1e-7)
    assert not math.isnan(rec.lrs[-1])


def _unbuilt(kind):
    if kind == "sequential_add":
        model = keras.Sequential()
        model.add(keras.layers.Dense(16, activation="relu"))
        model.add(keras.layers.Dense(3, activation="softmax"))
    elif kind == "subclassed":
        model = toolkit.subclassed_classifier()
    else:
        model = toolkit.tiny_model(compile=False)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("kind", ["sequential_add", "subclassed", "functional"])
def test_unbuilt_model(kind, tmp_path):
    # Unbuilt models used to fail on TensorFlow ("Unknown variable ... This
    # optimizer can only be called for the variables it was originally built
    # with"): the callback built the optimizer on no variables.
    x, y = toolkit.classification_data(64, 8, 3)
    model = _unbuilt(kind)
    rec = _LrRecorder()
    snap = SnapshotEnsemble(cycles=2, max_lr=0.1, min_lr=0.001, directory=tmp_path)
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[rec, snap])
    pos = np.arange(4 * 4) / 4
    want = 0.001 + 0.0495 * (1 + np.cos(np.pi * (pos % 2) / 2))
    np.testing.assert_allclose(rec.lrs, want, rtol=1e-5)
    assert len(snap.snapshots) == 2 and all(os.path.exists(p) for p in snap.snapshots)
    assert len(model.optimizer.variables) == 2  # SGD: iterations, learning rate
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    before = model.get_weights()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # trains normally after
    assert not all(np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    if kind != "subclassed":
        ens = snap.ensemble(last=1)
        np.testing.assert_allclose(
            ens.members[0].predict(x, verbose=0), ens.predict(x, verbose=0), rtol=1e-6
        )


# -- files and failed fits ---------------------------------------------------


def test_constructing_and_copying_create_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    snap = SnapshotEnsemble(cycles=2)
    copy.deepcopy(snap)
    SnapshotEnsemble(cycles=2, directory=tmp_path / "a" / "b")
    assert os.listdir(tmp_path) == []


def test_fresh_run_removes_only_its_own_files(tmp_path):
    x, y = toolkit.classification_data(32, 8, 3)
    directory = tmp_path / "snaps"
    directory.mkdir()
    # A user's files, one with the callback's naming.
    (directory / "snapshot_005.weights.h5").write_text("mine")
    (directory / "notes.txt").write_text("mine")
    for _ in range(2):  # the second fresh run removes the first run's files
        snap = SnapshotEnsemble(cycles=2, directory=directory)
        _model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[snap])
        names = sorted(os.listdir(directory))
        assert names == [
            MANIFEST,
            "notes.txt",
            "snapshot_000.weights.h5",
            "snapshot_001.weights.h5",
            "snapshot_005.weights.h5",
        ]
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest == {
        "snapshots": ["snapshot_000.weights.h5", "snapshot_001.weights.h5"]
    }
    assert (directory / "snapshot_005.weights.h5").read_text() == "mine"
    # keep=1: the removed snapshot leaves the manifest too.
    snap = SnapshotEnsemble(cycles=2, directory=directory, keep=1)
    _model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[snap])
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest == {"snapshots": ["snapshot_001.weights.h5"]}
    assert not (directory / "snapshot_000.weights.h5").exists()


_KILL_SCRIPT = """
import os, signal, sys
import keras
import numpy as np
from kerasreg.callbacks import SnapshotEnsemble
from kerasreg import _io

real = _io.atomic_path

class Killing:
    def __init__(self, *a, **k):
        self.cm = real(*a, **k)
    def __enter__(self):
        return self.cm.__enter__()
    def __exit__(self, *exc):
        os.kill(os.getpid(), signal.SIGKILL)  # inside the save, file written

def atomic_path(path, suffix=None):
    if os.path.basename(path).startswith("snapshot_001"):
        return Killing(path, suffix=suffix)
    return real(path, suffix=suffix)

_io.atomic_path = atomic_path
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
model.compile(keras.optimizers.SGD(0.1), "mse")
snap = SnapshotEnsemble(cycles=2, directory=sys.argv[1])
model.fit(np.ones((16, 4)), np.ones((16, 2)), batch_size=8, epochs=2, verbose=0,
          callbacks=[snap])
"""


def _run_killed(script, *args):
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr[-3000:]


def test_kill_inside_a_save_leaves_a_temporary_the_next_run_removes(tmp_path):
    directory = tmp_path / "snaps"
    _run_killed(_KILL_SCRIPT, directory)
    names = sorted(os.listdir(directory))
    temporaries = [n for n in names if n.startswith(".snapshot_001.weights.h5.")]
    assert len(temporaries) == 1, names
    # The snapshot being written was listed before the save.
    assert json.loads((directory / MANIFEST).read_text())["snapshots"] == [
        "snapshot_000.weights.h5",
        "snapshot_001.weights.h5",
    ]
    (directory / ".snapshot_001.weights.h5.user.txt").write_text("not ours")
    x, y = toolkit.classification_data(32, 8, 3)
    snap = SnapshotEnsemble(cycles=2, directory=directory)
    _model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[snap])
    assert sorted(os.listdir(directory)) == [
        ".kerasreg_snapshots.json",
        ".snapshot_001.weights.h5.user.txt",
        "snapshot_000.weights.h5",
        "snapshot_001.weights.h5",
    ]


class _FailAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise OSError(28, "No space left on device")


def _plain_lrs(model, x, y):
    class Lrs(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.lrs = []

        def on_train_batch_end(self, batch, logs=None):
            self.lrs.append(float(self.model.optimizer.learning_rate.numpy()))

    rec = Lrs()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[rec])
    return rec.lrs


@pytest.mark.parametrize("where", ["callback", "train_step", "explicit"])
def test_fit_that_raises_leaves_no_schedule(where, tmp_path):
    # A fit that raised used to leave the hook installed: a later plain fit
    # kept the snapshot schedule's learning rate (0.48 instead of 0.05).
    x, y = toolkit.classification_data(32, 8, 3)
    model = _model()  # SGD(0.01)
    snap = SnapshotEnsemble(cycles=2, max_lr=0.5, directory=tmp_path)
    if where == "train_step":
        data = toolkit.failing_data(x, y)
        # (TensorFlow reports the generator's KeyboardInterrupt as an error.)
        with pytest.raises(BaseException, match="KeyboardInterrupt|^$") as info:
            model.fit(
                data, epochs=3, verbose=0, callbacks=[snap, toolkit.arm_at(data, 1)]
            )
        assert info.type is KeyboardInterrupt or "KeyboardInterrupt" in str(info.value)
        # Put back at once, before any other call.
        assert "train_step" not in model.__dict__
        assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    else:
        with pytest.raises(OSError, match="No space"):
            model.fit(
                x, y, batch_size=8, epochs=3, verbose=0, callbacks=[snap, _FailAt(0)]
            )
        if where == "explicit":
            assert remove_train_step_hooks(model) == 1
            assert "train_step" not in model.__dict__
            assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    assert _plain_lrs(model, x, y) == pytest.approx([0.01, 0.01])
    assert "train_step" not in model.__dict__
    assert "make_train_function" not in model.__dict__
