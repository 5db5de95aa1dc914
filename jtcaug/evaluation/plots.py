"""Campaign figures as matplotlib ``Figure`` objects rendered by the Agg backend.

Functions build figures from plain numbers and return them; saving (atomically) is the
caller's job. No pyplot: figures are not registered in global state, so building many in
one process leaks nothing and needs no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FAMILY_COLOURS = {"amplitude": "tab:orange", "masking": "tab:green", "sequence": "tab:blue"}
OTHER_COLOUR = "tab:gray"


def new_figure(width: float, height: float) -> Figure:
    """A figure bound to an Agg canvas (PNG output without any GUI backend)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def critical_distance_figure(
    names: Sequence[str],
    ranks: Sequence[float],
    cd: float,
    groups: Sequence[Sequence[int]],
    title: str = "",
) -> Figure:
    """Critical-distance diagram (Demšar): mean ranks on an axis, bars join equivalent configs.

    Args:
      names: k configuration names.
      ranks: k mean ranks (1 = best).
      cd: the Nemenyi critical distance, drawn as a reference bar.
      groups: index groups whose members are statistically equivalent (one bar each).
    """
    k = len(names)
    r = np.asarray(ranks, dtype=np.float64)
    if r.shape != (k,):
        raise ValueError(f"{k} names need {k} ranks, got shape {r.shape}")
    order = np.argsort(r, kind="stable")
    n_left = (k + 1) // 2
    rows = max(n_left, k - n_left)
    fig = new_figure(10.0, 1.6 + 0.32 * rows + 0.18 * len(groups))
    ax = fig.add_subplot()
    lo, hi = 1.0, float(max(k, 2))
    axis_y = 0.0
    ax.hlines(axis_y, lo, hi, color="black", lw=1.2)
    for tick in range(1, int(hi) + 1):
        ax.vlines(tick, axis_y, axis_y + 0.12, color="black", lw=1.0)
        ax.text(tick, axis_y + 0.18, str(tick), ha="center", va="bottom", fontsize=9)
    ax.hlines(axis_y + 0.75, lo, lo + cd, color="tab:red", lw=2.0)
    ax.text(lo + cd / 2, axis_y + 0.82, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)

    group_gap = 0.18
    bars_bottom = axis_y - 0.25 - group_gap * len(groups)
    for level, group in enumerate(groups):
        members = r[list(group)]
        y = axis_y - 0.25 - group_gap * level
        ax.hlines(y, members.min() - 0.03, members.max() + 0.03, color="black", lw=3.0)

    text_pad = 0.35
    for row, idx in enumerate(order[:n_left]):
        y = bars_bottom - 0.3 - 0.32 * row
        ax.vlines(r[idx], y, axis_y, color="gray", lw=0.8)
        ax.hlines(y, lo - text_pad, r[idx], color="gray", lw=0.8)
        ax.text(lo - text_pad - 0.05, y, f"{names[idx]} ({r[idx]:.2f})", ha="right",
                va="center", fontsize=9)
    for row, idx in enumerate(order[n_left:][::-1]):
        y = bars_bottom - 0.3 - 0.32 * row
        ax.vlines(r[idx], y, axis_y, color="gray", lw=0.8)
        ax.hlines(y, r[idx], hi + text_pad, color="gray", lw=0.8)
        ax.text(hi + text_pad + 0.05, y, f"({r[idx]:.2f}) {names[idx]}", ha="left",
                va="center", fontsize=9)
    ax.set_xlim(lo - 0.35 * k / 2 - 1.5, hi + 0.35 * k / 2 + 1.5)
    ax.set_ylim(bars_bottom - 0.5 - 0.32 * rows, axis_y + 1.1)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig


