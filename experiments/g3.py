"""G3 - latent-space geometry of the augmentations (paper Sec. 5.3, Fig. 5, Fig. 6).

Each run trains the model with one augmentation (inject:1, as in G1), then, in the latent
space of its best state: anchors = the training samples plus ``--anchor-copies`` augmented
copies of each; for each test sample its ``--neighbours`` nearest anchors by cosine
similarity -> mean number sharing its label and mean similarity (all anchors, Fig. 5 a-b;
augmented anchors only, Fig. 5 c-d), and the mean ratio of the distance to the closest
augmented vs the closest original same-label anchor. For the t-SNE set, fold 0 also keeps a
t-SNE of ``--tsne-samples`` originals and one augmented copy of each, and the Euclidean
distances ||f(x) - f(x')|| over the whole training split (their KDE is Fig. 6).

Default folds: 10, not 80 - each run adds a nearest-neighbour search over ~6x the training
set, and the paper reports these figures without a run count.

With ``--gains-from G1_OUT`` (a finished G1 of the same dataset) the report also sets each
augmentation's distance ratio beside its G1 gain, with their Spearman rank correlation: the
paper's "sweet spot" claim, checked on this dataset. It only adds a report section, so it can
be given (with ``--report-only``) to a G3 that already ran.

    python -m experiments.g3 --dataset mirage19
    python -m experiments.g3 --dataset mirage19 --gains-from runs/g1-mirage19
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import finished, report
from experiments.campaign import Campaign
from experiments.cli import augmentation_list, main
from experiments.execution import RunRecord, UnitFn
from experiments.grid import ConfigSpec, RunSpec, Unit
from experiments.report import FigureOut, NotEnoughResults, ReportInput, Section, Table
from experiments.store import ResultStore
from experiments.training import FoldSource, train_record, train_unit
from jtcaug import aug
from jtcaug.evaluation import geometry, plots, stats

# [paper] Fig. 6: two good and four poor augmentations.
TSNE_AUGS = (
    "translation", "wrap", "constant_wrapup", "interpolation", "sine_wrapup", "horizontal_flip",
)
ANCHOR_COPIES = 5  # [paper]
TSNE_SAMPLES = 1000  # [chosen] t-SNE cost grows quickly with points; 2 x 1000 is readable
TSNE_FOLD = 0
DEFAULT_FOLDS = 10
GEOMETRY_COLUMNS = {
    "geo_same_label_all": "same label, all anchors",
    "geo_similarity_all": "cosine sim., all anchors",
    "geo_same_label_aug": "same label, aug. anchors",
    "geo_similarity_aug": "cosine sim., aug. anchors",
    "geo_distance_ratio": "dist. ratio aug./orig.",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("G3")
    group.add_argument("--augs", type=augmentation_list, default=aug.NAMES,
                       help="augmentations to train and analyse (comma-separated)")
    group.add_argument("--tsne-augs", type=augmentation_list, default=TSNE_AUGS,
                       help="augmentations that get the t-SNE and distance KDE (Fig. 6)")
    group.add_argument("--tsne-samples", type=int, default=TSNE_SAMPLES,
                       help="training samples (each with one augmented copy) in the t-SNE")
    group.add_argument("--anchor-copies", type=int, default=ANCHOR_COPIES,
                       help="augmented copies of each training sample among the anchors")
    group.add_argument("--neighbours", type=int, default=geometry.N_NEIGHBOURS,
                       help="nearest anchors per test sample")
    group.add_argument("--gains-from", type=Path, default=None, metavar="G1_OUT",
                       help="a finished G1 campaign directory of the same dataset: the report "
                       "sets each augmentation's distance ratio beside its G1 gain (Sweet "
                       "spot)")


def options(args: argparse.Namespace) -> dict:
    return {
        "augs": list(args.augs),
        "tsne_augs": list(args.tsne_augs),
        "tsne_samples": args.tsne_samples,
        "anchor_copies": args.anchor_copies,
        "neighbours": args.neighbours,
    }


def report_inputs(args: argparse.Namespace) -> dict:
    """``--gains-from``: the finished G1's gains per augmentation (checked now, before any
    run), for the Sweet spot section."""
    if getattr(args, "gains_from", None) is None:
        return {}
    g1_run = finished.read_finished_g1(args.gains_from, "--gains-from", args.dataset_options,
                                       getattr(args, "model", None))
    return {"gains_from": str(args.gains_from), "g1_folds": g1_run.manifest["folds"],
            "g1_gains": finished.g1_single_gains(g1_run)}


def build_grid(args: argparse.Namespace) -> list[ConfigSpec]:
    for flag, value, low in (("--tsne-samples", args.tsne_samples, 4),
                             ("--anchor-copies", args.anchor_copies, 1),
                             ("--neighbours", args.neighbours, 1)):
        if value < low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")
    return [
        ConfigSpec(name, "single", {"aug": name, "policy": "inject:1", "alpha": None})
        for name in args.augs
    ]


def geometry_unit_fn(args: argparse.Namespace, n_folds: int) -> UnitFn:
    """Trains like G1 (a unit's runs together), then measures the latent geometry of each
    run's best state."""
    import jax

    import jtcaug.train

    folds = FoldSource(args, n_folds)
    augment = jax.jit(aug.augment_batch, static_argnames=("how",))

    def augmented(key, x, y, stats_, how, alpha):
        xb, _ = augment(key, x, y, stats_, how=how, alpha=alpha)
        return np.asarray(xb)

    def geometry_of(spec: RunSpec, fold, result) -> RunRecord:
        variables = result.state
        how, alpha = spec.config.train["aug"], spec.config.train.get("alpha")
        # A key of its own, apart from training's: the anchors must not replay training draws.
        key = jax.random.fold_in(jax.random.PRNGKey(spec.key_seed), 0x6E03)
        keys = jax.random.split(key, args.anchor_copies + 1)
        train_z = jtcaug.train.embed(variables, fold.x_train)
        copies = [
            jtcaug.train.embed(
                variables, augmented(k, fold.x_train, fold.y_train, fold.stats, how, alpha)
            )
            for k in keys[:-1]
        ]
        test_z = jtcaug.train.embed(variables, fold.x_test)
        anchors, labels, is_aug = geometry.anchor_set(train_z, fold.y_train, copies)
        metrics = geometry.neighbour_metrics(
            test_z, fold.y_test, anchors, labels, is_aug, k=args.neighbours
        )
        record = train_record(result, fold)
        record["extra"] |= {f"geo_{k}": v for k, v in metrics.to_dict().items()}
        arrays = None
        if spec.fold == TSNE_FOLD and how in args.tsne_augs:
            arrays = tsne_arrays(train_z, copies[0], args.tsne_samples, spec)
        return RunRecord(record=record, arrays=arrays)

    def unit_fn(unit: Unit) -> list:
        outputs = []
        for spec, out in zip(unit.runs, train_unit(folds, unit, return_state=True),
                             strict=True):
            if isinstance(out, BaseException):
                outputs.append(out)
                continue
            try:
                outputs.append(geometry_of(spec, *out))
            except Exception as exc:  # noqa: BLE001 - one failed run must not sink the unit
                outputs.append(exc)
        return outputs

    return unit_fn


def tsne_arrays(
    train_z: np.ndarray, augmented_z: np.ndarray, n_samples: int, spec: RunSpec
) -> dict[str, np.ndarray]:
    """t-SNE of a subsample of originals with their augmented copies, and all pair distances."""
    rng = np.random.default_rng(spec.key_seed)
    n = min(n_samples, train_z.shape[0])
    idx = np.sort(rng.choice(train_z.shape[0], size=n, replace=False))
    points = np.concatenate([train_z[idx], augmented_z[idx]], axis=0)
    coords = geometry.tsne_embedding(points, seed=spec.key_seed % 2**31)
    return {
        "tsne": coords.astype(np.float32),
        "tsne_is_augmented": np.repeat([False, True], n),
        "distances": geometry.pair_distances(train_z, augmented_z).astype(np.float32),
    }


def _geometry_frame(ri: ReportInput) -> pd.DataFrame:
    missing = [c for c in GEOMETRY_COLUMNS if c not in ri.results.columns]
    if missing:
        raise NotEnoughResults("no geometry metrics in the results yet")
    names = [n for n in ri.names("single") if n in set(ri.results["config"])]
    rows = []
    for name in names:
        sub = ri.results[ri.results["config"] == name]
        f1 = stats.mean_ci(sub["weighted_f1"].to_numpy(dtype=np.float64) * 100)
        row = dict(config=name, family=aug.FAMILY.get(name, ""), n=len(sub),
                   weighted_f1=f1.mean, weighted_f1_ci=f1.half_width)
        for col in GEOMETRY_COLUMNS:
            values = sub[col].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            ci = stats.mean_ci(values) if values.size else stats.MeanCI(np.nan, np.nan, 0)
            row[col], row[f"{col}_ci"] = ci.mean, ci.half_width
        rows.append(row)
    return pd.DataFrame(rows)


def neighbours_section(ri: ReportInput) -> Section:
    frame = _geometry_frame(ri)
    names = frame["config"].tolist()
    display = pd.DataFrame({
        "augmentation": names,
        "folds": frame["n"].astype(str),
        "weighted F1 (%)": [report.fmt_ci(m, h) for m, h in zip(
            frame.weighted_f1, frame.weighted_f1_ci, strict=True)],
        **{label: [report.fmt_ci(m, h, digits=3) for m, h in zip(
            frame[col], frame[f"{col}_ci"], strict=True)]
           for col, label in GEOMETRY_COLUMNS.items()},
    })
    scatter = plots.neighbour_scatter_figure(
        names,
        {
            "all anchors (originals + augmented)": (
                frame["geo_same_label_all"], frame["geo_similarity_all"]),
            "augmented anchors only": (
                frame["geo_same_label_aug"], frame["geo_similarity_aug"]),
        },
        frame["weighted_f1"],
    )
    bars = plots.metric_bars_figure(
        names, {label: frame[col] for col, label in GEOMETRY_COLUMNS.items()}
    )
    k = ri.manifest["options"].get("neighbours", geometry.N_NEIGHBOURS)
    copies = ri.manifest["options"].get("anchor_copies", ANCHOR_COPIES)
    return Section(
        title="Fig. 5 - test samples among training anchors",
        text=f"Anchors: training latents plus {copies} augmented copies of each. For each test "
        f"sample, its {k} nearest anchors by cosine similarity; 'same label' = mean number of "
        f"them sharing the test label (of {k}), 'cosine sim.' = their mean similarity. The "
        "ratio compares the cosine distance to the closest augmented and the closest original "
        "same-label anchor (1 = augmented anchors mimic test samples as well as originals). "
        "Means over folds ± 95% CI.",
        tables=[Table(name="fig5_geometry", caption="Latent neighbourhood metrics per "
                      "augmentation", frame=frame, display=display)],
        figures=[
            FigureOut("fig5_neighbours", "Same-label neighbours vs cosine similarity (colour: "
                      "weighted F1)", scatter),
            FigureOut("fig5_metric_bars", "Geometry metrics per augmentation", bars),
        ],
    )


def latent_pairs_section(ri: ReportInput) -> Section:
    chosen = ri.manifest["options"].get("tsne_augs", list(TSNE_AUGS))
    tsne, distances = {}, {}
    for name in chosen:
        arrays = ResultStore(ri.out_dir).load_arrays(f"{name}__fold{TSNE_FOLD:03d}")
        if arrays is None:
            continue
        tsne[name] = (arrays["tsne"], arrays["tsne_is_augmented"])
        distances[name] = arrays["distances"]
    if not tsne:
        raise NotEnoughResults(f"no fold-{TSNE_FOLD} run of {', '.join(chosen)} finished yet")
    top = max(float(np.percentile(d, 99.5)) for d in distances.values())
    grid = np.linspace(0.0, max(top, 1e-6), 300)
    curves, rows = {}, []
    for name, d in distances.items():
        try:
            curves[name] = (grid, geometry.distance_kde(d, grid))
        except ValueError:
            curves[name] = (grid, None)
        rows.append(dict(config=name, n_pairs=d.size, mean=float(d.mean()),
                         median=float(np.median(d)), p95=float(np.percentile(d, 95))))
    return Section(
        title="Fig. 6 - original vs augmented latents",
        text=f"Fold {TSNE_FOLD}. Top: t-SNE of original (blue) and augmented (red) latents, one "
        "augmented copy per original. Bottom: Gaussian KDE of the Euclidean distance "
        "||f(x) - f(x')|| over all training samples.",
        tables=[Table(name="fig6_distances", caption="Distance between f(x) and f(x')",
                      frame=pd.DataFrame(rows))],
        figures=[
            FigureOut("fig6_tsne", "t-SNE of original and augmented latents",
                      plots.tsne_figure(tsne)),
            FigureOut("fig6_kde", "KDE of ||f(x) - f(x')||", plots.kde_figure(curves)),
        ],
    )


def sweet_spot_frame(geometry_frame: pd.DataFrame, gains: pd.DataFrame) -> pd.DataFrame:
    """Per G3 augmentation (rows of :func:`_geometry_frame`): its distance ratio and its G1
    gain (rows of ``finished.g1_single_gains``; NaN where G1 has no gain for it)."""
    by_aug = gains.set_index("aug")
    rows = []
    for _, row in geometry_frame.iterrows():
        has_gain = row.config in by_aug.index and by_aug.loc[row.config, "n"] > 0
        rows.append(dict(
            config=row.config, family=row.family, g3_folds=row.n,
            distance_ratio=row.geo_distance_ratio, distance_ratio_ci=row.geo_distance_ratio_ci,
            g1_gain=by_aug.loc[row.config, "gain"] if has_gain else np.nan,
            g1_gain_ci=by_aug.loc[row.config, "ci"] if has_gain else np.nan,
            g1_folds=int(by_aug.loc[row.config, "n"]) if has_gain else 0,
        ))
    return pd.DataFrame(rows)


def sweet_spot_section(ri: ReportInput) -> Section:
    frame = sweet_spot_frame(_geometry_frame(ri), ri.inputs["g1_gains"])
    both = frame.dropna(subset=["distance_ratio", "g1_gain"])
    text = (
        f"G1 gains from the finished G1 campaign in `{ri.inputs['gains_from']}` "
        f"({ri.inputs['g1_folds']} folds, same dataset): per augmentation, the mean over G1's "
        "folds of its weighted F1 (inject:1, alpha ~ U(0, 1)) minus the baseline's on the same "
        "fold, in points ± 95% CI. Distance ratio: the Fig. 5 ratio of the cosine distance to "
        "the closest augmented vs the closest original same-label anchor, mean over this "
        "campaign's folds ± 95% CI. "
    )
    correlation = dict(n=len(both), rho=np.nan, p=np.nan)
    if len(both) < 3:
        text += (f"Only {len(both)} augmentation(s) have both a distance ratio and a G1 gain; "
                 "a rank correlation needs at least 3.")
    else:
        test = stats.spearman(both["distance_ratio"], both["g1_gain"])
        correlation.update(rho=test.statistic, p=test.pvalue)
        if np.isfinite(test.statistic):
            text += (f"Spearman rank correlation of distance ratio and G1 gain over the "
                     f"{len(both)} augmentations in both: rho = {test.statistic:.3f}, "
                     f"p = {report.fmt_p(test.pvalue)}.")
        else:
            text += (f"Spearman rank correlation over the {len(both)} augmentations in both: "
                     "undefined (the ratios or the gains are all equal).")
    display = pd.DataFrame({
        "augmentation": frame["config"],
        "family": frame["family"],
        "dist. ratio aug./orig.": [report.fmt_ci(m, h, digits=3) for m, h in zip(
            frame.distance_ratio, frame.distance_ratio_ci, strict=True)],
        "G3 folds": frame["g3_folds"].astype(str),
        "G1 gain (points)": [report.fmt_ci(m, h, signed=True) for m, h in zip(
            frame.g1_gain, frame.g1_gain_ci, strict=True)],
        "G1 folds": frame["g1_folds"].astype(str),
    })
    figures = []
    if len(both):
        figures.append(FigureOut(
            "sweet_spot", "G1 gain vs latent distance ratio per augmentation (95% CIs)",
            plots.gain_vs_distance_ratio_figure(
                both["config"].tolist(), both["family"].tolist(), both["distance_ratio"],
                both["distance_ratio_ci"], both["g1_gain"], both["g1_gain_ci"])))
    return Section(
        title="Sweet spot - latent distance ratio vs G1 gain",
        text=text,
        tables=[
            Table(name="sweet_spot", caption="Distance ratio (G3) and weighted F1 gain (G1) "
                  "per augmentation", frame=frame, display=display),
            Table(name="sweet_spot_spearman", caption="Spearman rank correlation of distance "
                  "ratio and G1 gain", frame=pd.DataFrame([correlation]),
                  display=pd.DataFrame({"augmentations": [str(correlation["n"])],
                                        "rho": [report.fmt_ci(correlation["rho"], np.nan,
                                                              digits=3)],
                                        "p": [report.fmt_p(correlation["p"])]})),
        ],
        figures=figures,
    )


def build_report(ri: ReportInput) -> list[Section]:
    sections = [
        report.section("Fig. 5 - test samples among training anchors",
                       lambda: neighbours_section(ri)),
        report.section("Fig. 6 - original vs augmented latents",
                       lambda: latent_pairs_section(ri)),
    ]
    if "g1_gains" in ri.inputs:
        sections.append(report.section("Sweet spot - latent distance ratio vs G1 gain",
                                       lambda: sweet_spot_section(ri)))
    return sections


CAMPAIGN = Campaign(
    name="g3",
    title="G3 - latent space geometry",
    build_grid=build_grid,
    build_report=build_report,
    add_arguments=add_arguments,
    options=options,
    make_unit_fn=geometry_unit_fn,
    default_folds=DEFAULT_FOLDS,
    quick_defaults={"tsne_samples": 300},
    report_inputs=report_inputs,
)

if __name__ == "__main__":
    sys.exit(main(CAMPAIGN))
