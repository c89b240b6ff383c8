"""The base every kerasreg callback shares: rebuilt from its arguments."""

from __future__ import annotations

import sys

import keras


def find_callback_list(callback):
    """The `keras.callbacks.CallbackList` that is calling `callback`, or None.

    Keras gives a callback no link to its siblings; the list that dispatches
    `on_train_begin` is the caller a few frames up.
    """
    frame = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(
            c is callback for c in owner.callbacks
        ):
            return owner
        frame = frame.f_back
    return None


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
