"""A campaign: the hooks a campaign module defines, its plan, and its execution.

``plan`` resolves a :class:`Campaign`'s grid, manifest and runs from parsed options;
``run_campaign`` executes the unfinished runs in units on an executor and writes the report;
``report_only`` writes the report from the result files alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments import execution, executors
from experiments.grid import (
    DEFAULT_FOLDS,
    DEFAULT_PAIRING,
    CampaignError,
    ConfigSpec,
    RunSpec,
    expand_runs,
    make_units,
)
from experiments.store import MANIFEST, ResultStore, jsonable, manifest_differences
from experiments.training import trainer_unit_fn


@dataclasses.dataclass(frozen=True)
class Campaign:
    """A campaign module's hooks for :func:`main`.

    Attributes:
      name: short id (``g1``); the module is ``experiments.<name>``.
      title: report title.
      build_grid: ``args -> [ConfigSpec]`` (raises CampaignError on bad options).
      build_report: ``ReportInput -> [report.Section]``.
      add_arguments: adds campaign-specific options to the parser.
      options: ``args -> dict`` of campaign-specific options recorded in the manifest.
      make_unit_fn: ``(args, n_folds) -> UnitFn``; default trains with ``jtcaug.train``.
      default_folds: ``--folds`` default.
      quick_defaults: campaign options the quick preset changes (unless given explicitly).
      report_inputs: ``args -> dict`` of what the report reads besides the campaign's own
        runs (G3: a finished G1's gains), resolved and checked when the campaign is planned.
        Kept out of the manifest: such an input can join a campaign's report at any time.
      next_stage: for a campaign whose later configurations depend on earlier results (G6's
        generations): ``(args, grid so far, results of its finished runs) -> [ConfigSpec]``,
        the next stage's configurations, or ``[]`` when the campaign is complete or the
        results the next stage needs are not all there. ``build_grid`` gives the first
        stage, which alone is recorded in the manifest: later stages are a deterministic
        function of the options and the stored results, so a rerun rebuilds them and goes
        on where it stopped.
    """

    name: str
    title: str
    build_grid: Callable[[argparse.Namespace], list[ConfigSpec]]
    build_report: Callable[[Any], list]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    options: Callable[[argparse.Namespace], dict] | None = None
    make_unit_fn: Callable[[argparse.Namespace, int], execution.UnitFn] = trainer_unit_fn
    default_folds: int = DEFAULT_FOLDS
    quick_defaults: dict = dataclasses.field(default_factory=dict)
    report_inputs: Callable[[argparse.Namespace], dict] | None = None
    next_stage: Callable[[argparse.Namespace, list[ConfigSpec], Any], list[ConfigSpec]] | None = (
        None
    )

    @property
    def module(self) -> str:
        return f"experiments.{self.name}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """A campaign resolved from its options: the grid, its manifest, all its runs, and the
    report's inputs from elsewhere (``Campaign.report_inputs``)."""

    grid: list[ConfigSpec]
    manifest: dict
    runs: list[RunSpec]
    report_inputs: dict = dataclasses.field(default_factory=dict)


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
    pairing: str = DEFAULT_PAIRING,
    model: str | None = None,
) -> dict:
    """The campaign configuration that result files depend on (JSON-ready).

    ``model`` is None for the default backbone, so campaigns begun before ``--model``
    existed keep an equal manifest.
    """
    return jsonable(
        {
            "campaign": campaign,
            "dataset": dataset,
            "folds": n_folds,
            "preset": preset,
            "seed": seed,
            "max_epochs": max_epochs,
            "batch_size": batch_size,
            "pairing": pairing,
            "model": model,
            "precision": "float32",
            "options": options or {},
            "grid": [c.to_dict() for c in grid],
        }
    )


