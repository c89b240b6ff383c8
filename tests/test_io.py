"""Atomic writes (`kerasreg._io`): all or nothing, usual permissions."""

import os

import pytest

from kerasreg import _io
from tests import toolkit


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "table.md"
    _io.atomic_write_text(target, "old")
    assert target.read_text() == "old"
    with pytest.raises(RuntimeError):
        with _io.atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    # The old file is intact and no temporary file is left behind.
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["table.md"]
    with _io.atomic_path(target) as tmp:
        assert tmp.endswith(".md") and os.path.dirname(tmp) == str(target.parent)
        with open(tmp, "w") as f:
            f.write("new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["table.md"]


def test_atomic_path_docstring_example(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its mkdtemp() folder
    toolkit.assert_docstring_examples(
        _io.atomic_path, name="atomic_path", globs={"atomic_path": _io.atomic_path}
    )


def test_atomic_path_gives_the_usual_permissions(tmp_path):
    target = tmp_path / "weights.txt"
    _io.atomic_write_text(target, "x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_atomic_path_leaves_the_umask_alone(tmp_path, monkeypatch):
    # `os.umask` is process-wide: setting it, even to read it, races with
    # files other threads create meanwhile.
    def no_umask(mask):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", no_umask)
    _io.atomic_write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").read_text() == "x"


def test_atomic_path_replaces_an_existing_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    _io.atomic_write_text(target, "new")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.read_text() == "new"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)
