"""G6's report: the search per generation, the best policy's weights, and the final
comparison of the best policy with the baseline and G4's combinations on the same folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments import report
from experiments.policy_search import BASELINE, BEST, candidate_scores, policy_weights, ranked
from experiments.report import FigureOut, NotEnoughResults, ReportInput, Section, Table
from jtcaug.evaluation import plots, stats


def _scores(ri: ReportInput) -> pd.DataFrame:
    options = ri.manifest.get("options", {})
    scores = candidate_scores(ri.grid, ri.results, options.get("search_folds", 1),
                              finished_only=True)
    if scores is None or scores.empty:
        raise NotEnoughResults("no candidate has finished its search folds")
    # Mean over the search folds, in %: the sum ranks candidates, the mean reads like F1.
    return scores.assign(val_f1_pct=100 * scores["val_f1"] / options.get("search_folds", 1))


def generations_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per generation: candidates, best and mean validation F1 (%), best so far, its name."""
    rows, best_so_far, best_name = [], -np.inf, ""
    for gen, group in scores.groupby("gen", sort=True):
        top = ranked(group).iloc[0]
        if top["val_f1_pct"] > best_so_far:
            best_so_far, best_name = float(top["val_f1_pct"]), str(top["config"])
        rows.append(dict(generation=int(gen), candidates=len(group),
                         best=float(top["val_f1_pct"]), mean=float(group["val_f1_pct"].mean()),
                         best_candidate=str(top["config"]), best_so_far=best_so_far,
                         best_so_far_candidate=best_name))
    return pd.DataFrame(rows)


