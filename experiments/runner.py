"""The resumable grid runner shared by campaigns G1-G4, and their command line.

A campaign is a grid of runs (configuration x fold). Each finished run is one JSON file under
``OUT/runs/`` written atomically, so a campaign killed at any point loses at most the runs in
flight: rerunning the same command skips finished runs, redoes interrupted ones and redoes
(after reporting) corrupt ones. ``OUT/manifest.json`` pins the campaign configuration; a rerun
with another configuration is refused. Runs are independent (``--shard I/N`` splits the grid
between processes, machines or devices sharing OUT).

The function that executes one run is injected (:data:`RunFn`), so tests drive the runner
with a fake one; campaigns default to :func:`trainer_run_fn` (``jtcaug.train``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

MANIFEST = "manifest.json"
RUNS_DIR = "runs"
RESULTS = "results.parquet"
RESULT_FORMAT = 1
DEFAULT_FOLDS = 80
# A run of this many consecutive failed runs points at a systematic problem, not a bad fold.
MAX_CONSECUTIVE_FAILURES = 5
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
# Dataset options that locate or cache data without changing it: left out of the manifest, so
# a rerun may find the same dataset elsewhere.
NOT_DATASET_IDENTITY = frozenset({"data_dir", "no_cache"})


class CampaignError(Exception):
    """Bad input to a campaign; the message is meant for the user as is."""


class CorruptResult(Exception):
    """A result file that cannot be trusted; the message says why."""


# --------------------------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConfigSpec:
    """One configuration of a campaign grid.

    Attributes:
      name: unique, file-safe id (``[A-Za-z0-9_.+-]``), used in result file names and tables.
      group: the study it belongs to (e.g. ``baseline``, ``single``, ``magnitude``).
      train: keyword arguments of ``jtcaug.train.TrainConfig`` for this configuration (aug,
        policy, alpha, class_weighted); the campaign adds seed, max_epochs and batch_size.
      max_folds: run it only on the first ``max_folds`` folds (None: every campaign fold).
    """

    name: str
    group: str
    train: dict
    max_folds: int | None = None

    def __post_init__(self):
        if not _SAFE_NAME.match(self.name):
            raise CampaignError(f"config name {self.name!r} must match {_SAFE_NAME.pattern}")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "group": self.group,
            "train": dict(self.train),
            "max_folds": self.max_folds,
        }


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run: a configuration on one fold, with the campaign-wide training settings.

    The run's PRNG key comes from :attr:`key_seed` (campaign seed and fold), not from
    ``TrainConfig.seed``: the config is a static argument of the jitted trainer, so keeping
    it equal across folds lets every fold of a configuration reuse one compilation.
    """

    config: ConfigSpec
    fold: int
    seed: int
    max_epochs: int | None
    batch_size: int | None = None

    @property
    def run_id(self) -> str:
        return f"{self.config.name}__fold{self.fold:03d}"

    @property
    def key_seed(self) -> int:
        return run_seed(self.seed, self.fold)

    def train_kwargs(self) -> dict:
        """``TrainConfig`` keyword arguments of this run."""
        kwargs = dict(self.config.train, seed=self.seed)
        if self.max_epochs is not None:
            kwargs["max_epochs"] = self.max_epochs
        if self.batch_size is not None:
            kwargs["batch_size"] = self.batch_size
        return kwargs


def run_seed(campaign_seed: int, fold: int) -> int:
    """Seed of a run's key: one per (campaign seed, fold), shared by all configurations.

    Sharing it across configurations pairs runs on a fold (same initial weights), which
    lowers the variance of the per-fold gains that the statistics compare.
    """
    return int(np.random.SeedSequence([campaign_seed, fold]).generate_state(1)[0] >> 1)


def expand_runs(
    grid: Sequence[ConfigSpec],
    n_folds: int,
    seed: int,
    max_epochs: int | None,
    batch_size: int | None = None,
) -> list[RunSpec]:
    """All runs of a grid, fold-major: a killed campaign leaves whole folds behind, and a
    fold's data is prepared once."""
    names = [c.name for c in grid]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CampaignError(f"config names must be unique, repeated: {', '.join(duplicates)}")
    return [
        RunSpec(config=c, fold=fold, seed=seed, max_epochs=max_epochs, batch_size=batch_size)
        for fold in range(n_folds)
        for c in grid
        if c.max_folds is None or fold < c.max_folds
    ]


