"""``jtcaug.io``: atomic writes keep the old file on failure and respect the umask;
exclusive creation never replaces a file."""

import os
import stat

import pytest

from jtcaug.io import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
    create_exclusive_text,
)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Sets a umask for one test and restores the previous one."""
    previous = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_files_get_the_mode_the_umask_allows(tmp_path, umask, mask):
    umask(mask)
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "text")
    atomic_write_with(tmp_path / "c.dat", lambda p: p.write_bytes(b"via path"))
    for name in ("a.bin", "b.txt", "c.dat"):
        assert _mode(tmp_path / name) == 0o666 & ~mask
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text() == "text"
    assert (tmp_path / "c.dat").read_bytes() == b"via path"


def test_replaces_an_existing_file_and_creates_parents(tmp_path):
    target = tmp_path / "deep" / "er" / "file.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def half_then_fail(path):
        path.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write_with(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_an_interrupted_write_leaves_no_temp_file(tmp_path):
    def interrupted(path):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(tmp_path / "file.txt", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_exclusive_creation_writes_once_and_never_replaces(tmp_path):
    path = tmp_path / "sub" / "claim"
    assert create_exclusive_text(path, "first") is True
    assert create_exclusive_text(path, "second") is False
    assert path.read_text() == "first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["claim"]
