"""The base every kerasreg callback shares, and the owned-backup helper."""

from __future__ import annotations

import logging
import sys

import keras

from kerasreg import utils


class ConfigurableCallback(keras.callbacks.Callback):
    """A callback that `from_config` and `copy.deepcopy` rebuild from its arguments.

    keras-tuner deep-copies the callbacks for every trial. The model a
    callback is attached to, its sibling callbacks and any per-run state are
    not the callback's to copy, so a deep copy is a fresh instance built from
    `get_config()` (plus `_copy_kwargs()` for arguments that are not part of
    the config), exactly what `from_config` builds.
    """

    def _copy_kwargs(self) -> dict:
        """Constructor arguments of a copy; the config unless overridden."""
        return self.get_config()

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __deepcopy__(self, memo):
        clone = type(self)(**self._copy_kwargs())
        memo[id(self)] = clone
        return clone


class OwnedBackup:
    """A `keras.callbacks.BackupAndRestore` run by the callback that owns it.

    Keras gives a callback no link to its siblings, so a callback that must
    coordinate with a backup is given it explicitly (a `backup=` argument)
    and runs the backup's hooks itself, at its own place in the callback
    list; the backup is then *not* passed to `fit` as well. The owner calls
    `set_model`, `train_begin`, `train_batch_end`, `epoch_end` and
    `train_end` from its own hooks, and `hold()` to skip the backup's saves
    and clean-up for the rest of the `fit` (the backup on disk stays as it
    is); the next `train_begin` releases it. Only the public
    `BackupAndRestore` hooks and constructor arguments are used.

    Args:
        backup: The `keras.callbacks.BackupAndRestore` to run, or `None`
            (every method is then a no-op).
    """

    def __init__(self, backup):
        if backup is not None and not isinstance(
            backup, keras.callbacks.BackupAndRestore
        ):
            raise utils.invalid_value(
                "backup", "a `keras.callbacks.BackupAndRestore` or None", backup
            )
        self.backup = backup
        self.held = False

    @property
    def saves_per_batch(self) -> bool:
        """Whether the backup saves every few batches (an integer `save_freq`).

        Such a backup writes files from `on_train_batch_end`, which must not
        run in Keras's callback thread pool: the owner is then not
        `async_safe`.
        """
        return self.backup is not None and self.backup.save_freq != "epoch"

    def copy(self):
        """A new, unused `BackupAndRestore` with the same arguments (or None)."""
        b = self.backup
        if b is None:
            return None
        return keras.callbacks.BackupAndRestore(
            b.backup_dir,
            save_freq=b.save_freq,
            double_checkpoint=b.double_checkpoint,
            delete_checkpoint=b.delete_checkpoint,
        )

    def hold(self) -> None:
        """Skips the backup's saves and clean-up until the next `train_begin`."""
        self.held = True

    def set_model(self, model) -> None:
        if self.backup is not None:
            self.backup.set_model(model)

    def set_params(self, params) -> None:
        if self.backup is not None:
            self.backup.set_params(params)

    def train_begin(self, logs=None) -> None:
        """Loads the backup (if any), as `BackupAndRestore.on_train_begin`."""
        self.held = False
        if self.backup is not None:
            self.backup.on_train_begin(logs)

    def train_batch_end(self, batch, logs=None) -> None:
        if self.saves_per_batch and not self.held:
            self.backup.on_train_batch_end(batch, logs)

    def epoch_end(self, epoch, logs=None) -> None:
        if self.backup is not None and not self.held:
            self.backup.on_epoch_end(epoch, logs)

    def train_end(self, logs=None) -> None:
        if self.backup is not None and not self.held:
            self.backup.on_train_end(logs)


class BackupOwnerCallback(ConfigurableCallback):
    """A `ConfigurableCallback` that runs a `BackupAndRestore` it is given.

    Subclasses call `super().__init__(backup)` and the `OwnedBackup` hooks
    (`self._backup.train_begin(...)`, ...) from their own; model and params
    are passed on here. A deep copy gets a new backup with the same
    arguments; the backup is not part of the config.
    """

    def __init__(self, backup=None):
        super().__init__()
        self._backup = OwnedBackup(backup)

    def _copy_kwargs(self) -> dict:
        return {**self.get_config(), "backup": self._backup.copy()}

    @property
    def backup(self) -> keras.callbacks.BackupAndRestore | None:
        """The `BackupAndRestore` the callback runs (None: none)."""
        return self._backup.backup

    @property
    def async_safe(self) -> bool:
        """Whether Keras may run the batch hooks in its thread pool.

        True (the subclasses' batch hooks only read the logs) unless the
        owned `backup` saves every few batches.
        """
        return not self._backup.saves_per_batch

    def set_model(self, model):
        super().set_model(model)
        self._backup.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self._backup.set_params(params)


def print_msg(message: str) -> None:
    """Prints a callback's message as Keras's own callbacks do.

    To stdout while Keras's interactive logging is on (the default), else to
    the `kerasreg` logger (`keras.config.disable_interactive_logging()`
    moves Keras's messages to logging, and ours with them). Callbacks call it
    only when their `verbose` argument asks for it.
    """
    if keras.config.is_interactive_logging_enabled():
        sys.stdout.write(message + "\n")
        sys.stdout.flush()
    else:
        logging.getLogger("kerasreg").info(message)
