"""G1 - benchmark of the 18 augmentations (paper Sec. 5.1, Table 5, Fig. 3, Fig. 8).

Grid: the baseline (no augmentation, B = 1024) and every augmentation (or those of
``--augs``) with inject:1 (B_orig = 512), alpha ~ U(0, 1); plus the magnitude study:
alpha = 0.5 for six augmentations on the first ``--magnitude-folds`` folds, paired with the
random-alpha runs of the same folds.

    python -m experiments.g1 --dataset mirage19
    python -m experiments.g1 --quick            # synthetic default, minutes on a laptop
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from experiments import report
from experiments.campaign import Campaign
from experiments.cli import augmentation_list, main, paper_order
from experiments.grid import ConfigSpec
from experiments.report import FigureOut, NotEnoughResults, ReportInput, Section, Table
from jtcaug import aug
from jtcaug.evaluation import plots, stats

BASELINE = "none"
# [paper] 3 of the best and 3 of the worst; horizontal_flip hurts, interpolation has no alpha.
MAGNITUDE_AUGS = (
    "translation", "wrap", "permutation", "gaussian_noise", "sine_wrapup", "constant_wrapup",
)
MAGNITUDE_ALPHA = 0.5
MAGNITUDE_FOLDS = 10  # [paper] "10 modeling runs" per augmentation with alpha = 0.5
FAMILY_ORDER = ("amplitude", "masking", "sequence")


def static_name(name: str) -> str:
    return f"{name}_alpha{MAGNITUDE_ALPHA}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("G1")
    group.add_argument("--augs", type=augmentation_list, default=aug.NAMES,
                       help="augmentations to benchmark (comma-separated; default all 18)")
    group.add_argument(
        "--magnitude-folds", type=int, default=MAGNITUDE_FOLDS,
        help="folds of the static-alpha runs of the magnitude study (0 skips the study)",
    )


def options(args: argparse.Namespace) -> dict:
    return {"augs": list(args.augs), "magnitude_folds": min(args.magnitude_folds, args.folds)}


def build_grid(args: argparse.Namespace) -> list[ConfigSpec]:
    if args.magnitude_folds < 0:
        raise ValueError(f"--magnitude-folds must be >= 0, got {args.magnitude_folds}")
    grid = [ConfigSpec(BASELINE, "baseline", {"aug": "none", "policy": "none", "alpha": None})]
    grid += [
        ConfigSpec(name, "single", {"aug": name, "policy": "inject:1", "alpha": None})
        for name in paper_order(args.augs)
    ]
    magnitude_folds = min(args.magnitude_folds, args.folds)
    if magnitude_folds > 0:
        grid += [
            ConfigSpec(
                static_name(name),
                "magnitude",
                {"aug": name, "policy": "inject:1", "alpha": MAGNITUDE_ALPHA},
                max_folds=magnitude_folds,
            )
            for name in MAGNITUDE_AUGS
            if name in args.augs
        ]
    return grid


def family_rows(names) -> list[tuple[str, str, str]]:
    """``(family, name, name)`` rows grouped by family in spec order."""
    return [
        (family, name, name)
        for family in FAMILY_ORDER
        for name in names
        if aug.FAMILY.get(name) == family
    ]


def table5_section(ri: ReportInput) -> Section:
    table = report.gain_benchmark_table(
        ri.results, BASELINE, family_rows(ri.names("single")), name="table5_gains",
        caption="Table 5: weighted F1 of the baseline (%) and gain of each augmentation over "
        "the baseline of the same fold (points), mean ± 95% CI (Student t over folds)",
    )
    step_batch = ri.manifest.get("batch_size") or 1024
    return Section(
        title="Table 5 - augmentation benchmark",
        text=f"Inject N = 1 (B_orig = {step_batch // 2} of a {step_batch}-row step), "
        "alpha ~ U(0, 1). Bold: best three by mean gain; italic: worst three.",
        tables=[table],
    )


def ranks_section(ri: ReportInput) -> Section:
    configs = [BASELINE, *ri.names("single")]
    return report.rank_section(ri.results, configs, "Fig. 3 - ranks and critical distance",
                               "fig3_critical_distance")


def epochs_section(ri: ReportInput) -> Section:
    singles = ri.names("single")
    gains = report.gain_table(ri.results, BASELINE, singles).set_index("config")
    epochs = ri.results.groupby("config")["epochs_run"].mean()
    have = [n for n in singles if gains.loc[n, "n"] > 0 and n in epochs.index]
    if not have or BASELINE not in epochs.index:
        raise NotEnoughResults("no augmentation paired with the baseline yet")
    frame = pd.DataFrame({
        "config": have,
        "family": [aug.FAMILY[n] for n in have],
        "gain": [gains.loc[n, "gain"] for n in have],
        "ci": [gains.loc[n, "ci"] for n in have],
        "mean_epochs": [float(epochs[n]) for n in have],
    })
    corr = (
        stats.spearman(frame["gain"], frame["mean_epochs"]) if len(have) >= 3 else None
    )
    fig = plots.gain_vs_epochs_figure(
        have, frame["family"].tolist(), frame["gain"], frame["ci"], frame["mean_epochs"],
        baseline_epochs=float(epochs[BASELINE]),
    )
    text = f"Baseline trains {float(epochs[BASELINE]):.1f} epochs on average (early stopping)."
    if ri.manifest.get("max_epochs") and frame["mean_epochs"].max() >= ri.manifest["max_epochs"]:
        text += (f" Runs hit the cap of {ri.manifest['max_epochs']} epochs (--max-epochs), so "
                 "epochs say little about the augmentations here.")
    if corr is not None and np.isfinite(corr.statistic):
        text += (f" Spearman correlation of gain and epochs across augmentations: "
                 f"rho = {corr.statistic:.2f}, p = {report.fmt_p(corr.pvalue)}.")
    return Section(
        title="Fig. 8 - gain vs epochs trained",
        text=text,
        tables=[Table(name="fig8_gain_epochs", caption="Gain (points) and mean epochs trained",
                      frame=frame)],
        figures=[FigureOut("fig8_gain_vs_epochs", "Gain over baseline vs epochs trained",
                           fig)],
    )


def magnitude_section(ri: ReportInput) -> Section:
    statics = ri.names("magnitude")
    if not statics:
        raise NotEnoughResults("the magnitude study is off (--magnitude-folds 0)")
    rows, all_random, all_static = [], [], []
    for name in MAGNITUDE_AUGS:
        try:
            _, scores = report.paired_scores(ri.results, [name, static_name(name)])
        except NotEnoughResults:
            continue
        random_f1, static_f1 = scores[:, 0] * 100, scores[:, 1] * 100
        all_random.append(random_f1)
        all_static.append(static_f1)
        rows.append(_magnitude_row(name, random_f1, static_f1))
    if not rows:
        raise NotEnoughResults("no augmentation has both static and random alpha runs yet")
    rows.append(_magnitude_row("all (grouped)", np.concatenate(all_random),
                               np.concatenate(all_static)))
    frame = pd.DataFrame(rows)
    display = pd.DataFrame({
        "augmentation": frame["augmentation"],
        "pairs": frame["n"].astype(str),
        "F1 alpha~U(0,1)": [report.fmt_ci(m, h) for m, h in zip(frame.random_f1,
                                                                  frame.random_ci, strict=True)],
        f"F1 alpha={MAGNITUDE_ALPHA}": [report.fmt_ci(m, h) for m, h in zip(
            frame.static_f1, frame.static_ci, strict=True)],
        "static - random": [report.fmt_ci(m, h, signed=True) for m, h in zip(
            frame["diff"], frame.diff_ci, strict=True)],
        "Wilcoxon W": [f"{w:.1f}" for w in frame.wilcoxon_w],
        "p": [report.fmt_p(p) for p in frame.wilcoxon_p],
    })
    return Section(
        title="Magnitude study - static alpha = 0.5 vs random alpha",
        text="Runs with alpha = 0.5 paired fold by fold with the alpha ~ U(0, 1) runs of the "
        "benchmark; two-sided Wilcoxon signed-rank test per augmentation and on all pairs "
        "grouped. Weighted F1 in %.",
        tables=[Table(name="magnitude_wilcoxon", caption="Static vs random magnitude",
                      frame=frame, display=display)],
    )


def _magnitude_row(name: str, random_f1: np.ndarray, static_f1: np.ndarray) -> dict:
    r = stats.mean_ci(random_f1)
    s = stats.mean_ci(static_f1)
    d = stats.paired_gain(static_f1, random_f1)
    w = stats.wilcoxon_test(static_f1, random_f1)
    return dict(augmentation=name, n=d.n, random_f1=r.mean, random_ci=r.half_width,
                static_f1=s.mean, static_ci=s.half_width, diff=d.mean, diff_ci=d.half_width,
                wilcoxon_w=w.statistic, wilcoxon_p=w.pvalue)


def build_report(ri: ReportInput) -> list[Section]:
    return [
        report.section("Table 5 - augmentation benchmark", lambda: table5_section(ri)),
        report.section("Fig. 3 - ranks and critical distance", lambda: ranks_section(ri)),
        report.section("Fig. 8 - gain vs epochs trained", lambda: epochs_section(ri)),
        report.section("Magnitude study", lambda: magnitude_section(ri)),
    ]


CAMPAIGN = Campaign(
    name="g1",
    title="G1 - augmentation benchmark",
    build_grid=build_grid,
    build_report=build_report,
    add_arguments=add_arguments,
    options=options,
    # One static-alpha fold keeps the quick grid small; the grouped test still has 6 pairs.
    quick_defaults={"magnitude_folds": 1},
)

if __name__ == "__main__":
    sys.exit(main(CAMPAIGN))
