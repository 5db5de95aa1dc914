"""Executes a campaign's unfinished runs as units and records each run's result file.

The driver (``execute``) claims OUT for the campaign, sweeps what dead processes left, finds
the unfinished runs, groups them into units (``grid.make_units``), claims each unit's runs
just before handing it to an executor (``experiments.executors``), and advances one progress
bar over runs per finished unit. A ``UnitTask`` trains a unit and writes its runs' result
files wherever it executes (in this process, or on a remote worker sharing OUT), so a run
ends exactly once: when its result file is renamed into place.

The function that trains a unit is injected (:data:`UnitFn`), so tests drive the engine with
a fake one; campaigns default to ``experiments.training.trainer_unit_fn``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from experiments.grid import CampaignError, RunSpec, Unit, make_units
from experiments.store import ResultStore

# This many units failing in a row points at a systematic problem, not a bad fold.
MAX_CONSECUTIVE_FAILURES = 5


@dataclasses.dataclass
class RunRecord:
    """What one run produced.

    Attributes:
      record: JSON-ready dict. Required: ``metrics`` as returned by
        ``jtcaug.evaluation.metrics.classification_metrics``; usual: ``epochs_run``,
        ``best_epoch``, ``n_params``, ``wall_time_s``, ``class_counts_train``, ``history``;
        optional ``extra`` (flat dict of numbers, e.g. geometry metrics) becomes columns.
      arrays: optional named arrays saved beside the result as ``<run_id>.npz``.
    """

    record: dict
    arrays: dict | None = None


# A unit function trains a unit's runs and returns, per run in order, its record or the
# exception that made it fail (the other runs of the unit still count).
UnitFn = Callable[[Unit], Sequence["RunRecord | BaseException"]]
RunFn = Callable[[RunSpec], RunRecord]


def per_run(run_fn: RunFn) -> UnitFn:
    """A unit function that executes a unit's runs one at a time with ``run_fn``."""

    def unit_fn(unit: Unit) -> list[RunRecord | BaseException]:
        outputs: list[RunRecord | BaseException] = []
        for spec in unit.runs:
            try:
                outputs.append(run_fn(spec))
            except Exception as exc:  # noqa: BLE001 - one failed run must not sink the unit
                outputs.append(exc)
        return outputs

    return unit_fn


def error_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]


@dataclasses.dataclass
class UnitOutcome:
    """What became of a unit's runs: weighted F1 of each finished one, message of each
    failed one."""

    finished: dict[str, float] = dataclasses.field(default_factory=dict)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


# Unit functions built in this process, by task token: a worker keeps its loaded dataset
# across the units it executes.
_UNIT_FNS: dict[str, UnitFn] = {}


def campaign_unit_fn(module: str, args, n_folds: int) -> UnitFn:
    """The unit function of the campaign defined in ``module`` (importable on any worker),
    after the user's ``--aug-module`` modules have registered their augmentations."""
    from jtcaug import aug

    for name in getattr(args, "aug_module", None) or ():
        aug.import_augmentation_module(name)
    campaign = importlib.import_module(module).CAMPAIGN
    return campaign.make_unit_fn(args, n_folds)


def set_host_devices(n: int, explicit: bool = True) -> None:
    """Splits the CPU into ``n`` JAX devices; must run before JAX's first computation.

    When JAX is already running (a caller used it before), its devices stay as they are;
    that is an error (``CampaignError``) only when the number was asked for explicitly.
    """
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        if explicit and len(jax.devices("cpu")) != n:
            raise CampaignError(
                f"--host-devices {n}: JAX is already running with "
                f"{len(jax.devices('cpu'))} CPU device(s) in this process"
            ) from None


def enable_compile_cache(directory: str) -> str | None:
    """Points JAX's persistent compilation cache at ``directory`` ("none": no cache), so
    every configuration compiles its training program once per machine, not once per
    campaign invocation. Returns the directory as an absolute path, or None."""
    if directory.lower() == "none":
        return None
    import jax

    path = Path(directory).absolute()
    if path.exists() and not path.is_dir():
        raise CampaignError(f"--compile-cache {directory} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CampaignError(
            f"--compile-cache {directory}: cannot create it ({exc.strerror})"
        ) from None
    jax.config.update("jax_compilation_cache_dir", str(path))
    return str(path)


@dataclasses.dataclass
class UnitTask:
    """Trains one unit and writes its runs' result files; picklable for remote workers.

    Attributes:
      out_dir: the campaign directory (absolute; shared by every worker).
      make_unit_fn: builds the unit function (loads the dataset); called once per process.
      cwd: the driver's working directory, entered first where it exists, so relative data
        paths resolve as on the driver.
      token: names ``make_unit_fn`` across pickling, for the per-process cache.
      host_devices: JAX CPU devices to split a worker's CPU into before its first
        computation (None: leave JAX's default).
      compile_cache: the persistent compilation cache directory a worker uses, as the
        driver does (None: none).
    """

    out_dir: str
    make_unit_fn: Callable[[], UnitFn]
    cwd: str = dataclasses.field(default_factory=os.getcwd)
    token: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    host_devices: int | None = None
    compile_cache: str | None = None

    def unit_fn(self) -> UnitFn:
        if self.token not in _UNIT_FNS:
            if os.path.isdir(self.cwd) and os.getcwd() != self.cwd:
                os.chdir(self.cwd)
            if self.host_devices is not None:
                # A worker process splits its CPU as the driver did, so a unit sized for
                # the driver's devices gets one run per device there too.
                set_host_devices(self.host_devices, explicit=False)
            if self.compile_cache is not None:
                # Without it a worker compiles every configuration that the driver's
                # cache already holds. A node that cannot create the directory trains
                # without a cache rather than failing its units.
                with contextlib.suppress(CampaignError):
                    enable_compile_cache(self.compile_cache)
            _UNIT_FNS[self.token] = self.make_unit_fn()
        return _UNIT_FNS[self.token]

    def __call__(self, unit: Unit) -> UnitOutcome:
        store = ResultStore(Path(self.out_dir))
        outputs = self.unit_fn()(unit)
        if len(outputs) != len(unit.runs):
            raise RuntimeError(f"unit {unit.unit_id}: {len(outputs)} outputs for "
                               f"{len(unit.runs)} runs")
        outcome = UnitOutcome()
        for spec, output in zip(unit.runs, outputs, strict=True):
            if isinstance(output, BaseException):
                outcome.failed[spec.run_id] = error_line(output)
                continue
            try:
                store.write(spec, output.record, output.arrays)
            except (ValueError, TypeError, OSError) as exc:
                outcome.failed[spec.run_id] = error_line(exc)
                continue
            outcome.finished[spec.run_id] = float(output.record["metrics"]["weighted_f1"])
        return outcome


