"""Atomic file writes: a temporary file next to the target, then `os.replace`.

Private plumbing of kerasreg (snapshots, datasets, reports, figures): the
names may change between releases.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

__all__ = ["atomic_path", "atomic_write_text"]

_ATTEMPTS = 100


def _create_temporary(folder: str, prefix: str, suffix: str) -> str:
    """Creates an empty, new file `folder/prefix<random>suffix`; returns its path.

    The file is opened with `O_CREAT | O_EXCL` and mode `0o666`, so the kernel
    applies the process umask itself, exactly as for a file created by
    `open(path, "w")`. Nothing reads or sets the umask (`os.umask` changes it
    for every thread of the process), and no `chmod` is needed afterwards.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        path = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"No unused temporary file name in {folder!r}.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """A temporary file next to `path` that replaces `path` once written.

    Write to the yielded path (an empty file that already exists) inside the
    `with` block; when the block ends without an error the file is flushed to
    disk (`fsync`) and moved over `path` with `os.replace` (atomic on POSIX
    and Windows), so a reader never sees a half-written file and an
    interrupted or crashed writer leaves the old file untouched. On an error
    the temporary file is removed. The folder is created if needed.

    Permissions: the file gets those of any newly created file, `0o666` less
    the umask (not the `0o600` of `tempfile.mkstemp`): the temporary file is
    created with mode `0o666` and the kernel applies the umask. A file that
    is replaced does not pass its own mode on.

    Args:
        path: The file to write.
        suffix: Ending of the temporary name, for writers that look at it
            (`".weights.h5"` for `Model.save_weights`). Defaults to the
            extension of `path`.

    Example:

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "table.md")
    >>> with atomic_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("| a |")
    >>> open(target).read()
    '| a |'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    tmp = _create_temporary(folder, f".{os.path.basename(path)}.", suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` through `atomic_path` (all or nothing)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
