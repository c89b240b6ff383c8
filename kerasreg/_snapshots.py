"""Snapshot files: their names, listing them, loading them as models.

The one owner of the snapshot layout, shared by the `SnapshotEnsemble`
callback (which writes them) and `Ensemble.from_snapshots` (which reads
them). Private plumbing: the names may change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

import keras

from kerasreg import utils

__all__ = [
    "NAME_PATTERN",
    "last_snapshots",
    "load_snapshots",
    "snapshot_name",
    "snapshot_paths",
]

_PREFIX, _SUFFIX = "snapshot_", ".weights.h5"
#: A regular expression matching a snapshot's file name.
NAME_PATTERN = re.escape(_PREFIX) + r"\d{3}" + re.escape(_SUFFIX)


def snapshot_name(cycle: int) -> str:
    """The file name of the snapshot taken at the end of cycle `cycle`."""
    return f"{_PREFIX}{cycle:03d}{_SUFFIX}"


def snapshot_paths(directory: str | os.PathLike) -> list[str]:
    """The snapshot weight files in `directory`, oldest first."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    names = sorted(
        n
        for n in os.listdir(directory)
        if n.startswith(_PREFIX) and n.endswith(_SUFFIX)
    )
    return [os.path.join(directory, n) for n in names]


def last_snapshots(paths: Sequence[str], last: int | None) -> list[str]:
    """The last `last` of `paths` (all of them for `None`)."""
    paths = list(paths)
    if last is not None:
        paths = paths[-utils.check_int("last", last, 1) :]
    return paths


def load_snapshots(
    paths: Sequence[str], build_fn: Callable[[], keras.Model]
) -> list[keras.Model]:
    """One fresh model from `build_fn()` per snapshot, its weights loaded."""
    members = []
    for path in paths:
        model = build_fn()
        model.load_weights(path)
        members.append(model)
    return members