# --------------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunOutput:
    """What one run produced.

    Attributes:
      record: JSON-ready dict. Required: ``metrics`` as returned by
        ``jtcaug.evaluation.metrics.classification_metrics``; usual: ``epochs_run``,
        ``best_epoch``, ``n_params``, ``wall_time_s``, ``class_counts_train``, ``history``;
        optional ``extra`` (flat dict of numbers, e.g. geometry metrics) becomes columns.
      arrays: optional named arrays saved beside the result as ``<run_id>.npz``.
    """

    record: dict
    arrays: dict[str, np.ndarray] | None = None


RunFn = Callable[[RunSpec], RunOutput]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Atomic write through a writer that takes a path (parquet, PNG, npz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    """Numpy / JAX scalars and arrays to plain JSON types; NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a result file")


def result_path(out_dir: Path, spec: RunSpec) -> Path:
    return out_dir / RUNS_DIR / f"{spec.run_id}.json"


def write_result(out_dir: Path, spec: RunSpec, output: RunOutput) -> None:
    """Writes a finished run: arrays first, then the JSON that marks the run finished."""
    record = _jsonable(output.record)
    if output.arrays:
        arrays_path = out_dir / RUNS_DIR / f"{spec.run_id}.npz"
        arrays = {k: np.asarray(v) for k, v in output.arrays.items()}
        atomic_write_with(arrays_path, lambda p: _save_npz(p, arrays))
        record["arrays"] = arrays_path.name
    payload = {
        "format": RESULT_FORMAT,
        "run_id": spec.run_id,
        "config": spec.config.to_dict(),
        "fold": spec.fold,
        "train": _jsonable(spec.train_kwargs()),
        "key_seed": spec.key_seed,
        "record": record,
    }
    atomic_write_text(result_path(out_dir, spec), json.dumps(payload, indent=1, sort_keys=True))


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_result(out_dir: Path, spec: RunSpec) -> dict:
    """Reads and checks the result file of a run.

    Raises:
      FileNotFoundError: the run has not finished.
      CorruptResult: the file is unreadable or does not belong to this run.
    """
    path = result_path(out_dir, spec)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptResult(f"{path.name}: not UTF-8 text ({exc.reason})") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptResult(f"{path.name}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(payload, dict):
        raise CorruptResult(f"{path.name}: expected a JSON object")
    missing = {"format", "run_id", "config", "fold", "train", "record"} - set(payload)
    if missing:
        raise CorruptResult(f"{path.name}: missing fields {', '.join(sorted(missing))}")
    if payload["format"] != RESULT_FORMAT:
        raise CorruptResult(f"{path.name}: result format {payload['format']} != {RESULT_FORMAT}")
    if payload["run_id"] != spec.run_id or payload["fold"] != spec.fold:
        raise CorruptResult(f"{path.name}: holds run {payload['run_id']!r}, not {spec.run_id!r}")
    if (
        payload["config"] != spec.config.to_dict()
        or payload["train"] != _jsonable(spec.train_kwargs())
        or payload.get("key_seed") != spec.key_seed
    ):
        raise CorruptResult(f"{path.name}: was produced by a different configuration")
    record = payload["record"]
    f1 = record.get("metrics", {}).get("weighted_f1") if isinstance(record, dict) else None
    if not isinstance(f1, (int, float)) or not 0.0 <= f1 <= 1.0:
        raise CorruptResult(f"{path.name}: metrics.weighted_f1 missing or not in [0, 1]")
    if "arrays" in record and not (out_dir / RUNS_DIR / record["arrays"]).is_file():
        raise CorruptResult(f"{path.name}: its arrays file {record['arrays']} is missing")
    return payload


def _quarantine(path: Path) -> Path:
    """Moves a corrupt result aside (kept for inspection) so the run is redone."""
    target = path.with_name(path.name + f".corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


def _remove_stale_temp_files(runs_dir: Path) -> int:
    """Deletes temp files left by writes that were interrupted (never a finished result)."""
    stale = list(runs_dir.glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


def make_manifest(
    campaign: str,
    dataset: dict,
    n_folds: int,
    preset: str,
    seed: int,
    max_epochs: int | None,
    grid: Sequence[ConfigSpec],
    options: dict | None = None,
    batch_size: int | None = None,
) -> dict:
    """The campaign configuration that result files depend on (JSON-ready)."""
    return _jsonable(
        {
            "campaign": campaign,
            "dataset": dataset,
            "folds": n_folds,
            "preset": preset,
            "seed": seed,
            "max_epochs": max_epochs,
            "batch_size": batch_size,
            "options": options or {},
            "grid": [c.to_dict() for c in grid],
        }
    )


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


def check_manifest(out_dir: Path, manifest: dict) -> bool:
    """Checks OUT's manifest against ``manifest``.

    Returns:
      True when OUT already holds this campaign, False when OUT holds no campaign yet.

    Raises:
      CampaignError: OUT holds another configuration, or an unreadable manifest.
    """
    path = out_dir / MANIFEST
    if not path.exists():
        if (out_dir / RUNS_DIR).is_dir() and any((out_dir / RUNS_DIR).glob("*.json")):
            raise CampaignError(
                f"{out_dir} holds result files but no {MANIFEST}; refusing to mix campaigns "
                "(choose another --out)"
            )
        return False
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path} is unreadable ({exc}); choose another --out") from exc
    if not isinstance(old, dict):
        raise CampaignError(f"{path} is not a campaign manifest; choose another --out")
    diffs = manifest_differences(old, manifest)
    if diffs:
        raise CampaignError(
            f"{out_dir} holds a campaign with a different configuration ("
            + "; ".join(diffs)
            + "); rerun with the same options or choose another --out"
        )
    return True


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """What one invocation of :func:`execute` did."""

    total: int
    skipped: int = 0
    completed: int = 0
    corrupt: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    stale_temp_files: int = 0
    wall_time_s: float = 0.0

    @property
    def finished(self) -> int:
        return self.skipped + self.completed

    def lines(self) -> list[str]:
        out = [
            f"runs: {self.finished}/{self.total} finished ({self.skipped} already there, "
            f"{self.completed} run now in {self.wall_time_s:.1f} s)"
        ]
        if self.corrupt:
            out.append(f"corrupt result files redone: {', '.join(self.corrupt)}")
        if self.stale_temp_files:
            out.append(f"interrupted writes cleaned up: {self.stale_temp_files}")
        for run_id, message in self.failed.items():
            out.append(f"FAILED {run_id}: {message}")
        return out


def pending_runs(out_dir: Path, runs: Iterable[RunSpec], warn=print) -> tuple[list, list, list]:
    """Splits runs into (finished, pending, corrupt run ids); corrupt files are moved aside."""
    finished, pending, corrupt = [], [], []
    for spec in runs:
        try:
            load_result(out_dir, spec)
            finished.append(spec)
        except FileNotFoundError:
            pending.append(spec)
        except CorruptResult as exc:
            moved = _quarantine(result_path(out_dir, spec))
            warn(f"corrupt result, redoing the run: {exc} (moved to {moved.name})")
            corrupt.append(spec.run_id)
            pending.append(spec)
    return finished, pending, corrupt


def execute(
    out_dir: Path,
    manifest: dict,
    runs: Sequence[RunSpec],
    make_run_fn: Callable[[], RunFn],
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    clean_temp: bool = True,
) -> Summary:
    """Runs every unfinished run of ``runs`` and writes its result file.

    Args:
      out_dir: the campaign directory (created if needed).
      manifest: the campaign configuration (:func:`make_manifest`); must match OUT's.
      runs: the grid, from :func:`expand_runs`.
      make_run_fn: builds the run function; called only when some run is pending, before
        anything is written, so bad input (e.g. an unknown dataset) leaves OUT untouched.
      progress: show a tqdm bar over the pending runs (with ETA).
      warn: sink for one-line warnings (default: stderr).
      clean_temp: delete temp files of interrupted writes; off when other processes (shards)
        may be writing into the same OUT.

    A run function that raises ``Exception`` marks that run failed (reported, retried next
    time) and the campaign goes on; ``KeyboardInterrupt`` and ``SystemExit`` stop it.
    """
    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    start = time.perf_counter()
    existed = check_manifest(out_dir, manifest)
    summary = Summary(total=len(runs))
    runs_dir = out_dir / RUNS_DIR
    if runs_dir.is_dir() and clean_temp:
        summary.stale_temp_files = _remove_stale_temp_files(runs_dir)
    finished, pending, summary.corrupt = pending_runs(out_dir, runs, warn)
    summary.skipped = len(finished)
    if not pending:
        if not existed:
            atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1))
        summary.wall_time_s = time.perf_counter() - start
        return summary
    run_fn = make_run_fn()
    if not existed:
        atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1))
    runs_dir.mkdir(parents=True, exist_ok=True)

    consecutive_failures = 0
    bar = tqdm(
        pending,
        desc=f"{manifest.get('campaign', 'campaign')} ({summary.skipped} done before)",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar:
        for spec in bar:
            bar.set_postfix_str(spec.run_id, refresh=False)
            try:
                output = run_fn(spec)
                write_result(out_dir, spec, output)
            except Exception as exc:  # noqa: BLE001 - a failed run must not stop the campaign
                message = f"{type(exc).__name__}: {exc}".splitlines()[0]
                summary.failed[spec.run_id] = message
                (tqdm.write if progress else warn)(f"run {spec.run_id} failed: {message}")
                consecutive_failures += 1
                if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    (tqdm.write if progress else warn)(
                        f"stopping: {consecutive_failures} runs in a row failed"
                    )
                    break
                continue
            consecutive_failures = 0
            summary.completed += 1
            f1 = output.record.get("metrics", {}).get("weighted_f1")
            if f1 is not None:
                bar.set_postfix_str(f"{spec.run_id} F1={100 * f1:.2f}", refresh=False)
    summary.wall_time_s = time.perf_counter() - start
    return summary


# --------------------------------------------------------------------------------------------
# Results table
# --------------------------------------------------------------------------------------------

CONFIG_COLUMNS = ("config", "group", "aug", "policy", "alpha", "class_weighted")


def result_row(payload: dict) -> dict:
    """One tidy row of ``results.parquet`` from a result file's payload."""
    config = payload["config"]
    train = payload["train"]
    record = payload["record"]
    metrics = record["metrics"]
    row = {
        "run_id": payload["run_id"],
        "config": config["name"],
        "group": config["group"],
        "aug": train.get("aug", "none"),
        "policy": train.get("policy", "none"),
        "alpha": float("nan") if train.get("alpha") is None else float(train["alpha"]),
        "class_weighted": bool(train.get("class_weighted", False)),
        "fold": int(payload["fold"]),
        "key_seed": int(payload.get("key_seed", -1)),
        "weighted_f1": float(metrics["weighted_f1"]),
        "accuracy": float(metrics.get("accuracy", float("nan"))),
    }
    for key in ("epochs_run", "best_epoch", "n_params"):
        row[key] = int(record[key]) if record.get(key) is not None else pd.NA
    row["wall_time_s"] = float(record.get("wall_time_s") or float("nan"))
    for name, values in metrics.get("per_class", {}).items():
        for metric in ("precision", "recall", "f1", "support"):
            if metric in values:
                row[f"{metric}[{name}]"] = values[metric]
    for name, count in (record.get("class_counts_train") or {}).items():
        row[f"train_count[{name}]"] = int(count)
    for key, value in (record.get("extra") or {}).items():
        row[key] = float("nan") if value is None else value
    return row


def collect_results(out_dir: Path, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per finished run, in grid order (unfinished or corrupt runs are left out)."""
    rows = []
    for spec in runs:
        try:
            rows.append(result_row(load_result(out_dir, spec)))
        except (FileNotFoundError, CorruptResult):
            continue
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["run_id", *CONFIG_COLUMNS, "fold", "weighted_f1"])
    return frame


def write_results(out_dir: Path, frame: pd.DataFrame) -> Path:
    path = out_dir / RESULTS
    atomic_write_with(path, lambda p: frame.to_parquet(p, index=False))
    return path


def load_run_arrays(out_dir: Path, run_id: str) -> dict[str, np.ndarray] | None:
    """The arrays saved with a run, or None."""
    path = out_dir / RUNS_DIR / f"{run_id}.npz"
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------------------------
# Default run function: the trainer
# --------------------------------------------------------------------------------------------


class FoldCache:
    """Loads the dataset once and keeps the most recent fold (runs come fold-major)."""

    def __init__(self, args: argparse.Namespace, n_folds: int):
        import jtcaug.data

        self._data = jtcaug.data
        self.flows = jtcaug.data.load_from_args(args)
        self.n_folds = max(n_folds, DEFAULT_FOLDS)
        self._fold_index: int | None = None
        self._fold = None

    def get(self, fold: int):
        if fold != self._fold_index:
            self._fold = self._data.make_fold(self.flows, fold, n_folds=self.n_folds)
            self._fold_index = fold
        return self._fold


def class_counts(y: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(y), minlength=len(class_names))
    return {name: int(counts[i]) for i, name in enumerate(class_names)}


def train_record(result, fold) -> dict:
    """The record of a ``jtcaug.train.RunResult`` on a fold."""
    return {
        "metrics": result.metrics,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "n_params": result.n_params,
        "wall_time_s": result.wall_time_s,
        "history": result.history,
        "class_counts_train": class_counts(fold.y_train, fold.class_names),
    }


def trainer_run_fn(args: argparse.Namespace, n_folds: int) -> RunFn:
    """The default run function: train on the fold with ``jtcaug.train.run``, keep metrics."""
    import jax

    import jtcaug.train

    folds = FoldCache(args, n_folds)

    def run(spec: RunSpec) -> RunOutput:
        fold = folds.get(spec.fold)
        config = jtcaug.train.TrainConfig(**spec.train_kwargs())
        key = jax.random.PRNGKey(spec.key_seed)
        result = jtcaug.train.run(fold, config, key=key, progress=False)
        return RunOutput(record=train_record(result, fold))

    return run


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

# The quick preset: a small synthetic dataset, few folds, capped epochs and a small batch
# (B = 1024 on ~2k training flows is 2 steps an epoch: nothing is learnt in a few epochs), so
# that the quick G1 grid finishes in minutes on 2 CPU cores. Explicit options win.
QUICK_PRESET = {"folds": 2, "max_epochs": 4, "scale": 0.03, "batch_size": 128}


@dataclasses.dataclass(frozen=True)
class Campaign:
    """A campaign module's hooks for :func:`main`.

    Attributes:
      name: short id (``g1``), stored in the manifest.
      title: report title.
      build_grid: ``args -> [ConfigSpec]`` (raises CampaignError on bad options).
      build_report: ``ReportInput -> [report.Section]``.
      add_arguments: adds campaign-specific options to the parser.
      options: ``args -> dict`` of campaign-specific options recorded in the manifest.
      make_run_fn: ``(args, n_folds) -> RunFn``; default :func:`trainer_run_fn`.
      default_folds: ``--folds`` default.
      quick_defaults: campaign options the quick preset changes (unless given explicitly).
    """

    name: str
    title: str
    build_grid: Callable[[argparse.Namespace], list[ConfigSpec]]
    build_report: Callable[[Any], list]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    options: Callable[[argparse.Namespace], dict] | None = None
    make_run_fn: Callable[[argparse.Namespace, int], RunFn] = trainer_run_fn
    default_folds: int = DEFAULT_FOLDS
    quick_defaults: dict = dataclasses.field(default_factory=dict)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return int(match[1]), int(match[2])


def build_parser(campaign: Campaign) -> tuple[argparse.ArgumentParser, list[str]]:
    """The campaign's parser and the names of the dataset options (recorded in the manifest)."""
    import jtcaug.data

    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{campaign.name}",
        description=campaign.title,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    before = {a.dest for a in parser._actions}
    jtcaug.data.add_dataset_arguments(parser)
    dataset_dests = [
        a.dest for a in parser._actions
        if a.dest not in before and a.dest not in NOT_DATASET_IDENTITY
    ]
    own = {a.option_strings[0] for a in parser._actions if a.option_strings}
    group = parser.add_argument_group("campaign")
    group.add_argument(
        "--folds", type=_positive_int, default=None,
        help=f"folds per configuration (default {campaign.default_folds}; quick preset "
        f"{QUICK_PRESET['folds']})",
    )
    group.add_argument(
        "--quick", action="store_true",
        help="small preset: synthetic scale {scale}, {folds} folds, at most {max_epochs} "
        "epochs, batch size {batch_size}".format(**QUICK_PRESET),
    )
    group.add_argument("--out", type=Path, default=None,
                       help="campaign directory (default runs/<campaign>-<dataset>[-quick])")
    if "--seed" not in own:
        group.add_argument("--seed", type=int, default=0, help="training seed of the campaign")
    group.add_argument("--max-epochs", type=_positive_int, default=None,
                       help="cap on epochs per run (default: the trainer's, 500)")
    group.add_argument("--batch-size", type=_positive_int, default=None,
                       help="rows per training step (default: the trainer's, 1024 as the paper)")
    group.add_argument("--shard", type=_shard, default=(0, 1),
                       help="run only runs i, i+N, ... of the grid (I/N); for several workers")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument(
        "--compile-cache", default=str(default_compile_cache()), metavar="DIR",
        help="persistent JAX compilation cache shared by campaigns ('none' turns it off)",
    )
    if campaign.add_arguments is not None:
        campaign.add_arguments(parser)
    return parser, dataset_dests


def default_compile_cache() -> Path:
    """``$JTCAUG_CACHE/jax-compile`` (or ``$XDG_CACHE_HOME`` / ``~/.cache`` + ``jtcaug``)."""
    if os.environ.get("JTCAUG_CACHE"):
        base = Path(os.environ["JTCAUG_CACHE"]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jtcaug"
    return base / "jax-compile"


def enable_compile_cache(directory: str) -> None:
    """Points JAX's persistent compilation cache at ``directory``: every configuration
    compiles its training step once per machine, not once per campaign invocation."""
    if directory.lower() == "none":
        return
    import jax

    Path(directory).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)


def apply_preset(
    parser: argparse.ArgumentParser, args: argparse.Namespace, campaign: Campaign
) -> str:
    """Fills the defaults of the chosen preset into ``args``; returns the preset name."""
    preset = "quick" if args.quick else "full"
    if args.folds is None:
        args.folds = QUICK_PRESET["folds"] if args.quick else campaign.default_folds
    if args.quick:
        if args.max_epochs is None:
            args.max_epochs = QUICK_PRESET["max_epochs"]
        if args.batch_size is None:
            args.batch_size = QUICK_PRESET["batch_size"]
        if hasattr(args, "scale") and args.scale == parser.get_default("scale"):
            args.scale = QUICK_PRESET["scale"]
        for dest, value in campaign.quick_defaults.items():
            if getattr(args, dest) == parser.get_default(dest):
                setattr(args, dest, value)
    return preset


def dataset_label(args: argparse.Namespace) -> str:
    name = str(getattr(args, "dataset", "dataset"))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"


@dataclasses.dataclass(frozen=True)
class Plan:
    """A campaign resolved from its options: the grid, its manifest and all its runs."""

    grid: list[ConfigSpec]
    manifest: dict
    runs: list[RunSpec]


def plan(campaign: Campaign, args: argparse.Namespace, dataset: dict, preset: str) -> Plan:
    """Resolves a campaign's grid, manifest and runs from parsed options.

    Args:
      args: the options (``folds``, ``seed``, ``max_epochs``, ``batch_size`` and the
        campaign's own).
      dataset: the dataset options, recorded in the manifest (``args.dataset_options``).
      preset: ``"quick"`` or ``"full"``.
    """
    # Campaign hooks may need the dataset options (G4 checks a G1 directory against them).
    args.dataset_options = dataset
    grid = campaign.build_grid(args)
    manifest = make_manifest(
        campaign=campaign.name,
        dataset=dataset,
        n_folds=args.folds,
        preset=preset,
        seed=args.seed,
        max_epochs=args.max_epochs,
        grid=grid,
        options=campaign.options(args) if campaign.options else None,
        batch_size=args.batch_size,
    )
    runs = expand_runs(grid, args.folds, args.seed, args.max_epochs, args.batch_size)
    return Plan(grid, manifest, runs)


def run_campaign(
    campaign: Campaign,
    args: argparse.Namespace,
    out_dir: Path,
    the_plan: Plan,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
) -> tuple[Summary, Path]:
    """Executes this shard's runs of a planned campaign and writes its report."""
    from experiments import report

    mine = the_plan.runs[shard[0] :: shard[1]]
    summary = execute(
        out_dir,
        the_plan.manifest,
        mine,
        lambda: campaign.make_run_fn(args, args.folds),
        progress=progress,
        clean_temp=shard[1] == 1,
    )
    report_path = report.write_campaign_report(out_dir, campaign, the_plan.manifest,
                                               the_plan.runs)
    return summary, report_path


def main(campaign: Campaign, argv: Sequence[str] | None = None) -> int:
    """Command line of a campaign; returns the process exit status."""
    parser, dataset_dests = build_parser(campaign)
    args = parser.parse_args(argv)
    try:
        preset = apply_preset(parser, args, campaign)
        dataset = {dest: getattr(args, dest) for dest in dataset_dests}
        the_plan = plan(campaign, args, dataset, preset)
        out_dir = args.out or Path("runs") / (
            f"{campaign.name}-{dataset_label(args)}" + ("-quick" if args.quick else "")
        )
        enable_compile_cache(args.compile_cache)
        summary, report_path = run_campaign(
            campaign, args, out_dir, the_plan, args.shard, progress=not args.no_progress
        )
    except (CampaignError, ValueError, OSError) as exc:
        if os.environ.get("JTCAUG_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; rerun the same command to go on",
              file=sys.stderr)
        return 130
    for line in summary.lines():
        print(line)
    print(f"report: {report_path}")
    return 1 if summary.failed else 0
