"""G4 - combining augmentations (paper Sec. 5.4, Table 7).

Grid (every augmented config with inject:1, alpha ~ U(0, 1)): the baseline, the top three
single augmentations, and Ensemble, RandomStack and MaskedStack p in {0.3, 0.5, 0.7} over
those three. The top three are the paper's (translation, wrap, permutation) unless given with
``--top3`` or taken from a finished G1 of the same dataset with ``--top3-from G1_OUT``.

    python -m experiments.g4 --dataset mirage19 --top3-from runs/g1-mirage19
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments import finished, report
from experiments.campaign import Campaign
from experiments.cli import augmentation_list, main
from experiments.grid import CampaignError, ConfigSpec
from experiments.report import ReportInput, Section
from jtcaug import aug

BASELINE = "none"
DEFAULT_TOP3 = ("translation", "wrap", "permutation")  # [paper]
MASKED_P = ("0.3", "0.5", "0.7")  # [paper]


def _aug_pool(text: str) -> tuple[str, ...]:
    names = augmentation_list(text)
    if len(names) < 2:
        raise argparse.ArgumentTypeError(f"expected >= 2 distinct augmentations, got {text!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("G4")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--top3", type=_aug_pool, default=None,
                        help=f"the pool to combine (default {','.join(DEFAULT_TOP3)})")
    source.add_argument("--top3-from", type=Path, default=None, metavar="G1_OUT",
                        help="take the three best augmentations of a finished G1 campaign "
                        "directory of the same dataset")


def top3_from_g1(g1_dir: Path, dataset: dict, n: int = 3, option: str = "--top3-from",
                 model: str | None = None) -> tuple[str, ...]:
    """The ``n`` single augmentations with the highest mean gain in a finished G1 of
    ``dataset`` trained with ``model`` (``option`` names the command-line option in error
    messages).

    Augmentations that cannot join a combination pool (cutmix acts on whole batches) are
    passed over.
    """
    g1_run = finished.read_finished_g1(g1_dir, option, dataset, model)
    gains = finished.g1_single_gains(g1_run).dropna(subset=["gain"])
    gains = gains[gains["aug"].map(_poolable).astype(bool)]
    if len(gains) < n:
        names = f" ({', '.join(gains['aug'])})" if len(gains) else ""
        raise CampaignError(f"{option} {g1_dir}: the G1 campaign benchmarked {len(gains)} "
                            f"augmentation(s) that can join a pool{names}, {n} needed")
    return tuple(gains.sort_values("gain", ascending=False, kind="stable")["aug"].head(n))


def _poolable(name: str) -> bool:
    try:
        aug.validate_how(f"ensemble[{name}]")
    except ValueError:
        return False
    return True


def pool(args: argparse.Namespace) -> tuple[str, ...]:
    """The pool of this campaign (resolved once; --top3-from reads the G1 directory)."""
    if getattr(args, "_pool", None) is None:
        if args.top3_from is not None:
            args._pool = top3_from_g1(args.top3_from, args.dataset_options,
                                      model=getattr(args, "model", None))
        else:
            args._pool = tuple(args.top3 or DEFAULT_TOP3)
    return args._pool


def options(args: argparse.Namespace) -> dict:
    return {"pool": list(pool(args))}


def combination_hows(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(config name, augment_batch how)`` of each combination over ``names``."""
    members = ",".join(names)
    hows = [("ensemble", f"ensemble[{members}]"), ("random_stack", f"random_stack[{members}]")]
    hows += [(f"masked_stack_p{p}", f"masked_stack:{p}[{members}]") for p in MASKED_P]
    for _, how in hows:
        aug.validate_how(how)
    return hows


def build_grid(args: argparse.Namespace) -> list[ConfigSpec]:
    names = pool(args)
    grid = [ConfigSpec(BASELINE, "baseline", {"aug": "none", "policy": "none", "alpha": None})]
    grid += [ConfigSpec(n, "single", {"aug": n, "policy": "inject:1", "alpha": None})
             for n in names]
    grid += [ConfigSpec(name, "combined", {"aug": how, "policy": "inject:1", "alpha": None})
             for name, how in combination_hows(names)]
    return grid


def table7_section(ri: ReportInput) -> Section:
    rows = [("Single", n, n) for n in ri.names("single")]
    rows += [("Combined", n, n.replace("_p", " p=")) for n in ri.names("combined")]
    table = report.gain_benchmark_table(
        ri.results, BASELINE, rows, name="table7_combinations", n_marked=1,
        caption="Table 7: baseline weighted F1 (%) and gains (points) of single and combined "
        "augmentations, mean ± 95% CI over folds",
    )
    return Section(
        title="Table 7 - combining augmentations",
        text=f"Pool: {', '.join(ri.manifest['options']['pool'])}; MaskedStack applies them in "
        "this order, skipping each with probability p. Bold: best gain; italic: worst.",
        tables=[table],
    )


def ranks_section(ri: ReportInput) -> Section:
    configs = [BASELINE, *ri.names("single"), *ri.names("combined")]
    return report.rank_section(ri.results, configs, "Ranks of single vs combined",
                               "g4_critical_distance")


def build_report(ri: ReportInput) -> list[Section]:
    return [
        report.section("Table 7 - combining augmentations", lambda: table7_section(ri)),
        report.section("Ranks of single vs combined", lambda: ranks_section(ri)),
    ]


CAMPAIGN = Campaign(
    name="g4",
    title="G4 - combining augmentations",
    build_grid=build_grid,
    build_report=build_report,
    add_arguments=add_arguments,
    options=options,
)

if __name__ == "__main__":
    sys.exit(main(CAMPAIGN))