@dataclasses.dataclass
class Summary:
    """What one invocation of :func:`execute` did."""

    total: int
    skipped: int = 0
    completed: int = 0
    units: int = 0
    elsewhere: int = 0
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
            f"{self.completed} run now in {self.units} unit(s), {self.wall_time_s:.1f} s)"
        ]
        if self.elsewhere:
            out.append(f"runs being trained by another process, left to it: {self.elsewhere}")
        if self.corrupt:
            out.append(f"corrupt result files redone: {', '.join(self.corrupt)}")
        if self.stale_temp_files:
            out.append(f"interrupted writes cleaned up: {self.stale_temp_files}")
        for run_id, message in self.failed.items():
            out.append(f"FAILED {run_id}: {message}")
        return out


def execute(
    store: ResultStore,
    manifest: dict,
    runs: Sequence[RunSpec],
    task: UnitTask,
    executor,
    runs_per_unit: int = 1,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    rebuild_manifest: bool = False,
) -> Summary:
    """Runs every unfinished run of ``runs`` in units and records its result file.

    Args:
      store: the campaign directory.
      manifest: the campaign configuration; OUT must hold it or none.
      runs: the grid, from ``grid.expand_runs``.
      task: trains a unit and writes its results (``UnitTask``).
      executor: where units execute (``experiments.executors``).
      runs_per_unit: K, the most runs of one configuration trained together.
      progress: one tqdm bar over the pending runs, advanced per unit, with ETA.
      warn: sink for one-line warnings (default: stderr).
      rebuild_manifest: replace a damaged or missing manifest when every result file
        matches these runs.

    A unit that raises marks its runs failed (reported, retried next time) and the campaign
    goes on; ``KeyboardInterrupt`` and ``SystemExit`` stop it. Bad input found before the
    first result (e.g. an unknown dataset) leaves OUT as it was.
    """
    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    start = time.perf_counter()
    summary = Summary(total=len(runs))
    out_existed = store.out_dir.exists()
    created = store.claim(manifest, rebuild=rebuild_manifest, runs=runs)
    try:
        summary.stale_temp_files = store.sweep()
        finished, pending, summary.corrupt = store.partition(runs, warn)
        summary.skipped = len(finished)
        if pending:
            executor.prepare(task)
            _run_units(store, task, executor, make_units(pending, runs_per_unit), summary,
                       manifest, progress, warn)
    except BaseException:
        if created:
            store.release_new_claim(created_dir=not out_existed)
        raise
    summary.wall_time_s = time.perf_counter() - start
    return summary


def _run_units(store, task, executor, units, summary, manifest, progress, warn) -> None:
    n_pending = sum(len(u.runs) for u in units)
    bar = tqdm(
        total=n_pending,
        desc=f"{manifest.get('campaign', 'campaign')} ({summary.skipped} done before)",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    say = tqdm.write if progress else warn
    in_flight: dict[str, Unit] = {}

    def claimed() -> Iterator[Unit]:
        for unit in units:
            mine = tuple(spec for spec in unit.runs if store.try_claim_run(spec))
            others = len(unit.runs) - len(mine)
            if others:
                summary.elsewhere += others
                bar.total -= others
                bar.refresh()
            if mine:
                unit = Unit(mine)
                in_flight[unit.unit_id] = unit
                yield unit

    consecutive_failures = 0
    try:
        with bar, contextlib.closing(executor.map_units(task, claimed())) as outcomes:
            for unit, outcome in outcomes:
                in_flight.pop(unit.unit_id, None)
                for spec in unit.runs:
                    store.release_run(spec)
                summary.units += 1
                if isinstance(outcome, BaseException):
                    outcome = UnitOutcome(
                        failed={s.run_id: error_line(outcome) for s in unit.runs}
                    )
                for run_id, message in outcome.failed.items():
                    summary.failed[run_id] = message
                    say(f"run {run_id} failed: {message}")
                summary.completed += len(outcome.finished)
                bar.update(len(unit.runs))
                if outcome.finished:
                    scores = " ".join(f"{100 * f:.1f}" for f in outcome.finished.values())
                    bar.set_postfix_str(f"{unit.unit_id} F1 {scores}", refresh=False)
                consecutive_failures = 0 if outcome.finished else consecutive_failures + 1
                if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    say(f"stopping: {consecutive_failures} units in a row failed")
                    break
    finally:
        for unit in in_flight.values():
            for spec in unit.runs:
                store.release_run(spec)
