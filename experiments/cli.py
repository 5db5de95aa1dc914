"""The command line shared by the campaigns: options, presets and ``main``.

A campaign module defines a :class:`experiments.campaign.Campaign` (its grid, report and
options) and calls ``main(CAMPAIGN)``. ``main`` parses the options, plans the grid, executes
the unfinished runs in units on the chosen executor, and writes the report; ``--dry-run``
prints the plan and an estimated wall time instead, writing nothing.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from experiments import execution, executors
from experiments.campaign import Campaign, plan, report_only, resolve_runs_per_unit, run_campaign
from experiments.execution import enable_compile_cache, set_host_devices
from experiments.grid import DEFAULT_PAIRING, PAIRINGS, CampaignError

# Dataset options that locate or cache data without changing it: left out of the manifest, so
# a rerun may find the same dataset elsewhere.
NOT_DATASET_IDENTITY = frozenset({"data_dir", "no_cache", "test_data_dir", "test_no_cache"})

# The quick preset: few folds, capped epochs and a small batch (B = 1024 on ~2k training
# flows is 2 steps an epoch: nothing is learnt in a few epochs), on any dataset; the
# synthetic default is also scaled down so that the quick G1 finishes in minutes on 2 CPU
# cores. Explicit options win.
QUICK_PRESET = {"folds": 2, "max_epochs": 4, "batch_size": 128}
QUICK_SYNTHETIC_SCALE = 0.03


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
        f"{DEFAULT_HOST_DEVICES} ({QUICK_HOST_DEVICES} with --quick); no effect on a GPU",
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
# The quick preset is compile-bound (a few small epochs per configuration), and a one-device
# program compiles in about half the time of a two-device one: one device wins there
# (benchmarks/README.md).
QUICK_HOST_DEVICES = 1


def host_devices_of(args: argparse.Namespace) -> int:
    """``--host-devices``, else the default of the preset."""
    if args.host_devices is not None:
        return args.host_devices
    return QUICK_HOST_DEVICES if args.quick else DEFAULT_HOST_DEVICES


def default_compile_cache() -> Path:
    """``$JTCAUG_CACHE/jax-compile`` (or ``$XDG_CACHE_HOME`` / ``~/.cache`` + ``jtcaug``)."""
    if os.environ.get("JTCAUG_CACHE"):
        base = Path(os.environ["JTCAUG_CACHE"]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jtcaug"
    return base / "jax-compile"


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
        host_devices = host_devices_of(args)
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
        compile_cache = enable_compile_cache(args.compile_cache)
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
            compile_cache=compile_cache,
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
