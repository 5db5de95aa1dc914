"""The command line shared by the campaigns: options, presets, planning and ``main``.

A campaign module defines a :class:`Campaign` (its grid, report and options) and calls
``main(CAMPAIGN)``. ``main`` plans the grid, claims OUT, executes the unfinished runs in
units on the chosen executor, and writes the report; ``--dry-run`` prints the plan and an
estimated wall time instead, writing nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments import execution, executors
from experiments.execution import set_host_devices
from experiments.grid import (
    DEFAULT_FOLDS,
    DEFAULT_PAIRING,
    PAIRINGS,
    CampaignError,
    ConfigSpec,
    RunSpec,
    expand_runs,
    make_units,
)
from experiments.store import MANIFEST, ResultStore, jsonable, manifest_differences
from experiments.training import trainer_unit_fn

# Dataset options that locate or cache data without changing it: left out of the manifest, so
# a rerun may find the same dataset elsewhere.
NOT_DATASET_IDENTITY = frozenset({"data_dir", "no_cache", "test_data_dir", "test_no_cache"})

# The quick preset: few folds, capped epochs and a small batch (B = 1024 on ~2k training
# flows is 2 steps an epoch: nothing is learnt in a few epochs), on any dataset; the
# synthetic default is also scaled down so that the quick G1 finishes in minutes on 2 CPU
# cores. Explicit options win.
QUICK_PRESET = {"folds": 2, "max_epochs": 4, "batch_size": 128}
QUICK_SYNTHETIC_SCALE = 0.03


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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def augmentation_list(text: str) -> tuple[str, ...]:
    """``--augs a,b,c``: known augmentations (the paper's 18 and any registered with
    ``jtcaug.aug.register`` through ``--aug-module``), at least one, no repeats."""
    from jtcaug import aug

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in aug.FAMILY]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown augmentation(s) {', '.join(unknown) or repr(text)}; known: "
            f"{', '.join(aug.FAMILY)}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"augmentations repeat in {text!r}")
    return names


def paper_order(names) -> list[str]:
    """``names`` with the paper's 18 first, in the paper's order, then registered ones."""
    from jtcaug import aug

    return [n for n in aug.NAMES if n in names] + [n for n in names if n not in aug.NAMES]


def _runs_per_unit(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return int(match[1]), int(match[2])


def build_parser(campaign: Campaign) -> tuple[argparse.ArgumentParser, list[str]]:
    """The campaign's parser and the names of the dataset options (recorded in the manifest)."""
    import jtcaug.data
    from jtcaug.backbones import MODELS

    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{campaign.name}",
        description=campaign.title,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    before = {a.dest for a in parser._actions}
    jtcaug.data.add_dataset_arguments(parser)
    jtcaug.data.add_test_dataset_arguments(parser)
    dataset_dests = [
        a.dest for a in parser._actions
        if a.dest not in before and a.dest not in NOT_DATASET_IDENTITY
    ]
    own = {a.option_strings[0] for a in parser._actions if a.option_strings}
    group = parser.add_argument_group("campaign")
    group.add_argument(
        "--folds", type=positive_int, default=None,
        help=f"folds per configuration (default {campaign.default_folds}; quick preset "
        f"{QUICK_PRESET['folds']})",
    )
    group.add_argument(
        "--quick", action="store_true",
        help="small preset on any dataset: {folds} folds, at most {max_epochs} epochs, batch "
        "size {batch_size}; the synthetic default is also scaled to {scale}".format(
            scale=QUICK_SYNTHETIC_SCALE, **QUICK_PRESET),
    )
    group.add_argument("--out", type=Path, default=None,
                       help="campaign directory (default runs/<campaign>-<dataset>[-quick])")
    if "--seed" not in own:
        group.add_argument("--seed", type=int, default=0, help="training seed of the campaign")
    group.add_argument("--max-epochs", type=positive_int, default=None,
                       help="cap on epochs per run (default: the trainer's, 500)")
    group.add_argument("--batch-size", type=positive_int, default=None,
                       help="rows per training step (default: the trainer's, 1024 as the paper)")
    group.add_argument(
        "--model", default=None, metavar="|".join(MODELS),
        help="backbone every run trains (default: the trainer's, resnet1d, the paper's "
        "ResNet-1d); transformer: a small Transformer encoder (docs/models.md)",
    )
    group.add_argument(
        "--pairing", choices=PAIRINGS, default=DEFAULT_PAIRING,
        help="split: runs of a fold share only its split, as the paper describes; seeds: they "
        "also share initial weights, epoch order and augmentation draws (tighter pairing)",
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument(
        "--compile-cache", default=str(default_compile_cache()), metavar="DIR",
        help="persistent JAX compilation cache shared by campaigns ('none' turns it off)",
    )
    group.add_argument("--dry-run", action="store_true",
                       help="print the grid, units, executor and an estimated wall time from "
                       "a short calibration; write nothing")
    group.add_argument("--report-only", action="store_true",
                       help="build the report from the result files in OUT; train nothing")
    group.add_argument("--rebuild-manifest", action="store_true",
                       help="replace a damaged or missing manifest.json with these options, "
                       "accepted when every result file in OUT matches them")

    group.add_argument(
        "--aug-module", action="append", default=[], metavar="MODULE",
        help="import MODULE first: its jtcaug.aug.register(...) calls make its augmentations "
        "usable in --augs and every combination (repeatable)",
    )

    engine = parser.add_argument_group("execution")
    engine.add_argument(
        "--runs-per-unit", type=_runs_per_unit, default="auto", metavar="auto|K",
        help="runs of one configuration (folds) trained together in one compiled program; "
        "auto: one per device on CPU, as many folds as fit on a GPU",
    )
    engine.add_argument(
        "--host-devices", type=positive_int, default=None, metavar="N",
        help="split the CPU into N JAX devices (each trains its own runs of a unit); default "
        f"{DEFAULT_HOST_DEVICES}; no effect on a GPU",
    )
    engine.add_argument("--executor", choices=executors.EXECUTORS, default="local",
                        help="local: this process; ray: one Ray task per unit")
    engine.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                        help="a running Ray cluster's head (default: start Ray locally)")
    engine.add_argument("--cpus-per-unit", type=_non_negative_float, default=1.0,
                        help="CPUs a Ray task of one unit asks for")
    engine.add_argument("--gpus-per-unit", type=_non_negative_float, default=0.0,
                        help="GPUs a Ray task of one unit asks for (fractions share a GPU)")
    engine.add_argument("--shard", type=_shard, default=None,
                        help="run only units i, i+N, ... (I/N) for plain job arrays; default "
                        "from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT when set")
    if campaign.add_arguments is not None:
        campaign.add_arguments(parser)
    return parser, dataset_dests