def plan(campaign: Campaign, args: argparse.Namespace, dataset: dict, preset: str) -> Plan:
    """Resolves a campaign's grid, manifest and runs from parsed options.

    Args:
      args: the options (``folds``, ``seed``, ``max_epochs``, ``batch_size``, ``pairing``,
        ``model`` and the campaign's own).
      dataset: the dataset options, recorded in the manifest (``args.dataset_options``).
      preset: ``"quick"`` or ``"full"``.
    """
    # Campaign hooks may need the dataset options (G4 checks a G1 directory against them).
    args.dataset_options = dataset
    pairing = getattr(args, "pairing", DEFAULT_PAIRING)
    model = campaign_model(getattr(args, "model", None))
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
        pairing=pairing,
        model=model,
    )
    if getattr(args, "aug_module", None):
        manifest["aug_modules"] = list(args.aug_module)
    runs = expand_runs(grid, args.folds, args.seed, args.max_epochs, args.batch_size, pairing,
                       model)
    inputs = campaign.report_inputs(args) if campaign.report_inputs else {}
    return Plan(grid, manifest, runs, inputs)


def extend_plan(campaign: Campaign, args: argparse.Namespace, plan_: Plan,
                store: ResultStore) -> Plan:
    """``plan_`` with every further stage that the finished runs in ``store`` determine
    (``Campaign.next_stage``); the manifest stays the first stage's."""
    if campaign.next_stage is None:
        return plan_
    from experiments.results import collect_results

    grid, runs = list(plan_.grid), list(plan_.runs)
    while True:
        new = campaign.next_stage(args, list(grid), collect_results(store, runs))
        if not new:
            return Plan(grid, plan_.manifest, runs, plan_.report_inputs)
        taken = {c.name for c in grid} & {c.name for c in new}
        if taken:
            raise CampaignError(f"a later stage repeats config names: {', '.join(sorted(taken))}")
        grid += new
        runs += expand_runs(new, args.folds, args.seed, args.max_epochs, args.batch_size,
                            getattr(args, "pairing", DEFAULT_PAIRING),
                            campaign_model(getattr(args, "model", None)))


def campaign_model(name: str | None) -> str | None:
    """``--model``: None for the default backbone (named or not), else the checked name.

    Raises:
      CampaignError: ``unknown model 'x'; choose from resnet1d, transformer``.
    """
    from jtcaug.backbones import DEFAULT_MODEL, check_model

    if name is None:
        return None
    try:
        return None if check_model(name) == DEFAULT_MODEL else name
    except ValueError as err:
        raise CampaignError(str(err)) from None


