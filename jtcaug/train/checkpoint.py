"""Run checkpoints with orbax-checkpoint's V0 ``CheckpointManager`` (the only orbax user).

A checkpoint is a loop state (``jtcaug.train.loop.LoopState``: train state, best state,
early-stopping counters, history, key) plus a small JSON ``meta`` dict, under
``DIR/<epoch>/``. Orbax writes each step to a temporary directory and renames it, so a
crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import jax
import orbax.checkpoint as ocp

T = TypeVar("T")


class Checkpointer:
    """Saves and restores loop states by epoch. Use as a context manager.

    Saving is asynchronous; leaving the ``with`` block waits for pending saves and closes
    the manager (an unclosed manager makes the process time out at exit).
    """

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
        self.directory = Path(directory).resolve()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
            item_names=("state", "meta"),
        )

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def latest_epoch(self) -> int | None:
        """Epoch of the newest complete checkpoint, None if there is none."""
        return self._manager.latest_step()

    def save(self, epoch: int, state, meta: dict) -> None:
        """Saves ``state`` (a pytree of arrays) and ``meta`` (JSON-ready) as ``epoch``."""
        self._manager.save(
            int(epoch),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )

    def restore(self, epoch: int, like: T) -> tuple[T, dict]:
        """Restores epoch ``epoch`` into the structure, shapes and dtypes of ``like``."""
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        restored = self._manager.restore(
            int(epoch),
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], dict(restored["meta"])

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()