# The CPU split into two JAX devices, each training its own run of a unit: on 2 cores this
# was the fastest layout ``benchmarks/bench_campaign.py`` measured (benchmarks/README.md).
DEFAULT_HOST_DEVICES = 2


def default_compile_cache() -> Path:
    """``$JTCAUG_CACHE/jax-compile`` (or ``$XDG_CACHE_HOME`` / ``~/.cache`` + ``jtcaug``)."""
    if os.environ.get("JTCAUG_CACHE"):
        base = Path(os.environ["JTCAUG_CACHE"]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jtcaug"
    return base / "jax-compile"


def enable_compile_cache(directory: str) -> None:
    """Points JAX's persistent compilation cache at ``directory``: every configuration
    compiles its training program once per machine, not once per campaign invocation."""
    if directory.lower() == "none":
        return
    import jax

    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise CampaignError(f"--compile-cache {directory} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CampaignError(
            f"--compile-cache {directory}: cannot create it ({exc.strerror})"
        ) from None
    jax.config.update("jax_compilation_cache_dir", directory)


def is_synthetic(dataset: str) -> bool:
    from jtcaug.data.registry import ALIASES, PRESETS

    return dataset in PRESETS or dataset in ALIASES


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
        if is_synthetic(args.dataset) and args.scale == parser.get_default("scale"):
            args.scale = QUICK_SYNTHETIC_SCALE
        for dest, value in campaign.quick_defaults.items():
            if getattr(args, dest) == parser.get_default(dest):
                setattr(args, dest, value)
    return preset


def dataset_label(args: argparse.Namespace) -> str:
    name = str(getattr(args, "dataset", "dataset"))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"


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


def shard_of(args: argparse.Namespace) -> tuple[int, int]:
    """``--shard I/N``, else the SLURM job array's task, else the whole grid."""
    if args.shard is not None:
        return args.shard
    task, count = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
    if task is None or count is None:
        return 0, 1
    try:
        return _shard(f"{task}/{count}")
    except argparse.ArgumentTypeError:
        raise CampaignError(
            f"SLURM_ARRAY_TASK_ID={task} / SLURM_ARRAY_TASK_COUNT={count} do not give a "
            "shard I/N with 0 <= I < N (arrays must be numbered from 0); pass --shard"
        ) from None


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
) -> tuple[execution.Summary, Path]:
    """Executes this shard's units of a planned campaign and writes its report.

    ``host_devices``: the CPU split that worker processes apply before training (the units
    are sized for it).
    """
    from experiments import report

    store = ResultStore(out_dir)
    store.check_layout()
    executor = executor or executors.LocalExecutor()
    if make_unit_fn is None:
        make_unit_fn = functools.partial(campaign.make_unit_fn, args, args.folds)
    task = execution.UnitTask(out_dir=str(Path(out_dir).resolve()), make_unit_fn=make_unit_fn,
                              host_devices=host_devices)
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


