"""Atomic file writes that respect the umask.

Each writer fills a temporary file beside the target and renames it over the target, so a
reader (or a rerun after a crash) sees either the old file or the complete new one, never a
half-written one. The temporary file is created with ``os.open(..., 0o666)`` rather than
``tempfile.mkstemp`` (always 0600), so the finished file gets the permissions the process's
umask allows, as a plain ``open(path, "w")`` would: results on a shared machine stay readable
by colleagues when the umask says so.

A temporary file's name carries its writer's host and pid (``.<name>.<host>.<pid>.<random>
.tmp``), so ``sweep_stale_temp_files`` removes only those whose writer is gone, never a write
another live process has in flight.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

TEMP_SUFFIX = ".tmp"
# This machine, as written into temp file names (dots would split the name's fields).
HOST = socket.gethostname().replace(".", "_")
# A temp file this old is abandoned whoever wrote it (a writer on another host cannot be
# asked whether it is alive).
STALE_AFTER_S = 24 * 3600


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (parent directories are created)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write_with(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically (parent directories are created)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Atomic write through a writer that takes a path (parquet, PNG, npz, JSON).

    ``write`` receives the path of an empty temporary file in the target's directory (named
    ``.<name>.<host>.<pid>.<random>.tmp``) and fills it; the file is then flushed to disk and
    renamed over ``path``. On any error, the temporary file is removed and ``path`` is left as
    it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_beside(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_exclusive_text(path: str | os.PathLike, text: str) -> bool:
    """Creates ``path`` holding ``text`` unless it exists; True when this call created it.

    The text goes to a temporary file first, which is then hard-linked to ``path`` (a link
    fails when the target exists, on NFS too), so another process sees either no file or
    the whole text, never an empty file that ``O_EXCL`` creation shows until its write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_beside(path)
    try:
        # No fsync: the file only tells live processes who holds a run; after a crash it
        # is stale whatever it holds.
        tmp.write_text(text, encoding="utf-8")
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _create_temp_beside(path: Path) -> Path:
    """A new empty file next to ``path``; its mode is 0666 less the umask."""
    while True:
        tmp = path.with_name(
            f".{path.name}.{HOST}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        )
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def _fsync(path: Path) -> None:
    """Flushes a written file to disk, so the rename never exposes an empty file after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def writer_gone(host: str, pid: str, mtime: float, max_age_s: float = STALE_AFTER_S) -> bool:
    """Whether the process that left a file (temp file, claim) is gone: it ran on this host
    and no longer exists, or the file is older than ``max_age_s``."""
    if time.time() - mtime > max_age_s:
        return True
    return host == HOST and pid.isdigit() and not pid_alive(int(pid))


def sweep_stale_temp_files(directory: str | os.PathLike) -> int:
    """Deletes the temp files of interrupted writes in ``directory`` whose writer is gone;
    returns how many. An untagged temp file is judged by its age alone."""
    removed = 0
    for path in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        parts = path.name[1 : -len(TEMP_SUFFIX)].rsplit(".", 3)
        host, pid = (parts[1], parts[2]) if len(parts) == 4 else ("", "")
        try:
            stale = writer_gone(host, pid, path.stat().st_mtime)
        except FileNotFoundError:
            continue
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