def gain_vs_epochs_figure(
    names: Sequence[str],
    families: Sequence[str],
    gain: Sequence[float],
    gain_half_width: Sequence[float],
    epochs: Sequence[float],
    baseline_epochs: float | None = None,
) -> Figure:
    """Mean gain (percentage points, with CI bars) against mean epochs trained (Fig. 8)."""
    fig = new_figure(7.5, 5.0)
    ax = fig.add_subplot()
    for name, family, g, h, e in zip(names, families, gain, gain_half_width, epochs, strict=True):
        colour = FAMILY_COLOURS.get(family, OTHER_COLOUR)
        ax.errorbar(e, g, yerr=0.0 if np.isnan(h) else h, fmt="o", color=colour, capsize=3)
        ax.annotate(name, (e, g), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if baseline_epochs is not None:
        ax.axvline(baseline_epochs, color="black", ls="--", lw=1.0, label="baseline epochs")
    ax.axhline(0.0, color="black", lw=0.8)
    for family, colour in FAMILY_COLOURS.items():
        if family in families:
            ax.scatter([], [], color=colour, label=family)
    ax.set_xlabel("epochs trained (mean over folds)")
    ax.set_ylabel("weighted F1 gain over baseline (points)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def policy_lines_figure(
    panels: Mapping[str, Sequence[str]],
    curves: Mapping[str, Mapping[str, tuple[float, float]]],
    baseline: tuple[float, float],
    good: Sequence[str] = (),
) -> Figure:
    """Weighted F1 per batching policy setting, one line per augmentation with CI band (Fig. 4).

    Args:
      panels: policy kind -> ordered setting labels on its x axis, e.g.
        ``{"replace": ["0.3", "0.5", "1"], ...}``; a setting label is ``kind:value``'s value.
      curves: augmentation -> ``"kind:value"`` -> (mean, CI half width), in percent.
      baseline: (mean, CI half width) of the baseline, drawn dashed across every panel.
      good: augmentations drawn with a filled-circle marker (others get a cross).
    """
    widths = [max(len(settings), 1.5) for settings in panels.values()]
    fig = new_figure(1.3 * sum(widths) + 2.5, 4.2)
    axes = fig.subplots(
        1, len(panels), sharey=True, squeeze=False, gridspec_kw={"width_ratios": widths}
    )[0]
    colours = {name: f"C{i}" for i, name in enumerate(curves)}
    for ax, (kind, settings) in zip(axes, panels.items(), strict=True):
        x = np.arange(len(settings), dtype=np.float64)
        b_mean, b_half = baseline
        ax.axhline(b_mean, color="black", ls="--", lw=1.0, label="baseline")
        if np.isfinite(b_half):
            ax.axhspan(b_mean - b_half, b_mean + b_half, color="black", alpha=0.08)
        for i, (name, points) in enumerate(curves.items()):
            values = [points.get(f"{kind}:{s}", (np.nan, np.nan)) for s in settings]
            mean = np.array([v[0] for v in values], dtype=np.float64)
            half = np.nan_to_num(np.array([v[1] for v in values], dtype=np.float64))
            if np.isnan(mean).all():
                continue
            marker = "o" if name in good else "x"
            if len(settings) == 1:  # a band needs two points; show the interval as a bar
                dodge = 0.08 * (i - (len(curves) - 1) / 2)  # keep the bars apart
                ax.errorbar(x + dodge, mean, yerr=half, fmt=marker, color=colours[name],
                            capsize=4, label=name)
                continue
            ax.plot(x, mean, marker=marker, color=colours[name], label=name)
            ax.fill_between(x, mean - half, mean + half, color=colours[name], alpha=0.15)
        ax.set_xticks(x, list(settings))
        ax.set_xlim(-0.5, max(len(settings) - 1, 0) + 0.5)
        ax.set_title(kind)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test weighted F1 (%)")
    widest = axes[int(np.argmax(widths))]
    fig.legend(*widest.get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    return fig


def neighbour_scatter_figure(
    names: Sequence[str],
    panels: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    colour_values: Sequence[float],
    colour_label: str = "test weighted F1 (%)",
) -> Figure:
    """Scatter panels (Fig. 5): per augmentation one point, colour = its score.

    Args:
      names: augmentation names.
      panels: panel title -> (x values, y values), one per name.
      colour_values: one value per name for the colour map.
    """
    fig = new_figure(5.5 * len(panels), 4.5)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    c = np.asarray(colour_values, dtype=np.float64)
    artist = None
    for ax, (title, (xs, ys)) in zip(axes, panels.items(), strict=True):
        artist = ax.scatter(xs, ys, c=c, cmap="viridis", s=40, edgecolors="black", lw=0.4)
        for name, x, y in zip(names, xs, ys, strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ax.set_title(title)
        ax.set_xlabel("mean # neighbours with the test label")
        ax.set_ylabel("mean cosine similarity")
        ax.grid(alpha=0.3)
    if artist is not None:
        fig.colorbar(artist, ax=list(axes), label=colour_label)
    return fig


def metric_bars_figure(names: Sequence[str], metrics: Mapping[str, Sequence[float]]) -> Figure:
    """One horizontal bar panel per metric, one bar per name (G3 metric overview)."""
    fig = new_figure(3.6 * len(metrics), 0.3 * len(names) + 1.5)
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    y = np.arange(len(names))
    for ax, (title, values) in zip(axes, metrics.items(), strict=True):
        ax.barh(y, np.asarray(values, dtype=np.float64), color="tab:blue")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, list(names))
    axes[0].invert_yaxis()
    return fig


def gain_vs_distance_ratio_figure(
    names: Sequence[str],
    families: Sequence[str],
    ratio: Sequence[float],
    ratio_half_width: Sequence[float],
    gain: Sequence[float],
    gain_half_width: Sequence[float],
) -> Figure:
    """Per augmentation (one point each, 95% CI bars, family colour): its latent distance
    ratio augmented / original (G3) against its weighted F1 gain over the baseline (G1)."""
    fig = new_figure(7.0, 5.0)
    ax = fig.add_subplot()
    points = zip(names, families, ratio, ratio_half_width, gain, gain_half_width, strict=True)
    for name, family, x, xh, y, yh in points:
        colour = FAMILY_COLOURS.get(family, OTHER_COLOUR)
        ax.errorbar(x, y, xerr=np.nan_to_num(xh), yerr=np.nan_to_num(yh), fmt="o",
                    color=colour, capsize=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.axhline(0.0, color="black", lw=0.8)
    for family, colour in FAMILY_COLOURS.items():
        if family in families:
            ax.scatter([], [], color=colour, label=family)
    ax.set_xlabel("latent distance ratio augmented / original (G3)")
    ax.set_ylabel("weighted F1 gain over baseline (points, G1)")
    if any(f in FAMILY_COLOURS for f in families):
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def tsne_figure(panels: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """t-SNE panels (Fig. 6 top): name -> (``(P, 2)`` coordinates, ``(P,)`` is-augmented)."""
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = new_figure(4.0 * cols, 3.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, (coords, is_aug)) in zip(axes, panels.items(), strict=False):
        xy = np.asarray(coords)
        aug = np.asarray(is_aug, dtype=bool)
        ax.scatter(xy[~aug, 0], xy[~aug, 1], s=4, alpha=0.3, color="tab:blue", label="original")
        ax.scatter(xy[aug, 0], xy[aug, 1], s=4, alpha=0.3, color="tab:red", label="augmented")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels):]:
        ax.axis("off")
    if panels:
        axes[0].legend(fontsize=8, markerscale=3)
    return fig


def kde_figure(panels: Mapping[str, tuple[np.ndarray, np.ndarray | None]]) -> Figure:
    """KDE curves (Fig. 6 bottom) in one axis: name -> (grid, density or None if undefined)."""
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    for name, (grid, density) in panels.items():
        if density is None:
            ax.plot([], [], label=f"{name} (no spread)")
            continue
        ax.plot(grid, density, label=name)
    ax.set_xlabel("Euclidean distance ||f(x) - f(x')||")
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
