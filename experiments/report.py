"""Campaign reports: ``results.parquet``, ``report.md``, tables as CSV + LaTeX, figures as PNG.

Campaign modules turn the tidy results into :class:`Section` objects (tables as DataFrames,
figures as matplotlib ``Figure``); this module holds the statistics helpers they share and
writes everything atomically. A report can be built from a partial campaign: sections that
lack the runs they need say so instead of failing.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from experiments.grid import CampaignError, ConfigSpec, RunSpec
from experiments.results import collect_results, write_results
from experiments.store import REPORT_LOCK, ResultStore
from jtcaug.evaluation import stats
from jtcaug.io import atomic_write_text, atomic_write_with

REPORT = "report.md"
TABLES_DIR = "tables"
FIGURES_DIR = "figures"
PM = "±"


class NotEnoughResults(Exception):
    """A section cannot be computed from the runs finished so far; the message says why."""


@dataclasses.dataclass
class Table:
    """A report table.

    Attributes:
      name: file stem of ``tables/<name>.csv`` and ``.tex``.
      caption: one line shown above the table.
      frame: the numbers (written to CSV as is).
      display: the same table as strings for markdown and LaTeX (default: ``frame``
        with floats shown to 2 decimals).
      emphasis: optional ``(row position, "best" | "worst")`` marks: bold / italic cells
        (all but the first column, which holds group labels).
      inline: show the table in report.md (wide tables are only linked).
    """

    name: str
    caption: str
    frame: pd.DataFrame
    display: pd.DataFrame | None = None
    emphasis: dict[int, str] = dataclasses.field(default_factory=dict)
    inline: bool = True


@dataclasses.dataclass
class FigureOut:
    name: str
    caption: str
    figure: Figure


@dataclasses.dataclass
class Section:
    title: str
    text: str = ""
    tables: list[Table] = dataclasses.field(default_factory=list)
    figures: list[FigureOut] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ReportInput:
    """What a campaign's report builder gets.

    Attributes:
      out_dir: the campaign directory (for arrays saved with runs).
      manifest: the campaign configuration.
      grid: the configurations.
      results: one row per finished run (``results.parquet``).
      inputs: what the report reads from elsewhere (``Campaign.report_inputs``).
    """

    out_dir: Path
    manifest: dict
    grid: list[ConfigSpec]
    results: pd.DataFrame
    inputs: dict = dataclasses.field(default_factory=dict)

    def config(self, name: str) -> ConfigSpec:
        for c in self.grid:
            if c.name == name:
                return c
        raise KeyError(name)

    def names(self, group: str) -> list[str]:
        return [c.name for c in self.grid if c.group == group]


def section(title: str, build: Callable[[], Section]) -> Section:
    """Runs a section builder; a section lacking runs becomes a note instead of an error."""
    try:
        return build()
    except NotEnoughResults as exc:
        return Section(title=title, text=f"*Not available yet: {exc}*")


# --------------------------------------------------------------------------------------------
# Statistics over the tidy results
# --------------------------------------------------------------------------------------------


def paired_scores(
    results: pd.DataFrame, configs: Sequence[str], metric: str = "weighted_f1"
) -> tuple[list[int], np.ndarray]:
    """``(folds, (N, k) matrix)`` of ``metric`` on the folds where every config finished."""
    if results.empty:
        raise NotEnoughResults("no finished runs")
    sub = results[results["config"].isin(list(configs))]
    table = sub.pivot_table(index="fold", columns="config", values=metric, aggfunc="first")
    missing = [c for c in configs if c not in table.columns]
    if missing:
        raise NotEnoughResults(f"no finished runs of {', '.join(missing)}")
    table = table[list(configs)].dropna()
    if table.empty:
        raise NotEnoughResults(f"no fold where all of {', '.join(configs)} finished")
    return [int(f) for f in table.index], table.to_numpy(dtype=np.float64)


def gain_table(
    results: pd.DataFrame,
    baseline: str,
    configs: Sequence[str],
    metric: str = "weighted_f1",
    scale: float = 100.0,
) -> pd.DataFrame:
    """Per config: mean gain over the baseline of the same folds with its 95% t-interval.

    Returns:
      Columns ``config, n, gain, ci`` (``scale`` units, e.g. percentage points; ci is the
      half width) plus the config's mean score ``score``; configs without a paired fold
      get n = 0 and NaNs.
    """
    rows = []
    for name in configs:
        try:
            _, scores = paired_scores(results, [baseline, name], metric)
            gain = stats.paired_gain(scores[:, 1] * scale, scores[:, 0] * scale)
            score = stats.mean_ci(scores[:, 1] * scale)
            rows.append(dict(config=name, n=gain.n, gain=gain.mean, ci=gain.half_width,
                             score=score.mean, score_ci=score.half_width))
        except NotEnoughResults:
            rows.append(dict(config=name, n=0, gain=np.nan, ci=np.nan, score=np.nan,
                             score_ci=np.nan))
    return pd.DataFrame(rows)


def score_summary(results: pd.DataFrame, config: str, metric: str = "weighted_f1",
                  scale: float = 100.0) -> stats.MeanCI:
    values = results.loc[results["config"] == config, metric].to_numpy(dtype=np.float64)
    if values.size == 0:
        raise NotEnoughResults(f"no finished runs of {config}")
    return stats.mean_ci(values * scale)


def fmt_ci(mean: float, half: float, digits: int = 2, signed: bool = False) -> str:
    """``"4.40 ± 0.13"``; the interval is left out when it is undefined (one fold)."""
    if mean is None or not math.isfinite(mean):
        return "-"
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if half is not None and math.isfinite(half):
        text += f" {PM} {half:.{digits}f}"
    return text


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def gain_benchmark_table(
    results: pd.DataFrame,
    baseline: str,
    rows: Sequence[tuple[str, str, str]],
    name: str,
    caption: str,
    n_marked: int = 3,
) -> Table:
    """A Table-5-like table: the baseline's score, then each config's gain with its CI.

    Args:
      baseline: baseline config name (its row shows the absolute weighted F1, %).
      rows: ``(group label, config name, shown name)`` in display order.
      n_marked: the best and the worst ``n_marked`` configs by mean gain are marked.
    """
    base = score_summary(results, baseline)
    gains = gain_table(results, baseline, [r[1] for r in rows]).set_index("config")
    frame = pd.DataFrame(
        [dict(group="baseline", config=baseline, n=base.n, gain=np.nan, ci=np.nan,
              score=base.mean, score_ci=base.half_width, mark="")]
        + [dict(group=g, config=c, **gains.loc[c].to_dict(), mark="") for g, c, _ in rows]
    )
    frame["n"] = frame["n"].astype(int)
    ranked = frame.iloc[1:].dropna(subset=["gain"]).sort_values("gain", ascending=False)
    emphasis = {}
    if len(ranked) >= 2 * n_marked:
        for pos in ranked.index[:n_marked]:
            frame.loc[pos, "mark"] = f"best-{n_marked}"
            emphasis[int(pos)] = "best"
        for pos in ranked.index[-n_marked:]:
            frame.loc[pos, "mark"] = f"worst-{n_marked}"
            emphasis[int(pos)] = "worst"
    shown_names = [baseline] + [r[2] for r in rows]
    display = pd.DataFrame({
        "": ["Baseline"] + [g if i == 0 or rows[i - 1][0] != g else ""
                            for i, (g, _, _) in enumerate(rows)],
        "configuration": shown_names,
        "weighted F1 / gain (points)": [fmt_ci(base.mean, base.half_width)] + [
            fmt_ci(frame.loc[i + 1, "gain"], frame.loc[i + 1, "ci"], signed=True)
            for i in range(len(rows))
        ],
        "folds": frame["n"].astype(str).tolist(),
        "mark": frame["mark"].tolist(),
    })
    return Table(name=name, caption=caption, frame=frame, display=display, emphasis=emphasis)


def rank_section(
    results: pd.DataFrame,
    configs: Sequence[str],
    title: str,
    name: str,
    alpha: float = 0.05,
) -> Section:
    """Mean ranks over the folds where every config finished, Friedman test, Nemenyi CD,
    the critical-distance diagram and the pairwise Nemenyi p-values."""
    from jtcaug.evaluation import plots

    folds, scores = paired_scores(results, configs)
    if len(configs) < 3 or len(folds) < 2:
        raise NotEnoughResults(
            f"ranks need >= 3 configs on >= 2 common folds, have {len(configs)} on {len(folds)}"
        )
    ranks = stats.mean_ranks(scores)
    friedman = stats.friedman_test(scores)
    cd = stats.critical_distance(len(configs), len(folds), alpha)
    groups = stats.equivalent_groups(ranks, cd)
    pvalues = stats.nemenyi_pvalues(scores)
    order = np.argsort(ranks, kind="stable")
    rank_frame = pd.DataFrame({
        "config": [configs[i] for i in order],
        "mean_rank": ranks[order],
        "mean_weighted_f1": scores.mean(axis=0)[order] * 100,
    })
    p_frame = pd.DataFrame(pvalues, columns=list(configs))
    p_frame.insert(0, "config", list(configs))
    group_text = "; ".join("{" + ", ".join(configs[i] for i in g) + "}" for g in groups) or "none"
    text = (
        f"Ranks per fold over {len(folds)} folds with all {len(configs)} configurations "
        f"(1 = best, ties averaged). Friedman chi2 = {friedman.statistic:.2f}, "
        f"p = {fmt_p(friedman.pvalue)}. Nemenyi critical distance at alpha = {alpha}: "
        f"CD = q_alpha sqrt(k(k+1)/6N) = {stats.nemenyi_q(len(configs), alpha):.3f} x "
        f"sqrt({len(configs)}*{len(configs) + 1}/(6*{len(folds)})) = {cd:.3f}. "
        f"Groups not significantly different (bars): {group_text}."
    )
    fig = plots.critical_distance_figure(list(configs), ranks, cd, groups)
    return Section(
        title=title,
        text=text,
        tables=[
            Table(name=f"{name}_ranks", caption="Mean ranks (lower is better)",
                  frame=rank_frame),
            Table(name=f"{name}_nemenyi_p", caption="Pairwise Nemenyi p-values",
                  frame=p_frame, inline=False),
        ],
        figures=[FigureOut(name=name, caption=f"{title}: mean ranks and critical distance",
                           figure=fig)],
    )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _display(table: Table) -> pd.DataFrame:
    if table.display is not None:
        return table.display.astype(str)
    shown = table.frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    return shown.astype(str)


def markdown_table(table: Table) -> str:
    shown = _display(table)
    cells = [[str(c) for c in shown.columns]]
    for i, row in enumerate(shown.itertuples(index=False)):
        mark = table.emphasis.get(i)
        wrap = "**" if mark == "best" else "*" if mark == "worst" else ""
        cells.append([
            f"{wrap}{v}{wrap}" if wrap and j > 0 and v not in ("", "-") else str(v)
            for j, v in enumerate(row)
        ])
    esc = [[c.replace("|", "\\|") for c in row] for row in cells]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in esc[0]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(lines)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return escaped.replace(PM, r"$\pm$")


def latex_table(table: Table) -> str:
    shown = _display(table)
    lines = [
        r"% needs \usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.caption)}}}",
        r"\begin{tabular}{" + "l" * len(shown.columns) + "}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in shown.columns) + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(shown.itertuples(index=False)):
        mark = table.emphasis.get(i)
        cmd = r"\textbf" if mark == "best" else r"\textit" if mark == "worst" else None
        cells = [latex_escape(v) for v in row]
        if cmd:
            cells = [cells[0]] + [f"{cmd}{{{c}}}" if c else c for c in cells[1:]]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\label{{tab:{table.name}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _save_png(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=130)


def write_sections(out_dir: Path, sections: Sequence[Section]) -> list[str]:
    """Writes tables and figures of the sections; returns their markdown."""
    parts = []
    for sec in sections:
        parts.append(f"## {sec.title}\n")
        if sec.text:
            parts.append(sec.text.strip() + "\n")
        for table in sec.tables:
            csv_path = out_dir / TABLES_DIR / f"{table.name}.csv"
            tex_path = out_dir / TABLES_DIR / f"{table.name}.tex"
            atomic_write_text(csv_path, table.frame.to_csv(index=False))
            atomic_write_text(tex_path, latex_table(table))
            parts.append(f"**{table.caption}** ([CSV]({TABLES_DIR}/{table.name}.csv), "
                         f"[LaTeX]({TABLES_DIR}/{table.name}.tex))\n")
            if table.inline:
                parts.append(markdown_table(table) + "\n")
        for fig in sec.figures:
            png = out_dir / FIGURES_DIR / f"{fig.name}.png"
            atomic_write_with(png, lambda p, f=fig.figure: _save_png(f, p))
            parts.append(f"![{fig.caption}]({FIGURES_DIR}/{fig.name}.png)\n\n*{fig.caption}*\n")
    return parts


def header_lines(manifest: dict, results: pd.DataFrame, n_runs: int) -> list[str]:
    dataset = manifest.get("dataset", {})
    ds_text = ", ".join(f"{k}={v}" for k, v in dataset.items() if v not in (None, False, ""))
    done = len(results)
    lines = [
        f"- dataset: {ds_text or '-'}",
        f"- folds: {manifest.get('folds')}, preset: {manifest.get('preset')}, "
        f"seed: {manifest.get('seed')}, "
        f"max epochs: {manifest.get('max_epochs') or 'trainer default'}, "
        f"batch size: {manifest.get('batch_size') or 'trainer default (1024)'}",
        f"- pairing: {manifest.get('pairing', 'seeds')} (runs of a fold share "
        + ("the split only" if manifest.get("pairing") == "split" else
           "the split and the run seeds")
        + f"), model: {manifest.get('model') or 'resnet1d'}"
        + f", precision: {manifest.get('precision', 'float32')}",
        f"- runs finished: {done} of {n_runs}"
        + ("" if done == n_runs else " (**partial campaign**: rerun the command to finish)"),
        f"- generated: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- results: [{Path('results.parquet')}](results.parquet) (one row per run)",
    ]
    if manifest.get("options"):
        lines.insert(2, "- options: " + ", ".join(
            f"{k}={v}" for k, v in manifest["options"].items()))
    return lines


def write_campaign_report(out_dir: Path, campaign, manifest: dict, runs: Sequence[RunSpec],
                          inputs: dict | None = None) -> Path:
    """Collects the finished runs of ``runs`` and writes results.parquet, tables, figures and
    report.md for ``campaign`` (an ``experiments.campaign.Campaign``); ``inputs`` are the report's
    inputs from elsewhere (``Plan.report_inputs``).

    The build holds OUT's report lock and reads the result files inside it, so of several
    processes building reports the last one to finish read the store last: its report is
    never older than another's.
    """
    store = ResultStore(out_dir)
    for name in (TABLES_DIR, FIGURES_DIR):
        if (out_dir / name).exists() and not (out_dir / name).is_dir():
            raise CampaignError(f"the report's {name} directory {out_dir / name} exists and is "
                                "not a directory")
    with store.lock(REPORT_LOCK):
        results = collect_results(store, runs)
        write_results(store, results)
        grid = list({spec.config.name: spec.config for spec in runs}.values())
        ri = ReportInput(out_dir=out_dir, manifest=manifest, grid=grid, results=results,
                         inputs=dict(inputs or {}))
        sections = campaign.build_report(ri) if not results.empty else [
            Section("Results", "*No finished runs yet.*")
        ]
        parts = [f"# {campaign.title}\n",
                 "\n".join(header_lines(manifest, results, len(runs))) + "\n"]
        parts += write_sections(out_dir, sections)
        path = out_dir / REPORT
        atomic_write_text(path, "\n".join(parts))
    return path
