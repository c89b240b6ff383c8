"""The base every kerasreg callback shares: rebuilt from its arguments."""

from __future__ import annotations

import keras


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
