"""G5 - data size: does augmenting a small training set match training on a larger one?

The paper's future work (Sec. 6): "sample down a large dataset (1% or 10%) and investigate if
augmentations result more effective with the reduced datasets ... by augmenting a small
dataset one can achieve the same performance as using larger datasets".

Grid: training-set fractions (``--fractions``, default 1%, 10%, 100%) x {no augmentation,
inject:1, inject:4, inject:8} with translation (``--augs``) or the ``--top-n`` best single
augmentations of a finished G1 of the same dataset (``--top-from G1_OUT``). The subsets are
stratified and nested: per fold, each class's training flows are shuffled once by a seed of
(campaign seed, fold) and a fraction keeps the first ``round(fraction * n_class)`` of them,
so the 1% subset lies inside the 10% subset and every configuration of a fold trains on the
same subset. Validation and test splits stay whole; normalization keeps the whole training
split's IAT quantile (a single constant) while the augmentations' per-class statistics come
from the subset alone.

Report: weighted F1 vs fraction with 95% CIs per setting (table and figure), and for each
augmented fraction below 1 the larger fractions whose baseline it matches: a two-sided
Wilcoxon signed-rank test on per-fold weighted F1, "matches" meaning not significantly worse
(not p < 0.05 with a negative mean difference).

    python -m experiments.g5 --dataset mirage19 --fractions 0.01,0.1,1
    python -m experiments.g5 --dataset mirage19 --top-from runs/g1-mirage19 --top-n 2
    python -m experiments.g5 --quick            # synthetic default, minutes on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import g4, report
from experiments.campaign import Campaign
from experiments.cli import augmentation_list, main, positive_int
from experiments.execution import RunRecord, UnitFn
from experiments.grid import CampaignError, ConfigSpec, Unit
from experiments.report import FigureOut, NotEnoughResults, ReportInput, Section, Table
from experiments.training import FoldSource, train_record, train_unit
from jtcaug.evaluation import plots, stats

BASELINE = "none"
DEFAULT_FRACTIONS = (0.01, 0.1, 1.0)  # [paper] "1% or 10%", and the whole training split
INJECT_LEVELS = (1, 4, 8)
DEFAULT_AUGS = ("translation",)
ALPHA = 0.05
# The fewest paired folds at which a two-sided Wilcoxon signed-rank test can reach p < 0.05
# (n = 6: p = 2 / 2**6); with fewer, "not significantly worse" would hold vacuously.
MIN_TEST_FOLDS = 6
# A class needs two training flows: one cannot vary within a class (per-class statistics).
MIN_TRAIN_PER_CLASS = 2
_NAME = re.compile(r"^f(?P<fraction>[0-9.]+)_(?P<setting>.+)$")
# Entropy that keeps the subset draws apart from the run seeds of the same (seed, fold).
_SUBSET_SALT = zlib.crc32(b"jtcaug-g5-subset")


# ------------------------------------------------------------------------------ options


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"0.01,0.1,1"`` -> sorted distinct fractions in (0, 1]."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"fraction {part!r} is not a number") from None
        if not 0.0 < value <= 1.0:
            raise argparse.ArgumentTypeError(f"fraction {part} lies outside (0, 1]")
        values.append(value)
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}")
    return tuple(sorted(set(values)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("G5")
    group.add_argument("--fractions", type=parse_fractions, default=DEFAULT_FRACTIONS,
                       help="training-set fractions in (0, 1], comma-separated")
    group.add_argument("--min-per-class", type=positive_int, default=None, metavar="K",
                       help="keep at least K training flows per class in every subset "
                       "(default: a subset with fewer than 2 flows of a class is an error)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--augs", type=augmentation_list, default=None,
                        help=f"augmentations to inject (default {','.join(DEFAULT_AUGS)})")
    source.add_argument("--top-from", type=Path, default=None, metavar="G1_OUT",
                        help="inject the --top-n best single augmentations of a finished G1 "
                        "campaign directory of the same dataset")
    group.add_argument("--top-n", type=positive_int, default=1,
                       help="how many G1 augmentations --top-from takes")


def augmentations(args: argparse.Namespace) -> tuple[str, ...]:
    """The augmentations of this campaign (resolved once; --top-from reads the G1 directory)."""
    if getattr(args, "_g5_augs", None) is None:
        if getattr(args, "top_from", None) is not None:
            args._g5_augs = g4.top3_from_g1(args.top_from, args.dataset_options,
                                            n=args.top_n, option="--top-from",
                                            model=getattr(args, "model", None))
        else:
            args._g5_augs = tuple(getattr(args, "augs", None) or DEFAULT_AUGS)
    return args._g5_augs


def options(args: argparse.Namespace) -> dict:
    return {
        "fractions": list(args.fractions),
        "augs": list(augmentations(args)),
        "min_per_class": args.min_per_class,
    }


# ------------------------------------------------------------------------------ grid


def fraction_label(fraction: float) -> str:
    return f"{fraction:g}"


def config_name(fraction: float, setting: str) -> str:
    return f"f{fraction_label(fraction)}_{setting}"


def parse_config_name(name: str) -> tuple[float, str]:
    """``"f0.01_translation_inject4"`` -> ``(0.01, "translation_inject4")``."""
    match = _NAME.match(name)
    if match is None:
        raise CampaignError(f"{name!r} is not a G5 configuration name")
    return float(match["fraction"]), match["setting"]


def settings(augs: tuple[str, ...]) -> list[tuple[str, dict]]:
    """``(setting name, TrainConfig kwargs)``: the baseline, then each aug x inject level."""
    out = [(BASELINE, {"aug": "none", "policy": "none", "alpha": None})]
    out += [(f"{a}_inject{n}", {"aug": a, "policy": f"inject:{n}", "alpha": None})
            for a in augs for n in INJECT_LEVELS]
    return out


def build_grid(args: argparse.Namespace) -> list[ConfigSpec]:
    augs = augmentations(args)
    # From the command line (which carries the dataset options) a fraction too small for a
    # class is refused before anything trains, not as a failed run per unit.
    if getattr(args, "dataset", None) is not None:
        check_subsets(args)
    return [
        ConfigSpec(config_name(f, setting), "baseline" if setting == BASELINE else "augmented",
                   train)
        for f in args.fractions
        for setting, train in settings(augs)
    ]


# ------------------------------------------------------------------------------ subsets


def subset_seed(campaign_seed: int, fold: int) -> int:
    """Seed of fold ``fold``'s subset draw: shared by every fraction and configuration."""
    entropy = [campaign_seed, fold, _SUBSET_SALT]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def nested_subset(
    labels: np.ndarray,
    fraction: float,
    seed: int,
    min_per_class: int | None = None,
    class_names: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Sorted positions into ``labels`` of a stratified subset with ``fraction`` of each class.

    Each class's positions are shuffled by ``seed`` alone and the subset keeps the first
    ``max(round(fraction * n), min_per_class)`` of them (at most n): the kept count grows
    with the fraction, so for one seed a smaller fraction's subset lies inside a larger one's.

    Raises:
      CampaignError: a class keeps fewer than 2 flows (naming the class and the fraction).
    """
    if not 0.0 < fraction <= 1.0:
        raise CampaignError(f"fraction {fraction} lies outside (0, 1]")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    kept = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_keep = min(members.size, max(int(round(fraction * members.size)), min_per_class or 0))
        if n_keep < MIN_TRAIN_PER_CLASS:
            name = class_names[cls] if class_names is not None else str(cls)
            raise CampaignError(
                f"fraction {fraction:g} leaves class {name} with {n_keep} training flow(s) of "
                f"{members.size}; need >= {MIN_TRAIN_PER_CLASS} (raise the fraction or pass "
                f"--min-per-class {MIN_TRAIN_PER_CLASS})"
            )
        kept.append(members[:n_keep])
    return np.sort(np.concatenate(kept)).astype(np.int64)


def subsample_fold(fold, fraction: float, seed: int, min_per_class: int | None = None):
    """The fold with its training split cut to :func:`nested_subset`; validation and test
    stay whole. Per-class statistics are recomputed from the subset as ``make_fold`` does
    from a training split (the normalization constant stays the whole split's)."""
    if fraction >= 1.0:
        return fold
    from jtcaug.aug import Stats

    keep = nested_subset(fold.y_train, fraction, seed, min_per_class, fold.class_names)
    x_train, y_train = fold.x_train[keep], fold.y_train[keep]
    return dataclasses.replace(
        fold,
        x_train=x_train,
        y_train=y_train,
        idx_train=fold.idx_train[keep],
        stats=Stats.from_training(x_train, y_train, fold.n_classes, fold.iat_q99),
    )


def check_subsets(args: argparse.Namespace) -> None:
    """Draws every campaign fold's subsets from the training labels (no normalization):
    raises CampaignError naming the first class a fraction leaves with too few flows."""
    import jtcaug.data
    from jtcaug.data.folds import fold_indices

    flows = jtcaug.data.load_from_args(args)
    for fold in range(args.folds):
        labels = flows.labels[fold_indices(flows, fold)[0]]
        seed = subset_seed(args.seed, fold)
        for fraction in args.fractions:
            if fraction < 1.0:
                try:
                    nested_subset(labels, fraction, seed, args.min_per_class, flows.class_names)
                except CampaignError as exc:
                    raise CampaignError(f"fold {fold}: {exc}") from None


class SubsetFolds:
    """A ``FoldSource`` view whose folds' training splits are cut to one fraction."""

    def __init__(self, source: FoldSource, fraction: float, campaign_seed: int,
                 min_per_class: int | None):
        self._source = source
        self._fraction = fraction
        self._seed = campaign_seed
        self._min_per_class = min_per_class

    def get(self, fold: int):
        return subsample_fold(self._source.get(fold), self._fraction,
                              subset_seed(self._seed, fold), self._min_per_class)


def make_unit_fn(args: argparse.Namespace, n_folds: int) -> UnitFn:
    """Trains each unit's runs on their fraction of the fold's training split."""
    source = FoldSource(args, n_folds)

    def unit_fn(unit: Unit) -> list[RunRecord | BaseException]:
        fraction, _ = parse_config_name(unit.config.name)
        folds = SubsetFolds(source, fraction, unit.runs[0].seed, args.min_per_class)
        return [
            out if isinstance(out, BaseException) else RunRecord(train_record(out[1], out[0]))
            for out in train_unit(folds, unit)
        ]

    return unit_fn


# ------------------------------------------------------------------------------ statistics


@dataclasses.dataclass(frozen=True)
class Match:
    """An augmented run set against a baseline on the same folds (points of weighted F1)."""

    difference: stats.MeanCI
    pvalue: float

    @property
    def significantly_worse(self) -> bool:
        return self.pvalue < ALPHA and self.difference.mean < 0

    @property
    def decidable(self) -> bool:
        return self.difference.n >= MIN_TEST_FOLDS

    @property
    def matches(self) -> bool | None:
        """Not significantly worse; None when too few folds could show it worse."""
        return not self.significantly_worse if self.decidable else None


def compare(augmented: np.ndarray, baseline: np.ndarray) -> Match:
    """Two-sided Wilcoxon signed-rank test of per-fold scores paired fold by fold."""
    return Match(stats.paired_gain(augmented, baseline),
                 stats.wilcoxon_test(augmented, baseline).pvalue)


def curve_table(results: pd.DataFrame, fractions, setting_names, scale: float = 100.0):
    """Tidy ``setting, fraction, n, f1, ci, train_flows``: mean weighted F1, its 95% half
    width, and the mean training flows of those runs (NaN where runs did not record them)."""
    count_columns = [c for c in results.columns if str(c).startswith("train_count[")]
    rows = []
    for setting in setting_names:
        for f in fractions:
            runs = results[results["config"] == config_name(f, setting)]
            if runs.empty:
                rows.append(dict(setting=setting, fraction=f, n=0, f1=np.nan, ci=np.nan,
                                 train_flows=np.nan))
                continue
            ci = stats.mean_ci(runs["weighted_f1"].to_numpy(np.float64) * scale)
            flows = runs[count_columns].sum(axis=1).mean() if count_columns else np.nan
            rows.append(dict(setting=setting, fraction=f, n=ci.n, f1=ci.mean, ci=ci.half_width,
                             train_flows=flows))
    return pd.DataFrame(rows)


def match_table(results: pd.DataFrame, fractions, augmented_settings,
                scale: float = 100.0) -> pd.DataFrame:
    """Every augmented setting at a fraction below the largest, against the baseline of each
    larger fraction: paired difference with CI, Wilcoxon p and whether it matches."""
    rows = []
    for setting in augmented_settings:
        for i, f in enumerate(fractions):
            for g in fractions[i + 1:]:
                row = dict(setting=setting, fraction=f, baseline_fraction=g, n=0,
                           difference=np.nan, ci=np.nan, p=np.nan, matches=None)
                try:
                    _, scores = report.paired_scores(
                        results, [config_name(f, setting), config_name(g, BASELINE)])
                except NotEnoughResults:
                    rows.append(row)
                    continue
                m = compare(scores[:, 0] * scale, scores[:, 1] * scale)
                row.update(n=m.difference.n, difference=m.difference.mean,
                           ci=m.difference.half_width, p=m.pvalue, matches=m.matches)
                rows.append(row)
    return pd.DataFrame(rows)


def smallest_matched(matches: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, fraction): the smallest and the largest larger fraction whose baseline
    it matches (NaN: none matched, or none decidable)."""
    rows = []
    for (setting, f), group in matches.groupby(["setting", "fraction"], sort=False):
        tested = group[group["n"] > 0]
        matched = np.array([v is True for v in tested["matches"]], dtype=bool)
        hit = tested["baseline_fraction"][matched]
        rows.append(dict(setting=setting, fraction=f, tested=len(tested),
                         smallest_matched=hit.min() if len(hit) else np.nan,
                         largest_matched=hit.max() if len(hit) else np.nan,
                         min_folds=int(tested["n"].min()) if len(tested) else 0))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ report


def _settings_of(ri: ReportInput) -> list[str]:
    seen: list[str] = []
    for c in ri.grid:
        setting = parse_config_name(c.name)[1]
        if setting not in seen:
            seen.append(setting)
    return seen


def _fractions_of(ri: ReportInput) -> list[float]:
    return sorted({parse_config_name(c.name)[0] for c in ri.grid})


def curve_figure(curves: pd.DataFrame):
    fig = plots.new_figure(6.5, 4.2)
    ax = fig.subplots()
    groups = list(curves.groupby("setting", sort=False))
    for i, (setting, group) in enumerate(groups):
        group = group.dropna(subset=["f1"])
        if group.empty:
            continue
        # Settings are nudged apart along the log axis so their intervals do not overlap.
        dodge = 10 ** (0.02 * (i - (len(groups) - 1) / 2))
        x = group["fraction"].to_numpy(np.float64) * dodge
        mean = group["f1"].to_numpy(np.float64)
        half = np.nan_to_num(group["ci"].to_numpy(np.float64))
        style = dict(color="black", ls="--") if setting == BASELINE else dict(color=f"C{i}")
        ax.errorbar(x, mean, yerr=half, marker="o", capsize=3, label=setting, **style)
    ax.set_xscale("log")
    fractions = sorted(curves["fraction"].unique())
    ax.set_xticks(fractions, [f"{100 * f:g}%" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("training-set fraction")
    ax.set_ylabel("test weighted F1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def curve_section(ri: ReportInput) -> Section:
    fractions, setting_names = _fractions_of(ri), _settings_of(ri)
    curves = curve_table(ri.results, fractions, setting_names)
    if (curves["n"] == 0).all():
        raise NotEnoughResults("no finished runs")
    display = pd.DataFrame({"setting": setting_names})
    for f in fractions:
        cell = curves[curves["fraction"] == f].set_index("setting")
        display[f"{100 * f:g}% (folds)"] = [
            f"{report.fmt_ci(cell.loc[s, 'f1'], cell.loc[s, 'ci'])} ({int(cell.loc[s, 'n'])})"
            for s in setting_names
        ]
    flows = curves.groupby("fraction")["train_flows"].mean()
    display.loc[len(display)] = ["training flows (mean)"] + [
        "-" if pd.isna(flows.get(f)) else f"{flows.get(f):.0f}" for f in fractions]
    options = ri.manifest.get("options", {})
    return Section(
        title="Weighted F1 vs training-set fraction",
        text="Stratified nested subsets of each fold's training split (validation and test "
        f"whole); augmentations: {', '.join(options.get('augs', []))}; at least "
        f"{options.get('min_per_class') or MIN_TRAIN_PER_CLASS} training flows per class.",
        tables=[Table(name="g5_f1_vs_fraction",
                      caption="Test weighted F1 (%), mean ± 95% CI over folds",
                      frame=curves, display=display)],
        figures=[FigureOut(name="g5_f1_vs_fraction",
                           caption="Weighted F1 vs training-set fraction, 95% CIs",
                           figure=curve_figure(curves))],
    )


def match_section(ri: ReportInput) -> Section:
    fractions = _fractions_of(ri)
    augmented = [s for s in _settings_of(ri) if s != BASELINE]
    if len(fractions) < 2 or not augmented:
        raise NotEnoughResults("matching needs >= 2 fractions and an augmented setting")
    matches = match_table(ri.results, fractions, augmented)
    if (matches["n"] == 0).all():
        raise NotEnoughResults("no fold where an augmented fraction and a larger baseline "
                               "both finished")
    summary = smallest_matched(matches)

    def pct(v):
        return "-" if pd.isna(v) else f"{100 * v:g}%"

    display = pd.DataFrame({
        "setting": summary["setting"],
        "fraction": summary["fraction"].map(pct),
        "matches the baseline of": summary["smallest_matched"].map(pct),
        "largest matched": summary["largest_matched"].map(pct),
        "folds": summary["min_folds"].astype(str),
    })
    detail = pd.DataFrame({
        "setting": matches["setting"],
        "fraction": matches["fraction"].map(pct),
        "vs baseline at": matches["baseline_fraction"].map(pct),
        "difference (points)": [report.fmt_ci(d, c, signed=True)
                                for d, c in zip(matches["difference"], matches["ci"],
                                                strict=True)],
        "Wilcoxon p": matches["p"].map(report.fmt_p),
        "matches": matches["matches"].map(lambda v: "yes" if v is True else
                                          "no" if v is False else "-"),
        "folds": matches["n"].astype(str),
    })
    few = int(summary["min_folds"].min()) if len(summary) else 0
    text = (
        "Does augmenting a small training set perform like training on a larger one? Each "
        "augmented fraction is paired fold by fold with the baseline (no augmentation) of "
        "every larger fraction: two-sided Wilcoxon signed-rank test on per-fold weighted F1; "
        f"it *matches* when it is not significantly worse (not p < {ALPHA} with a negative "
        "mean difference). 'matches the baseline of' is the smallest larger fraction it "
        "matches, 'largest matched' the largest."
    )
    if few < MIN_TEST_FOLDS:
        text += (f" With {few} fold(s) the two-sided test cannot reach p < {ALPHA} (it "
                 f"needs at least {MIN_TEST_FOLDS} paired folds), so those pairs are left "
                 "undecided ('-'): run more folds.")
    return Section(
        title="Augmented small fractions vs larger baselines",
        text=text,
        tables=[
            Table(name="g5_matches", caption="Smallest larger fraction whose baseline each "
                  "augmented fraction matches", frame=summary, display=display),
            Table(name="g5_match_tests", caption="Every paired comparison: augmented minus "
                  "baseline weighted F1 (points), mean ± 95% CI", frame=matches,
                  display=detail, inline=False),
        ],
    )


def build_report(ri: ReportInput) -> list[Section]:
    return [
        report.section("Weighted F1 vs training-set fraction", lambda: curve_section(ri)),
        report.section("Augmented small fractions vs larger baselines",
                       lambda: match_section(ri)),
    ]


CAMPAIGN = Campaign(
    name="g5",
    title="G5 - data size",
    build_grid=build_grid,
    build_report=build_report,
    add_arguments=add_arguments,
    options=options,
    make_unit_fn=make_unit_fn,
    # The quick preset's scaled-down synthetic dataset has too few flows per class for a 1%
    # subset; two per class keep the default fractions meaningful there.
    quick_defaults={"min_per_class": MIN_TRAIN_PER_CLASS},
)

if __name__ == "__main__":
    sys.exit(main(CAMPAIGN))
