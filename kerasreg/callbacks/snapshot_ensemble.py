"""Snapshot ensembles with SGDR cosine restarts, the learning rate set every batch."""

from __future__ import annotations

import json
import math
import os
import re

import keras
import numpy as np

from kerasreg import _io, utils
from kerasreg._snapshots import (
    NAME_PATTERN,
    last_snapshots,
    load_snapshots,
    snapshot_name,
)
from kerasreg.callbacks._base import ConfigurableCallback, print_msg
from kerasreg.callbacks._train_step_hook import TrainStepHook

MANIFEST = ".kerasreg_snapshots.json"
# Temporary files of `_io.atomic_path` for our snapshots and manifest.
_TEMPORARY = re.compile(
    r"^\.("
    + NAME_PATTERN
    + r"\..+\.weights\.h5"
    + "|"
    + re.escape(MANIFEST)
    + r"\..+\.json)$"
)


def cycle_boundaries(
    epochs: int, cycles: int, epochs_per_cycle: float | None, cycle_mult: float
) -> list[int]:
    """The epochs at which each cycle ends (cumulative, integers).

    Cycle `k` lasts `epochs_per_cycle * cycle_mult ** k` epochs (rounded on
    the cumulative sum); with `epochs_per_cycle=None` the cycles fill
    `epochs` exactly.
    """
    lengths = [cycle_mult**k for k in range(cycles)]
    if epochs_per_cycle is None:
        first = epochs / sum(lengths)
    else:
        first = float(epochs_per_cycle)
    ends = [int(round(first * s)) for s in np.cumsum(lengths)]
    if epochs_per_cycle is None:
        ends[-1] = epochs
    starts = [0, *ends[:-1]]
    if any(e <= s for s, e in zip(starts, ends)):
        raise ValueError(
            f"SnapshotEnsemble: {cycles} cycles do not fit in {epochs} epochs "
            f"(cycle ends {ends}); use fewer cycles or more epochs."
        )
    return ends


def snapshot_learning_rate(position, ends, max_lr: float, min_lr: float):
    """The learning rate at `position` (in epochs, may be fractional).

    Cosine annealing from `max_lr` to `min_lr` within each cycle, restarting
    at each cycle's start (SGDR); `min_lr` after the last cycle. Works on
    floats, NumPy arrays and `keras.ops` tensors.
    """
    ops = keras.ops
    position = ops.cast(position, "float32")
    starts = [0, *ends[:-1]]
    lr = ops.full_like(position, min_lr)
    for start, end in reversed(list(zip(starts, ends))):
        frac = (position - start) / float(end - start)
        cos = min_lr + 0.5 * (max_lr - min_lr) * (1.0 + ops.cos(math.pi * frac))
        inside = ops.logical_and(position >= start, position < end)
        lr = ops.where(inside, cos, lr)
    return lr


