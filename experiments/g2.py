"""G2 - batching policies and the class-weighted sampler (paper Sec. 5.2, Fig. 4, Table 6).

Grid: the baseline (B = 1024) and, for each of five augmentations, Replace P in {0.3, 0.5, 1},
Inject N in {1, 2, 4, 8} and Pre-augment x10 - every step trains on about 1024 rows, as the
baseline does. The sampler study: baseline and translation (inject:1), each with and without
the class-weighted sampler, on the first ``--sampler-folds`` folds.

    python -m experiments.g2 --dataset mirage19
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from experiments import report
from experiments.campaign import Campaign
from experiments.cli import augmentation_list, main
from experiments.grid import ConfigSpec
from experiments.report import FigureOut, NotEnoughResults, ReportInput, Section, Table
from jtcaug.evaluation import plots, stats

BASELINE = "none"
# [paper] three good and two poor augmentations (Sec. 5.2).
G2_AUGS = ("translation", "wrap", "permutation", "sine_wrapup", "constant_wrapup")
GOOD_AUGS = ("translation", "wrap", "permutation")
POLICY_SETTINGS = {
    "replace": ("0.3", "0.5", "1"),
    "inject": ("1", "2", "4", "8"),
    "preaugment": ("10",),
}
SAMPLER_AUG = "translation"  # [paper] Table 6: a good augmentation across datasets
SAMPLER_FOLDS = 20  # [paper] "20 runs"
BASELINE_CW = "none_cw"


def policy_name(name: str, kind: str, value: str) -> str:
    return f"{name}_{kind}{value}"


def sampler_name(name: str) -> str:
    return f"{policy_name(name, 'inject', '1')}_cw"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("G2")
    group.add_argument("--augs", type=augmentation_list, default=G2_AUGS,
                       help="augmentations of the policy study (comma-separated)")
    group.add_argument("--sampler-folds", type=int, default=SAMPLER_FOLDS,
                       help="folds of the class-weighted sampler study (0 skips it)")


def options(args: argparse.Namespace) -> dict:
    return {"augs": list(args.augs), "sampler_folds": min(args.sampler_folds, args.folds)}


def build_grid(args: argparse.Namespace) -> list[ConfigSpec]:
    if args.sampler_folds < 0:
        raise ValueError(f"--sampler-folds must be >= 0, got {args.sampler_folds}")
    grid = [ConfigSpec(BASELINE, "baseline", {"aug": "none", "policy": "none", "alpha": None})]
    for name in args.augs:
        for kind, values in POLICY_SETTINGS.items():
            grid += [
                ConfigSpec(policy_name(name, kind, v), kind,
                           {"aug": name, "policy": f"{kind}:{v}", "alpha": None})
                for v in values
            ]
    sampler_folds = min(args.sampler_folds, args.folds)
    if sampler_folds > 0:
        grid.append(ConfigSpec(BASELINE_CW, "sampler",
                               {"aug": "none", "policy": "none", "alpha": None,
                                "class_weighted": True}, max_folds=sampler_folds))
        if SAMPLER_AUG not in args.augs:
            grid.append(ConfigSpec(policy_name(SAMPLER_AUG, "inject", "1"), "sampler",
                                   {"aug": SAMPLER_AUG, "policy": "inject:1", "alpha": None},
                                   max_folds=sampler_folds))
        grid.append(ConfigSpec(sampler_name(SAMPLER_AUG), "sampler",
                               {"aug": SAMPLER_AUG, "policy": "inject:1", "alpha": None,
                                "class_weighted": True}, max_folds=sampler_folds))
    return grid


def policy_section(ri: ReportInput) -> Section:
    augs = ri.manifest["options"]["augs"]
    base = report.score_summary(ri.results, BASELINE)
    curves: dict[str, dict[str, tuple[float, float]]] = {}
    rows = []
    for name in augs:
        configs = [policy_name(name, k, v) for k, vs in POLICY_SETTINGS.items() for v in vs]
        gains = report.gain_table(ri.results, BASELINE, configs).set_index("config")
        for kind, values in POLICY_SETTINGS.items():
            for v in values:
                c = policy_name(name, kind, v)
                g = gains.loc[c]
                if g["n"] > 0:
                    curves.setdefault(name, {})[f"{kind}:{v}"] = (g["score"], g["score_ci"])
                rows.append(dict(augmentation=name, policy=f"{kind}:{v}", n=int(g["n"]),
                                 score=g["score"], score_ci=g["score_ci"], gain=g["gain"],
                                 ci=g["ci"]))
    if not curves:
        raise NotEnoughResults("no policy run paired with the baseline yet")
    frame = pd.DataFrame(rows)
    display = pd.DataFrame({
        "augmentation": frame["augmentation"],
        "policy": frame["policy"],
        "folds": frame["n"].astype(str),
        "weighted F1 (%)": [report.fmt_ci(m, h) for m, h in zip(frame.score, frame.score_ci,
                                                                  strict=True)],
        "gain (points)": [report.fmt_ci(m, h, signed=True) for m, h in zip(frame.gain, frame.ci,
                                                                           strict=True)],
    })
    fig = plots.policy_lines_figure(
        {k: list(v) for k, v in POLICY_SETTINGS.items()}, curves, (base.mean, base.half_width),
        good=GOOD_AUGS,
    )
    return Section(
        title="Fig. 4 - batching policies",
        text=f"Baseline (no augmentation, B = 1024): weighted F1 "
        f"{report.fmt_ci(base.mean, base.half_width)} % over {base.n} folds (dashed line, "
        "band = 95% CI). Lines: mean over folds, bands: 95% CI (Student t). Circles: "
        f"{', '.join(GOOD_AUGS)}; crosses: the others.",
        tables=[Table(name="fig4_policies", caption="Weighted F1 and gain per policy",
                      frame=frame, display=display)],
        figures=[FigureOut("fig4_policies", "Replace, Inject and Pre-augment vs baseline", fig)],
    )


def class_groups(results: pd.DataFrame) -> tuple[list[str], list[str], str]:
    """Majority / minority classes and the column whose counts decided the split."""
    prefix = "train_count[" if any(c.startswith("train_count[") for c in results) else "support["
    cols = [c for c in results.columns if c.startswith(prefix)]
    if len(cols) < 2:
        raise NotEnoughResults("per-class counts are missing from the results")
    sizes = {c[len(prefix):-1]: int(results[c].max()) for c in cols}
    major, minor = stats.majority_minority_split(sizes)
    return major, minor, "training flows" if prefix == "train_count[" else "test support"


def group_scores(results: pd.DataFrame, config: str, classes: list[str]) -> pd.DataFrame:
    """Per fold: support-weighted precision, recall and F1 (%) over ``classes``."""
    rows = results[results["config"] == config].sort_values("fold")
    out = {"fold": rows["fold"].to_numpy()}
    support = rows[[f"support[{c}]" for c in classes]].to_numpy(dtype=np.float64)
    for metric in ("precision", "recall", "f1"):
        values = rows[[f"{metric}[{c}]" for c in classes]].to_numpy(dtype=np.float64)
        out[metric] = [100 * stats.support_weighted_mean(v, s)
                       for v, s in zip(values, support, strict=True)]
    return pd.DataFrame(out).set_index("fold")


def sampler_section(ri: ReportInput) -> Section:
    if BASELINE_CW not in ri.names("sampler"):
        raise NotEnoughResults("the sampler study is off (--sampler-folds 0)")
    major, minor, basis = class_groups(ri.results)
    pairs = [("No Aug", BASELINE, BASELINE_CW),
             (SAMPLER_AUG, policy_name(SAMPLER_AUG, "inject", "1"), sampler_name(SAMPLER_AUG))]
    rows, shown = [], []
    for label, plain, weighted in pairs:
        try:
            folds, _ = report.paired_scores(ri.results, [plain, weighted])
        except NotEnoughResults:
            continue
        per = {}
        for sampler, config in (("no", plain), ("yes", weighted)):
            per[sampler] = {g: group_scores(ri.results, config, cls).loc[folds]
                            for g, cls in (("majority", major), ("minority", minor))}
        for sampler in ("no", "yes"):
            row = dict(configuration=label, class_weighted=sampler, n=len(folds))
            for g in ("majority", "minority"):
                for metric in ("precision", "recall", "f1"):
                    ci = stats.mean_ci(per[sampler][g][metric].to_numpy())
                    row[f"{g}_{metric}"], row[f"{g}_{metric}_ci"] = ci.mean, ci.half_width
            rows.append(row)
        row = dict(configuration=label, class_weighted="diff", n=len(folds))
        for g in ("majority", "minority"):
            for metric in ("precision", "recall", "f1"):
                d = stats.paired_gain(per["yes"][g][metric].to_numpy(),
                                      per["no"][g][metric].to_numpy())
                row[f"{g}_{metric}"], row[f"{g}_{metric}_ci"] = d.mean, d.half_width
        rows.append(row)
    if not rows:
        raise NotEnoughResults("no fold has runs with and without the sampler yet")
    frame = pd.DataFrame(rows)
    for _, r in frame.iterrows():
        signed = r["class_weighted"] == "diff"
        shown.append({
            "": r["configuration"], "class-weighted": r["class_weighted"],
            **{f"{g[:3]}. {m if m != 'f1' else 'weighted F1'}": report.fmt_ci(
                r[f"{g}_{m}"], r[f"{g}_{m}_ci"], signed=signed)
               for g in ("majority", "minority") for m in ("precision", "recall", "f1")},
        })
    return Section(
        title="Table 6 - class-weighted sampler",
        text=f"Majority classes: the {len(major)} largest classes by {basis} "
        f"({', '.join(major)}); minority classes: the other {len(minor)} "
        f"({', '.join(minor)}). Per fold, precision, recall and F1 of a group are the "
        "support-weighted means over its classes (%); rows 'diff' = with minus without the "
        "sampler, paired by fold; mean ± 95% CI over folds.",
        tables=[Table(name="table6_sampler", caption="Table 6: impact of the class-weighted "
                      "sampler", frame=frame, display=pd.DataFrame(shown))],
    )


def build_report(ri: ReportInput) -> list[Section]:
    return [
        report.section("Fig. 4 - batching policies", lambda: policy_section(ri)),
        report.section("Table 6 - class-weighted sampler", lambda: sampler_section(ri)),
    ]


CAMPAIGN = Campaign(
    name="g2",
    title="G2 - batching policies and class-weighted sampling",
    build_grid=build_grid,
    build_report=build_report,
    add_arguments=add_arguments,
    options=options,
)

if __name__ == "__main__":
    sys.exit(main(CAMPAIGN))
