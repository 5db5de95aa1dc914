"""The result store of a campaign directory, safe for concurrent writers by design.

Layout of OUT:
  ``manifest.json``  the campaign configuration; created once, under the store lock, before
                     any work, so a second process with other settings is refused.
  ``runs/<run_id>.json``  one finished run, written atomically, with a SHA-256 of its
                     content; ``<run_id>.npz`` beside it when the run saved arrays.
  ``runs/.claims/<run_id>``  a run some live process is training now (created exclusively),
                     so concurrent drivers share the work instead of doing it twice.
  ``results.parquet``, ``report.md``  built from a fresh read of the result files while the
                     report lock is held, so a report never replaces a newer one.

Writes are atomic (``jtcaug.io``): temp files carry their writer's host and pid, and a
start-up sweep removes only those whose writer is gone (or that are a day old), never another
process's write in flight. Files get the permissions the umask allows.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.grid import CampaignError, RunSpec
from jtcaug.io import (
    HOST,
    atomic_write_text,
    atomic_write_with,
    create_exclusive_text,
    sweep_stale_temp_files,
    writer_gone,
)

MANIFEST = "manifest.json"
RUNS_DIR = "runs"
CLAIMS_DIR = ".claims"
RESULTS = "results.parquet"
RESULT_FORMAT = 2
STORE_LOCK = ".store.lock"
REPORT_LOCK = ".report.lock"


class CorruptResult(Exception):
    """A result file that cannot be trusted; the message says why."""


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Numpy / JAX scalars and arrays to plain JSON types; NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a result file")


def _digest(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _read_json(path: Path) -> Any:
    """Parsed JSON of ``path``; CorruptResult for text that is not (deep nesting included)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptResult(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptResult(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError:
        raise CorruptResult(f"{path.name}: JSON nested too deeply") from None


# --------------------------------------------------------------------------------------------
# Record schema
# --------------------------------------------------------------------------------------------


def _is_number(value, allow_none: bool = False) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value, allow_none: bool = True) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def validate_record(record: Any) -> str | None:
    """What is wrong with a run record (None: nothing). The schema of a finished run."""
    if not isinstance(record, dict):
        return "record is not an object"
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return "record.metrics is not an object"
    for name in ("weighted_f1", "accuracy", "macro_f1"):
        value = metrics.get(name)
        required = name == "weighted_f1"
        if value is None and not required:
            continue
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            return f"metrics.{name} missing or not a number in [0, 1]"
    per_class = metrics.get("per_class", {})
    if not isinstance(per_class, dict) or not all(
        isinstance(v, dict) and all(_is_number(x, allow_none=True) for x in v.values())
        for v in per_class.values()
    ):
        return "metrics.per_class is not an object of numbers per class"
    for name in ("epochs_run", "best_epoch", "n_params"):
        if not _is_count(record.get(name)):
            return f"record.{name} is not a non-negative integer"
    if not _is_number(record.get("wall_time_s"), allow_none=True):
        return "record.wall_time_s is not a number"
    history = record.get("history", {})
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(_is_number(x, allow_none=True) for x in v)
        for v in history.values()
    ):
        return "record.history is not an object of number lists"
    counts = record.get("class_counts_train", {})
    if not isinstance(counts, dict) or not all(_is_count(v, False) for v in counts.values()):
        return "record.class_counts_train is not an object of counts"
    extra = record.get("extra", {})
    if not isinstance(extra, dict) or not all(
        _is_number(v, allow_none=True) for v in extra.values()
    ):
        return "record.extra is not an object of numbers"
    if "arrays" in record and not isinstance(record["arrays"], str):
        return "record.arrays is not a file name"
    return None


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