def search_figure(scores: pd.DataFrame, table: pd.DataFrame):
    fig = plots.new_figure(6.0, 3.8)
    ax = fig.subplots()
    ax.scatter(scores["gen"], scores["val_f1_pct"], s=18, alpha=0.6, color="C0",
               label="candidate")
    ax.plot(table["generation"], table["mean"], marker="s", color="C1", label="mean")
    ax.plot(table["generation"], table["best_so_far"], marker="o", color="C3",
            label="best so far")
    ax.set_xticks(table["generation"])
    ax.set_xlabel("generation")
    ax.set_ylabel("validation weighted F1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def search_section(ri: ReportInput) -> Section:
    scores = _scores(ri)
    table = generations_table(scores)
    options = ri.manifest.get("options", {})
    display = pd.DataFrame({
        "generation": table["generation"].astype(str),
        "candidates": table["candidates"].astype(str),
        "best": table["best"].map(lambda v: f"{v:.2f}"),
        "mean": table["mean"].map(lambda v: f"{v:.2f}"),
        "best candidate": table["best_candidate"],
        "best so far": [f"{v:.2f} ({n})" for v, n in
                        zip(table["best_so_far"], table["best_so_far_candidate"], strict=True)],
    })
    candidates = scores.sort_values(["gen", "idx"])[["config", "gen", "aug", "val_f1_pct"]]
    return Section(
        title="Search",
        text=f"Population {options.get('population')}, {options.get('generations')} "
        f"generation(s), elite {options.get('elite')}, Dirichlet concentration "
        f"{options.get('concentration')}; candidates scored by validation weighted F1 over "
        f"the first {options.get('search_folds')} fold(s) (mean shown, %; test splits play "
        "no part in the search).",
        tables=[
            Table(name="g6_generations", caption="Validation weighted F1 (%) per generation",
                  frame=table, display=display),
            Table(name="g6_candidates", caption="Every candidate policy and its validation "
                  "weighted F1 (%)", frame=candidates, inline=False),
        ],
        figures=[FigureOut(name="g6_search", caption="Validation weighted F1 per generation",
                           figure=search_figure(scores, table))],
    )


def weights_figure(names, weights):
    fig = plots.new_figure(5.0, 3.2)
    ax = fig.subplots()
    ax.bar(range(len(names)), weights, color="C2")
    ax.axhline(1.0 / len(names), color="gray", ls="--", lw=0.8, label="uniform")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    return fig


def best_section(ri: ReportInput) -> Section:
    scores = _scores(ri)
    top = ranked(scores).iloc[0]
    names = list(ri.manifest.get("options", {}).get("pool", []))
    weights = policy_weights(top["aug"])
    frame = pd.DataFrame({"augmentation": names, "weight": weights})
    return Section(
        title="Best policy",
        text=f"Best candidate so far: {top['config']} (validation weighted F1 "
        f"{top['val_f1_pct']:.2f}%). Reuse it anywhere a combination is accepted: "
        f"`{top['aug']}`.",
        tables=[Table(name="g6_best_weights", caption="Weights of the best policy",
                      frame=frame, display=frame.assign(
                          weight=frame["weight"].map(lambda v: f"{v:.3f}")))],
        figures=[FigureOut(name="g6_best_weights", caption="Weights of the best policy",
                           figure=weights_figure(names, weights))],
    )


def _final_names(ri: ReportInput) -> list[str]:
    return [BASELINE, BEST, *ri.names("combined")]


def final_section(ri: ReportInput) -> Section:
    if BEST not in {c.name for c in ri.grid}:
        raise NotEnoughResults("the search has not finished (the final stage starts after "
                               "its last generation)")
    names = _final_names(ri)
    rows = []
    for name in names:
        try:
            ci = report.score_summary(ri.results, name)
        except NotEnoughResults:
            ci = stats.MeanCI(np.nan, np.nan, 0)
        row = dict(config=name, n=ci.n, f1=ci.mean, ci=ci.half_width, difference=np.nan,
                   difference_ci=np.nan, p=np.nan)
        if name != BEST:
            try:
                _, paired = report.paired_scores(ri.results, [BEST, name])
                gain = stats.paired_gain(paired[:, 0] * 100, paired[:, 1] * 100)
                row.update(difference=gain.mean, difference_ci=gain.half_width,
                           p=stats.wilcoxon_test(paired[:, 0], paired[:, 1]).pvalue)
            except NotEnoughResults:
                pass
        rows.append(row)
    frame = pd.DataFrame(rows)
    if (frame["n"] == 0).all():
        raise NotEnoughResults("no finished runs of the final stage")
    display = pd.DataFrame({
        "configuration": frame["config"],
        "test weighted F1 (%)": [report.fmt_ci(m, h) for m, h in
                                 zip(frame["f1"], frame["ci"], strict=True)],
        "best minus it (points)": [report.fmt_ci(d, h, signed=True) for d, h in
                                   zip(frame["difference"], frame["difference_ci"],
                                       strict=True)],
        "Wilcoxon p": frame["p"].map(report.fmt_p),
        "folds": frame["n"].astype(str),
    })
    rows7 = [("G6", BEST, "G6 best"), *(("Combined", n, n.replace("_p", " p="))
                                         for n in ri.names("combined"))]
    gains = report.gain_benchmark_table(
        ri.results, BASELINE, rows7, name="g6_gains", n_marked=1,
        caption="Baseline weighted F1 (%) and gains (points) over it, mean ± 95% CI over "
        "folds (as G4's Table 7)",
    )
    return Section(
        title="Best policy vs G4's combinations",
        text="Test weighted F1 on the same folds (G4's fold numbering) for the baseline, the "
        "best policy of the search and G4's combinations over the same pool, each injected "
        "once per sample (inject:1, alpha ~ U(0, 1)). 'best minus it': paired difference "
        "fold by fold with its 95% CI and the two-sided Wilcoxon signed-rank p-value.",
        tables=[Table(name="g6_final", caption="Test weighted F1 (%), mean ± 95% CI over "
                      "folds, and the best policy against each configuration",
                      frame=frame, display=display), gains],
    )


def build_report(ri: ReportInput) -> list[Section]:
    return [
        report.section("Search", lambda: search_section(ri)),
        report.section("Best policy", lambda: best_section(ri)),
        report.section("Best policy vs G4's combinations", lambda: final_section(ri)),
    ]