def import_aug_modules(modules: Sequence[str]) -> None:
    """Imports the ``--aug-module`` modules (their ``register`` calls run on import)."""
    from jtcaug import aug

    for module in modules:
        aug.import_augmentation_module(module)


def main(campaign: Campaign, argv: Sequence[str] | None = None,
         make_unit_fn: Callable[[], execution.UnitFn] | None = None) -> int:
    """Command line of a campaign; returns the process exit status.

    ``make_unit_fn`` replaces the campaign's unit function (tests drive the command line
    with a fake trainer).
    """
    # Registered augmentations must exist before --augs is parsed and checked.
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--aug-module", action="append", default=[])
    try:
        import_aug_modules(early.parse_known_args(argv)[0].aug_module)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser, dataset_dests = build_parser(campaign)
    args = parser.parse_args(argv)
    executor = None
    try:
        host_devices = args.host_devices or DEFAULT_HOST_DEVICES
        set_host_devices(host_devices, explicit=args.host_devices is not None)
        preset = apply_preset(parser, args, campaign)
        # Options left at None change nothing, nor do test-dataset options without a test
        # dataset: kept out, the manifest lists what was chosen.
        dataset = {dest: getattr(args, dest) for dest in dataset_dests
                   if getattr(args, dest) is not None
                   and (args.test_dataset is not None or not dest.startswith("test_"))}
        the_plan = plan(campaign, args, dataset, preset)
        out_dir = args.out if args.out is not None else Path("runs") / (
            f"{campaign.name}-{dataset_label(args)}" + ("-quick" if args.quick else "")
        )
        if str(out_dir).strip() == "":
            raise CampaignError("--out must not be empty")
        if args.report_only:
            lines, report_path = report_only(campaign, out_dir, the_plan, args)
            print("\n".join(lines))
            print(f"report: {report_path}")
            return 0
        shard = shard_of(args)
        runs_per_unit = resolve_runs_per_unit(args.runs_per_unit, the_plan)
        if args.dry_run:
            from experiments import planning

            print("\n".join(planning.dry_run_lines(campaign, args, the_plan, runs_per_unit,
                                                    shard, out_dir)))
            return 0
        enable_compile_cache(args.compile_cache)
        if make_unit_fn is None and args.executor == "ray":
            make_unit_fn = functools.partial(
                execution.campaign_unit_fn, campaign.module, args, args.folds
            )
        executor = executors.make_executor(
            args.executor, args.ray_address, args.cpus_per_unit, args.gpus_per_unit
        )
        summary, report_path = run_campaign(
            campaign, args, out_dir, the_plan, executor=executor, runs_per_unit=runs_per_unit,
            shard=shard, progress=not args.no_progress, make_unit_fn=make_unit_fn,
            rebuild_manifest=args.rebuild_manifest, host_devices=host_devices,
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
    finally:
        if executor is not None:
            executor.close()
    for line in summary.lines():
        print(line)
    print(f"report: {report_path}")
    return 1 if summary.failed else 0