def validate_manifest(manifest: Any) -> str | None:
    """What is wrong with a manifest's structure (None: nothing)."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    grid = manifest.get("grid")
    if not isinstance(grid, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in grid
    ):
        return "its grid is not a list of configurations"
    return None


def manifest_differences(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two manifests (empty when they agree)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        if key == "grid":
            continue
        if old.get(key) != new.get(key):
            diffs.append(f"{key}: {old.get(key)!r} in OUT, {new.get(key)!r} now")
    old_grid = {c["name"]: c for c in old.get("grid", [])}
    new_grid = {c["name"]: c for c in new.get("grid", [])}
    if removed := sorted(set(old_grid) - set(new_grid)):
        diffs.append(f"grid: configs only in OUT: {', '.join(removed)}")
    if added := sorted(set(new_grid) - set(old_grid)):
        diffs.append(f"grid: configs only now: {', '.join(added)}")
    changed = sorted(n for n in set(old_grid) & set(new_grid) if old_grid[n] != new_grid[n])
    if changed:
        diffs.append(f"grid: configs that changed: {', '.join(changed)}")
    return diffs


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class ResultStore:
    """The files of one campaign directory (see the module docstring)."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.runs_dir = self.out_dir / RUNS_DIR
        self.claims_dir = self.runs_dir / CLAIMS_DIR

    # --- directories and locks ---------------------------------------------------------

    def check_layout(self) -> None:
        """Refuses an OUT (or its subdirectories) that exists as something else than a
        directory, with a message that names it."""
        for path, role in ((self.out_dir, "--out"), (self.runs_dir, "the runs directory")):
            if path.exists() and not path.is_dir():
                raise CampaignError(f"{role} {path} exists and is not a directory")

    def _ensure_dir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CampaignError(f"cannot create {path} ({exc.strerror})") from None

    @contextlib.contextmanager
    def lock(self, name: str = STORE_LOCK) -> Iterator[None]:
        """An exclusive lock on OUT shared by every process that uses the store."""
        self.check_layout()
        self._ensure_dir(self.out_dir)
        with open(self.out_dir / name, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- manifest ------------------------------------------------------------------------

    def read_manifest(self) -> dict | None:
        """OUT's manifest, None if there is none; CampaignError when damaged."""
        path = self.out_dir / MANIFEST
        if not path.exists():
            return None
        try:
            manifest = _read_json(path)
        except CorruptResult as exc:
            problem = str(exc).split(": ", 1)[-1]
        else:
            problem = validate_manifest(manifest)
            if problem is None:
                return manifest
        raise CampaignError(
            f"{path} is damaged ({problem}); rerun with --rebuild-manifest to rebuild it from "
            "these options (accepted when every result file matches them), or choose another "
            "--out"
        )

    def claim(self, manifest: dict, rebuild: bool = False, runs: Sequence[RunSpec] = ()) -> bool:
        """Makes OUT hold this campaign, atomically with respect to other processes.

        Returns:
          True when this call created the manifest (OUT held no campaign), False when OUT
          already holds this campaign.

        Raises:
          CampaignError: OUT holds another configuration (the differences are listed), a
            damaged manifest (without ``rebuild``), or result files but no manifest.
        """
        with self.lock():
            path = self.out_dir / MANIFEST
            if rebuild and path.exists():
                self._check_rebuild(runs)
                atomic_write_text(path, json.dumps(manifest, indent=1))
                return False
            old = self.read_manifest()
            if old is None:
                if any(self.runs_dir.glob("*.json")) and not rebuild:
                    raise CampaignError(
                        f"{self.out_dir} holds result files but no {MANIFEST}; refusing to "
                        "mix campaigns (choose another --out, or --rebuild-manifest if they "
                        "belong to these options)"
                    )
                if rebuild:
                    self._check_rebuild(runs)
                atomic_write_text(path, json.dumps(manifest, indent=1))
                return True
            diffs = manifest_differences(old, manifest)
            if diffs:
                raise CampaignError(
                    f"{self.out_dir} holds a campaign with a different configuration ("
                    + "; ".join(diffs)
                    + "); rerun with the same options or choose another --out"
                )
            return False

    def _check_rebuild(self, runs: Sequence[RunSpec]) -> None:
        by_id = {spec.run_id: spec for spec in runs}
        foreign = []
        for path in sorted(self.runs_dir.glob("*.json")):
            spec = by_id.get(path.stem)
            try:
                if spec is None:
                    raise CorruptResult(f"{path.name}: no run of these options")
                self.load(spec)
            except CorruptResult as exc:
                foreign.append(str(exc))
        if foreign:
            raise CampaignError(
                f"cannot rebuild {MANIFEST}: {len(foreign)} result file(s) do not match these "
                f"options (first: {foreign[0]})"
            )

    def release_new_claim(self, created_dir: bool) -> None:
        """Undoes a claim that led to nothing: removes the manifest this process created
        when no run has finished or is being trained, and (``created_dir``: OUT did not exist
        before) the directories and lock files it made, if they hold nothing else."""
        with self.lock():
            busy = self.claims_dir.is_dir() and any(self.claims_dir.iterdir())
            if busy or any(self.runs_dir.glob("*.json")):
                return
            (self.out_dir / MANIFEST).unlink(missing_ok=True)
        if created_dir:
            for path in (self.claims_dir, self.runs_dir):
                with contextlib.suppress(OSError):
                    path.rmdir()
            for name in (STORE_LOCK, REPORT_LOCK):
                (self.out_dir / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.out_dir.rmdir()

    # --- temp files and run claims -------------------------------------------------------

    def sweep(self) -> int:
        """Removes temp files and claims left by processes that are gone."""
        removed = 0
        for directory in (self.out_dir, self.runs_dir, self.claims_dir):
            if directory.is_dir():
                removed += sweep_stale_temp_files(directory)
        if self.claims_dir.is_dir():
            # Under the lock that a takeover holds, so the sweep never removes a claim that
            # another process has just taken over. Claims are named by run id; dot files
            # are claims being written.
            with self.lock():
                for claim in self.claims_dir.iterdir():
                    if not claim.name.startswith(".") and self._claim_stale(claim):
                        claim.unlink(missing_ok=True)
        return removed

    def _claim_stale(self, claim: Path) -> bool:
        try:
            owner = json.loads(claim.read_text(encoding="utf-8"))
            mtime = claim.stat().st_mtime
        except FileNotFoundError:
            return False
        except (ValueError, RecursionError, OSError):
            return True
        if not isinstance(owner, dict):
            return True
        return writer_gone(str(owner.get("host")), str(owner.get("pid")), mtime)

    def try_claim_run(self, spec: RunSpec) -> bool:
        """Claims a run for this process; False when it is finished or claimed by a live
        process. A stale claim (its process is gone) is taken over."""
        self._ensure_dir(self.claims_dir)
        path = self.claims_dir / spec.run_id
        owner = json.dumps({"host": HOST, "pid": os.getpid(), "time": time.time()})
        if not create_exclusive_text(path, owner):
            if not self._claim_stale(path):
                return False
            # Taking over is rare (a claimer died); under the store lock, two processes
            # that both found the claim stale cannot each replace it and both train.
            with self.lock():
                if not self._claim_stale(path):
                    return False
                path.unlink(missing_ok=True)
                if not create_exclusive_text(path, owner):
                    return False
        if self.is_finished(spec):
            path.unlink(missing_ok=True)
            return False
        return True

    def release_run(self, spec: RunSpec) -> None:
        (self.claims_dir / spec.run_id).unlink(missing_ok=True)

    # --- result files --------------------------------------------------------------------

    def result_path(self, spec: RunSpec) -> Path:
        return self.runs_dir / f"{spec.run_id}.json"

    def arrays_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.npz"

    def write(self, spec: RunSpec, record: dict, arrays: dict | None = None) -> None:
        """Writes a finished run: arrays first, then the JSON that marks the run finished."""
        record = jsonable(record)
        problem = validate_record(record)
        if problem is not None:
            raise ValueError(f"run {spec.run_id} produced a malformed record: {problem}")
        if arrays:
            path = self.arrays_path(spec.run_id)
            arrays = {k: np.asarray(v) for k, v in arrays.items()}
            atomic_write_with(path, lambda p: _save_npz(p, arrays))
            record["arrays"] = path.name
        payload = {
            "format": RESULT_FORMAT,
            "run_id": spec.run_id,
            "config": spec.config.to_dict(),
            "fold": spec.fold,
            "train": jsonable(spec.train_kwargs()),
            "key_seed": spec.key_seed,
            "record": record,
        }
        payload["sha256"] = _digest(payload)
        atomic_write_text(self.result_path(spec), json.dumps(payload, indent=1, sort_keys=True))

    def load(self, spec: RunSpec) -> dict:
        """Reads and checks the result file of a run.

        Raises:
          FileNotFoundError: the run has not finished.
          CorruptResult: the file is damaged, altered, malformed or belongs to another run.
        """
        path = self.result_path(spec)
        payload = _read_json(path)
        if not isinstance(payload, dict):
            raise CorruptResult(f"{path.name}: expected a JSON object")
        missing = {"format", "run_id", "config", "fold", "train", "record", "sha256"} - set(
            payload
        )
        if missing:
            raise CorruptResult(f"{path.name}: missing fields {', '.join(sorted(missing))}")
        if payload["format"] != RESULT_FORMAT:
            raise CorruptResult(
                f"{path.name}: result format {payload['format']!r} != {RESULT_FORMAT}"
            )
        content = {k: v for k, v in payload.items() if k != "sha256"}
        try:
            digest = _digest(content)
        except ValueError:
            digest = None
        if payload["sha256"] != digest:
            raise CorruptResult(f"{path.name}: checksum mismatch (the file was altered)")
        if payload["run_id"] != spec.run_id or payload["fold"] != spec.fold:
            raise CorruptResult(
                f"{path.name}: holds run {payload['run_id']!r}, not {spec.run_id!r}"
            )
        if (
            payload["config"] != spec.config.to_dict()
            or payload["train"] != jsonable(spec.train_kwargs())
            or payload.get("key_seed") != spec.key_seed
        ):
            raise CorruptResult(f"{path.name}: was produced by a different configuration")
        problem = validate_record(payload["record"])
        if problem is not None:
            raise CorruptResult(f"{path.name}: {problem}")
        arrays = payload["record"].get("arrays")
        if arrays is not None and not (self.runs_dir / arrays).is_file():
            raise CorruptResult(f"{path.name}: its arrays file {arrays} is missing")
        return payload

    def is_finished(self, spec: RunSpec) -> bool:
        try:
            self.load(spec)
        except (FileNotFoundError, CorruptResult):
            return False
        return True

    def quarantine(self, spec: RunSpec) -> Path:
        """Moves a corrupt result aside (kept for inspection) so the run is redone."""
        path = self.result_path(spec)
        target = path.with_name(path.name + f".corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        # Another process may have moved it aside already.
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)
        return target

    def partition(
        self, runs: Sequence[RunSpec], warn: Callable[[str], None]
    ) -> tuple[list[RunSpec], list[RunSpec], list[str]]:
        """Splits runs into (finished, pending, corrupt run ids); corrupt files are moved
        aside and their runs are pending."""
        finished, pending, corrupt = [], [], []
        for spec in runs:
            try:
                self.load(spec)
                finished.append(spec)
            except FileNotFoundError:
                pending.append(spec)
            except CorruptResult as exc:
                moved = self.quarantine(spec)
                warn(f"corrupt result, redoing the run: {exc} (moved to {moved.name})")
                corrupt.append(spec.run_id)
                pending.append(spec)
        return finished, pending, corrupt

    def load_arrays(self, run_id: str) -> dict[str, np.ndarray] | None:
        """The arrays saved with a run, or None."""
        path = self.arrays_path(run_id)
        if not path.is_file():
            return None
        with np.load(path) as data:
            return {k: data[k] for k in data.files}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