@utils.register
class SnapshotEnsemble(ConfigurableCallback):
    """Snapshot ensembles: cosine cycles with restarts, a snapshot per cycle.

    The learning rate follows SGDR (Loshchilov and Hutter 2017): within each
    cycle it decreases from `max_lr` to `min_lr` along a cosine, and jumps
    back to `max_lr` at the next cycle's start. It is set **every batch**,
    inside the compiled train step (the optimizer's learning-rate variable
    is updated from its iteration counter; no per-batch Python hook, so
    Keras's asynchronous callback dispatch stays on). At the end of each
    cycle the weights are saved atomically (a temporary file in the same
    folder, then `os.replace`) to `directory/snapshot_XXX.weights.h5` and
    listed in `snapshots`; `ensemble(last=m)` returns the `Ensemble` of the
    last `m` snapshots (Huang et al. 2017).

    Cycle `k` lasts `epochs_per_cycle * cycle_mult ** k` epochs; with
    `epochs_per_cycle=None` the `cycles` cycles fill the `epochs` of `fit`.
    After the last cycle the learning rate stays at `min_lr`.

    Give each cycle enough epochs to converge. Otherwise every snapshot is
    clearly better than the one before, and averaging in the early ones
    loses to the last snapshot alone. On 4,000-9,000 CIFAR-10 images with
    small CNNs, 5 cycles of 5-10 epochs lost 0.3-1 point to the final model,
    cycles of 15 epochs gained 0.5 and cycles of 30 epochs about 1 point
    (`benchmarks/RESULTS.md`). On short budgets, average only the last few
    snapshots (`ensemble(last=m)`, with `m` chosen on validation data).

    Resuming: the schedule is a function of the epoch and the optimizer's
    iteration counter, both restored by `keras.callbacks.BackupAndRestore`,
    so an interrupted run resumes at the right learning rate, and the
    snapshots of the completed cycles (found in `directory`) are listed
    again.

    Files: the callback lists every snapshot it writes in a manifest,
    `directory/.kerasreg_snapshots.json` (written atomically, before the
    snapshot itself). A fresh run (starting at epoch 0) removes the
    snapshots of the manifest, and only those: other files, also
    `snapshot_*.weights.h5` files the callback did not write, stay. Every
    run first removes temporary files of its own naming
    (`.snapshot_XXX.weights.h5.*.weights.h5`) left by a process killed
    while it saved a snapshot. `directory` is created with the first
    snapshot (constructing the callback creates nothing).

    The optimizer needs a float (variable) learning rate, not a
    `LearningRateSchedule`; it is put back to its value of before `fit` at
    the end, also when `fit` raises (see
    `kerasreg.callbacks._train_step_hook`).

    Args:
        cycles: Number of cycles (snapshots), >= 1.
        epochs_per_cycle: Length of the first cycle in epochs, or None to
            fill `fit`'s epochs. Defaults to `None`.
        max_lr: Learning rate at each cycle's start. Defaults to `0.1`.
        min_lr: Learning rate at each cycle's end, <= `max_lr`.
            Defaults to `0.0`.
        cycle_mult: Growth factor of the cycle length (SGDR's T_mult).
            Defaults to `1.0`.
        directory: Folder for the snapshots (created with the first
            snapshot; must be a writable folder or creatable). Defaults to
            `"snapshots"`.
        keep: Keep only the last `keep` snapshot files, or None for all.
            Defaults to `None`.
        verbose: Print a line per snapshot. Defaults to `0`.

    Example:

    >>> import numpy as np, tempfile
    >>> model = keras.Sequential([keras.Input((4,)),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("sgd", "sparse_categorical_crossentropy")
    >>> snap = SnapshotEnsemble(cycles=2, max_lr=0.1,
    ...                         directory=tempfile.mkdtemp())
    >>> _ = model.fit(np.ones((32, 4)), np.zeros(32), epochs=4, verbose=0,
    ...               callbacks=[snap])
    >>> len(snap.snapshots)
    2
    >>> ensemble = snap.ensemble(last=2)

    Reference:
        Huang et al., Snapshot ensembles: train 1, get M for free, ICLR 2017;
        Loshchilov and Hutter, SGDR: stochastic gradient descent with warm
        restarts, ICLR 2017.
    """

    def __init__(
        self,
        cycles: int,
        epochs_per_cycle: float | None = None,
        max_lr: float = 0.1,
        min_lr: float = 0.0,
        cycle_mult: float = 1.0,
        directory: str | os.PathLike = "snapshots",
        keep: int | None = None,
        verbose: int = 0,
    ):
        super().__init__()
        self.cycles = utils.check_int("cycles", cycles, 1)
        if epochs_per_cycle is not None:
            epochs_per_cycle = utils.check_float(
                "epochs_per_cycle", epochs_per_cycle, 0.0, low_inclusive=False
            )
        self.epochs_per_cycle = epochs_per_cycle
        self.max_lr = utils.check_float("max_lr", max_lr, 0.0, low_inclusive=False)
        self.min_lr = utils.check_float("min_lr", min_lr, 0.0)
        if self.min_lr > self.max_lr:
            raise utils.invalid_value(
                "min_lr", f"a float value in [0, max_lr={self.max_lr:g}]", min_lr
            )
        self.cycle_mult = utils.check_float(
            "cycle_mult", cycle_mult, 0.0, low_inclusive=False
        )
        if keep is not None:
            keep = utils.check_int("keep", keep, 1)
        self.keep = keep
        self.directory = _check_directory(directory)
        self.verbose = utils.check_verbose("verbose", verbose)
        self._reset()

    def _reset(self):
        self.snapshots = []
        self.ends = None
        self.lr_history = []  # the learning rate at each epoch's start
        self._hook = None
        self._first_epoch = None
        self._lr_before = None

    def get_config(self):
        return {
            "cycles": self.cycles,
            "epochs_per_cycle": self.epochs_per_cycle,
            "max_lr": self.max_lr,
            "min_lr": self.min_lr,
            "cycle_mult": self.cycle_mult,
            "directory": self.directory,
            "keep": self.keep,
            "verbose": self.verbose,
        }

    # -- schedule ------------------------------------------------------------

    def learning_rate_at(self, position):
        """The learning rate at `position` epochs into training."""
        return snapshot_learning_rate(position, self.ends, self.max_lr, self.min_lr)

    def snapshot_path(self, cycle: int) -> str:
        """Where the snapshot of cycle `cycle` is saved."""
        return os.path.join(self.directory, snapshot_name(cycle))

    # -- hooks ---------------------------------------------------------------

    @property
    def manifest_path(self) -> str:
        """The file listing the snapshots this callback wrote."""
        return os.path.join(self.directory, MANIFEST)

    def _read_manifest(self) -> list[str]:
        try:
            with open(self.manifest_path, encoding="utf-8") as f:
                names = json.load(f).get("snapshots", [])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, AttributeError) as e:
            raise ValueError(
                f"SnapshotEnsemble: cannot read the manifest {self.manifest_path} "
                f"({e}). Delete it to start afresh (the snapshots it listed are "
                "then left in place)."
            ) from None
        return [n for n in names if isinstance(n, str) and n == os.path.basename(n)]

    def _write_manifest(self, names) -> None:
        text = json.dumps({"snapshots": sorted(set(names))}, indent=1)
        _io.atomic_write_text(self.manifest_path, text + "\n")

    def _remove_stale_temporaries(self) -> None:
        """Removes temporaries of our naming left by a killed save."""
        if not os.path.isdir(self.directory):
            return
        for name in os.listdir(self.directory):
            if _TEMPORARY.match(name):
                try:
                    os.remove(os.path.join(self.directory, name))
                except FileNotFoundError:
                    pass

    def on_train_begin(self, logs=None):
        if self._hook is not None:
            self._hook.abort()  # an earlier fit that raised
        self._reset()
        self._remove_stale_temporaries()
        epochs = int(self.params.get("epochs") or 0)
        self.ends = cycle_boundaries(
            epochs, self.cycles, self.epochs_per_cycle, self.cycle_mult
        )
        optimizer = self.model.optimizer
        if optimizer is None:
            raise ValueError("SnapshotEnsemble needs a compiled model.")
        # The learning rate and the iteration counter exist before the
        # optimizer is built; building it here, before `fit` has built an
        # unbuilt model, would tie it to no variables at all.
        lr = optimizer.learning_rate
        if not isinstance(lr, keras.Variable):
            schedule = optimizer.get_config().get("learning_rate")
            if isinstance(schedule, dict):  # a serialized schedule
                schedule = schedule.get("class_name", schedule)
            raise ValueError(
                "SnapshotEnsemble sets the learning rate itself: compile the "
                "model with an optimizer whose `learning_rate` is a float, not "
                f"a schedule. Received: learning_rate={schedule}"
            )
        self._lr_var = lr
        self._lr_before = float(lr.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._start(epoch)
        self.lr_history.append(float(self._lr_var.numpy()))

    def _start(self, epoch):
        steps = self.params.get("steps")
        if not steps:
            raise ValueError(
                "SnapshotEnsemble sets the learning rate every batch and needs "
                "the number of steps per epoch: pass `steps_per_epoch` to `fit` "
                "(the dataset's length is unknown)."
            )
        self._first_epoch = epoch
        optimizer = self.model.optimizer
        it0 = int(optimizer.iterations.numpy())
        e0, per_step = float(epoch), 1.0 / float(steps)
        # Snapshots of cycles completed before a resumed run.
        done = sum(1 for end in self.ends if end <= epoch)
        if epoch == 0:  # a fresh run: remove what earlier runs wrote here
            for name in self._read_manifest():
                path = os.path.join(self.directory, name)
                if os.path.exists(path):
                    os.remove(path)
            if os.path.exists(self.manifest_path):
                self._write_manifest([])
        self.snapshots = [
            self.snapshot_path(c)
            for c in range(done)
            if os.path.exists(self.snapshot_path(c))
        ]
        self._lr_var.assign(float(self.learning_rate_at(np.float32(epoch))))

        def update(values, trainable, non_trainable):
            lr, iterations = values
            # The learning rate of the next step.
            position = e0 + keras.ops.cast(iterations - it0, "float32") * per_step
            new_lr = keras.ops.cast(self.learning_rate_at(position), lr.dtype)
            return [new_lr, iterations]

        self._hook = TrainStepHook(
            [self._lr_var, optimizer.iterations], update, on_abort=self._abort
        )
        self._hook.install(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["snapshot_lr"] = self.lr_history[-1] if self.lr_history else None
        if epoch + 1 not in self.ends:
            return
        cycle = self.ends.index(epoch + 1)
        path = self.snapshot_path(cycle)
        # Listed first: a process killed in between leaves no file unlisted.
        names = self._read_manifest()
        if os.path.basename(path) not in names:
            self._write_manifest([*names, os.path.basename(path)])
        _save_weights_atomically(self.model, path)
        self.snapshots = [p for p in self.snapshots if p != path] + [path]
        if self.keep is not None:
            while len(self.snapshots) > self.keep:
                old = self.snapshots.pop(0)
                if os.path.exists(old):
                    os.remove(old)
                self._write_manifest(
                    [n for n in self._read_manifest() if n != os.path.basename(old)]
                )
        if self.verbose:
            print_msg(f"\nSnapshotEnsemble: cycle {cycle} done, saved {path}")

    def on_train_end(self, logs=None):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._lr_before is not None:
            self._lr_var.assign(self._lr_before)

    def _abort(self):
        """The hook's `on_abort` (a fit that raised): the user's learning rate."""
        self._hook = None
        if self._lr_before is not None:
            self._lr_var.assign(self._lr_before)

    # -- ensembles -------------------------------------------------------------

    def ensemble(self, last: int | None = None, build_fn=None, **kwargs):
        """The `Ensemble` of the last `last` snapshots (all by default).

        Args:
            last: Number of snapshots, counted from the end. Defaults to all.
            build_fn: Returns a fresh model of the snapshot architecture;
                defaults to `keras.models.clone_model(model)`.
            **kwargs: Passed to `Ensemble` (`reduce`, `weights`, ...).
        """
        from kerasreg.ensembles import Ensemble

        paths = last_snapshots(self.snapshots, last)
        if not paths:
            raise ValueError("SnapshotEnsemble: no snapshot has been saved yet.")
        model = self.model
        build_fn = build_fn or (lambda: keras.models.clone_model(model))
        return Ensemble(load_snapshots(paths, build_fn), **kwargs)


def _check_directory(directory) -> str:
    """Checks that `directory` is a writable folder or can be created.

    Creates nothing: the folder is made with the first snapshot.
    """
    if not isinstance(directory, (str, os.PathLike)) or os.fspath(directory) == "":
        raise utils.invalid_value(
            "directory", "a folder path (a non-empty str or os.PathLike)", directory
        )
    path = os.fspath(directory)
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        problem = "Not a directory"
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = "Permission denied"
    else:
        return path
    raise utils.invalid_value(
        "directory", f"a writable folder ({problem}: {probe})", directory
    )


def _save_weights_atomically(model, path: str) -> None:
    """`model.save_weights(path)` through a temporary file and `os.replace`."""
    with _io.atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
