"""Run checkpoints with orbax-checkpoint's V0 ``CheckpointManager`` (the only orbax user).

A checkpoint is a loop state (``jtcaug.train.loop.LoopState``: train state, best state,
early-stopping counters, history, key) plus a small JSON ``meta`` dict, under
``DIR/<epoch>/``. Orbax writes each step to a temporary directory and renames it, so a
crash never leaves a half-written checkpoint behind.

Orbax does not notice later damage (a truncated or bit-flipped data file restores garbage or
fails deep inside its async machinery), so every step directory also gets a checksum file,
``DIR/<epoch>/jtcaug-sha256.json`` (size and SHA-256 of every other file), written atomically
once orbax has finished the step. A step without it, or whose files differ from it, is
damaged: ``restore`` raises ``CheckpointDamaged`` before orbax reads anything, and
``quarantine`` moves the step aside so the caller can fall back to an older one.

The directory is created by the first ``save``, never by opening or reading, so a run that
fails before its first checkpoint leaves no empty ``DIR`` behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import TypeVar

import jax
import orbax.checkpoint as ocp

from jtcaug.io import atomic_write_text

T = TypeVar("T")

CHECKSUM_FILE = "jtcaug-sha256.json"
_CHECKSUM_FORMAT = 1
# Orbax's own step-name pattern (no prefix, no padding); quarantined steps never match it.
_STEP_NAME = re.compile(r"^(0|[1-9]\d*)$")


class CheckpointDamaged(Exception):
    """A step directory that cannot be trusted; ``reason`` says why in a few words."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"checkpoint {path} is damaged: {reason}")
        self.path = path
        self.reason = reason


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, permissions, a file in the way)."""


class Checkpointer:
    """Saves and restores loop states by epoch. Use as a context manager.

    Saving waits until orbax has finished the step and its checksum file is written, so a
    checkpoint that ``latest_epoch`` reports is complete and verifiable.
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
        self.directory = Path(directory).resolve()
        self._max_to_keep = max_to_keep
        self._manager: ocp.CheckpointManager | None = None
        self._verified: set[int] = set()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None

    def _open(self) -> ocp.CheckpointManager:
        if self._manager is None:
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=self._max_to_keep, create=True),
                item_names=("state", "meta"),
            )
        return self._manager

    def epochs(self) -> list[int]:
        """Epochs that have a step directory (complete or damaged), oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            int(entry.name)
            for entry in self.directory.iterdir()
            if _STEP_NAME.match(entry.name) and entry.is_dir()
        )

    def latest_epoch(self) -> int | None:
        """Epoch of the newest step directory, None if there is none."""
        epochs = self.epochs()
        return epochs[-1] if epochs else None

    def step_path(self, epoch: int) -> Path:
        return self.directory / str(int(epoch))

    def save(self, epoch: int, state, meta: dict) -> None:
        """Saves ``state`` (a pytree of arrays) and ``meta`` (JSON-ready) as ``epoch``."""
        step = self.step_path(epoch)
        try:
            # Made here rather than by orbax: orbax's failure would leave its background
            # threads timing out with pages of tracebacks after the error is reported.
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CheckpointWriteError(
                f"cannot write checkpoint {step}: {err.strerror or err}"
            ) from None
        try:
            manager = self._open()
            manager.save(
                int(epoch),
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                ),
                force=True,
            )
            manager.wait_until_finished()
            atomic_write_text(step / CHECKSUM_FILE, json.dumps(_checksums(step), indent=1) + "\n")
        except Exception as err:  # orbax raises many types; any of them means not saved
            raise CheckpointWriteError(f"cannot write checkpoint {step}: {_one_line(err)}") from err
        self._verified.add(int(epoch))

    def verify(self, epoch: int) -> None:
        """Checks the step's files against its checksum file.

        Raises:
          CheckpointDamaged: no checksum file, or a file missing, added, resized or changed.
        """
        epoch = int(epoch)
        if epoch in self._verified:
            return
        step = self.step_path(epoch)
        try:
            if not any(step.iterdir()):
                raise CheckpointDamaged(step, "it is empty")
        except OSError as err:
            raise CheckpointDamaged(step, f"it cannot be read ({err})") from None
        try:
            recorded = json.loads((step / CHECKSUM_FILE).read_text())
        except FileNotFoundError:
            raise CheckpointDamaged(step, f"it has no {CHECKSUM_FILE}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise CheckpointDamaged(step, f"its {CHECKSUM_FILE} is unreadable ({err})") from None
        if not (
            isinstance(recorded, dict)
            and recorded.get("format") == _CHECKSUM_FORMAT
            and isinstance(recorded.get("files"), dict)
        ):
            raise CheckpointDamaged(step, f"its {CHECKSUM_FILE} is not a checksum record")
        try:
            actual = _checksums(step)
        except OSError as err:
            raise CheckpointDamaged(step, f"it cannot be read ({err})") from None
        problem = _first_difference(recorded["files"], actual)
        if problem:
            raise CheckpointDamaged(step, problem)
        self._verified.add(epoch)

    def restore_meta(self, epoch: int) -> dict:
        """The ``meta`` dict saved with ``epoch`` (verified first).

        Raises:
          CheckpointDamaged: the step fails verification or orbax cannot read it.
        """
        self.verify(epoch)
        try:
            restored = self._open().restore(
                int(epoch), args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
            meta = restored["meta"]
        except Exception as err:  # orbax raises many types; any of them means unusable
            raise CheckpointDamaged(self.step_path(epoch), _one_line(err)) from None
        if not isinstance(meta, dict):
            raise CheckpointDamaged(self.step_path(epoch), "its meta is not a JSON object")
        return dict(meta)

    def restore(self, epoch: int, like: T) -> tuple[T, dict]:
        """Restores ``epoch`` (verified first) into the structure, shapes and dtypes of ``like``.

        Raises:
          CheckpointDamaged: the step fails verification or orbax cannot read it.
        """
        self.verify(epoch)
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        try:
            restored = self._open().restore(
                int(epoch),
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as err:  # orbax raises many types; any of them means unusable
            raise CheckpointDamaged(self.step_path(epoch), _one_line(err)) from None
        return restored["state"], dict(restored["meta"])

    def quarantine(self, epoch: int) -> Path:
        """Moves a damaged step aside (kept for inspection, ignored as a step); returns where."""
        step = self.step_path(epoch)
        name = f"{step.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        target, n = step.with_name(name), 0
        while target.exists():
            n += 1
            target = step.with_name(f"{name}-{n}")
        os.replace(step, target)
        self._verified.discard(int(epoch))
        if self._manager is not None:
            self._manager.reload()
        return target

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        if self._manager is not None:
            self._manager.wait_until_finished()


def _checksums(step: Path) -> dict:
    """The checksum record of every file under ``step`` but the checksum file itself."""
    files = {}
    for path in sorted(step.rglob("*")):
        relative = path.relative_to(step).as_posix()
        if relative == CHECKSUM_FILE or not path.is_file():
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        files[relative] = {"size": path.stat().st_size, "sha256": digest.hexdigest()}
    return {"format": _CHECKSUM_FORMAT, "files": files}


def _first_difference(recorded: dict, actual: dict) -> str | None:
    """A few words naming the first file that differs, None if none does."""
    present = actual["files"]
    for name in sorted(recorded):
        if name not in present:
            return f"{name} is missing"
        entry = recorded[name]
        if not isinstance(entry, dict):
            return f"its {CHECKSUM_FILE} is not a checksum record"
        if entry.get("size") != present[name]["size"]:
            return f"{name} has {present[name]['size']} bytes, {entry.get('size')} were written"
        if entry.get("sha256") != present[name]["sha256"]:
            return f"{name} does not match its checksum"
    added = sorted(set(present) - set(recorded))
    if added:
        return f"{added[0]} was not written with it"
    return None


def _one_line(err: BaseException) -> str:
    """The first line of an exception's message, with its type when the message is empty."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