def resolve_runs_per_unit(value: int | str, plan_: Plan) -> int:
    """K: the given number, or (auto) one run per device on CPU and on a GPU as many runs of
    a configuration (or of a unit group: G6's population) as its memory allows."""
    if value != "auto":
        return int(value)
    import jax

    devices = jax.devices()
    if devices[0].platform == "cpu":
        return len(devices)
    per_unit = Counter(r.config.unit_group or r.config.name for r in plan_.runs)
    most_folds = max(per_unit.values(), default=1)
    stats = devices[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    # A run's program needs well under this on the paper's model and data; half the memory
    # stays free for XLA's own buffers.
    per_run = 512 * 2**20
    fit = most_folds if limit is None else max(1, int(limit // 2 // per_run))
    return max(1, min(most_folds, fit) // len(devices) * len(devices) or len(devices))


def run_campaign(
    campaign: Campaign,
    args: argparse.Namespace,
    out_dir: Path,
    the_plan: Plan,
    *,
    executor=None,
    runs_per_unit: int = 1,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    make_unit_fn: Callable[[], execution.UnitFn] | None = None,
    rebuild_manifest: bool = False,
    host_devices: int | None = None,
    compile_cache: str | None = None,
) -> tuple[execution.Summary, Path]:
    """Executes this shard's units of a planned campaign and writes its report.

    ``host_devices``: the CPU split that worker processes apply before training (the units
    are sized for it). ``compile_cache``: the persistent compilation cache directory that
    worker processes use too (None: none).
    """
    from experiments import report

    store = ResultStore(out_dir)
    store.check_layout()
    executor = executor or executors.LocalExecutor()
    if make_unit_fn is None:
        make_unit_fn = functools.partial(campaign.make_unit_fn, args, args.folds)
    task = execution.UnitTask(out_dir=str(Path(out_dir).resolve()), make_unit_fn=make_unit_fn,
                              host_devices=host_devices, compile_cache=compile_cache)
    summary = None
    # Stages that finished runs already determine join the first execution (and a
    # --rebuild-manifest check sees their result files as runs of these options).
    the_plan = extend_plan(campaign, args, the_plan, store)
    while True:
        runs = the_plan.runs
        if shard != (0, 1):
            mine = {r.run_id for u in make_units(runs, runs_per_unit)[shard[0]::shard[1]]
                    for r in u.runs}
            runs = [r for r in runs if r.run_id in mine]
        stage = execution.execute(
            store, the_plan.manifest, runs, task, executor, runs_per_unit=runs_per_unit,
            progress=progress, rebuild_manifest=rebuild_manifest,
        )
        stage.total = len(runs)
        summary = stage if summary is None else _merge(summary, stage)
        # A staged campaign goes on while its finished runs determine another stage.
        extended = extend_plan(campaign, args, the_plan, store)
        if len(extended.runs) == len(the_plan.runs):
            break
        the_plan, rebuild_manifest = extended, False
    report_path = report.write_campaign_report(out_dir, campaign, the_plan.manifest,
                                               the_plan.runs, the_plan.report_inputs)
    return summary, report_path


def _merge(before: execution.Summary, stage: execution.Summary) -> execution.Summary:
    """One summary of two consecutive executions over a growing run list: runs ``stage``
    found finished that ``before`` had not seen finished count as already there."""
    seen = before.skipped + before.completed
    failed = {**before.failed, **stage.failed}
    return dataclasses.replace(
        stage,
        skipped=before.skipped + max(stage.skipped - seen, 0),
        completed=before.completed + stage.completed,
        units=before.units + stage.units,
        elsewhere=before.elsewhere + stage.elsewhere,
        corrupt=before.corrupt + stage.corrupt,
        failed=failed,
        stale_temp_files=before.stale_temp_files + stage.stale_temp_files,
        wall_time_s=before.wall_time_s + stage.wall_time_s,
    )


def report_only(campaign: Campaign, out_dir: Path, the_plan: Plan,
                args: argparse.Namespace | None = None) -> tuple[list[str], Path]:
    """Builds the report from OUT's result files; returns lines saying what is missing."""
    from experiments import report

    store = ResultStore(out_dir)
    store.check_layout()
    old = store.read_manifest()
    if old is None:
        raise CampaignError(f"{out_dir} holds no campaign ({MANIFEST} missing)")
    diffs = manifest_differences(old, the_plan.manifest)
    if diffs:
        raise CampaignError(f"{out_dir} holds a campaign with a different configuration ("
                            + "; ".join(diffs) + ")")
    if args is not None:
        the_plan = extend_plan(campaign, args, the_plan, store)
    missing: dict[str, list[int]] = {}
    for spec in the_plan.runs:
        if not store.is_finished(spec):
            missing.setdefault(spec.config.name, []).append(spec.fold)
    path = report.write_campaign_report(out_dir, campaign, the_plan.manifest, the_plan.runs,
                                        the_plan.report_inputs)
    n_missing = sum(len(v) for v in missing.values())
    lines = [f"runs: {len(the_plan.runs) - n_missing}/{len(the_plan.runs)} finished"]
    lines += [f"missing {name}: folds {_spans(folds)}" for name, folds in missing.items()]
    return lines, path


def _spans(folds: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    spans: list[list[int]] = []
    for fold in folds:
        if spans and fold == spans[-1][1] + 1:
            spans[-1][1] = fold
        else:
            spans.append([fold, fold])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
