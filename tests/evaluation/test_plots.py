"""Figures render to PNG with the Agg canvas and show what they are given."""

import io

import numpy as np

from jtcaug.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def render(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_critical_distance_diagram_labels_ranks_and_cd():
    names = ["none", "translation", "wrap", "horizontal_flip", "permutation"]
    ranks = [3.9, 1.4, 1.9, 4.6, 2.2]
    fig = plots.critical_distance_figure(names, ranks, cd=1.2, groups=[(1, 2, 4), (0, 3)])
    assert render(fig).startswith(PNG_MAGIC)
    shown = texts(fig)
    assert "translation (1.40)" in shown  # best half on the left, with its rank
    assert "(4.60) horizontal_flip" in shown  # worst half on the right
    assert "CD = 1.20" in shown
    # One thick bar per equivalence group, spanning its members' ranks.
    bars = [c for c in fig.axes[0].collections if np.allclose(c.get_linewidth(), 3.0)]
    assert len(bars) == 2
    spans = sorted(tuple(np.round(seg[:, 0], 2)) for b in bars for seg in b.get_segments())
    assert spans == [(1.37, 2.23), (3.87, 4.63)]


def test_gain_vs_epochs_and_policy_lines_render():
    fig = plots.gain_vs_epochs_figure(
        ["translation", "gaussian_noise"], ["sequence", "amplitude"], [4.4, 0.9], [0.1, np.nan],
        [60.0, 40.0], baseline_epochs=35.0,
    )
    assert render(fig).startswith(PNG_MAGIC)
    assert set(texts(fig)) == {"translation", "gaussian_noise"}

    fig = plots.policy_lines_figure(
        {"replace": ["0.3", "1"], "inject": ["1", "2"]},
        {"translation": {"replace:0.3": (76.0, 0.2), "inject:1": (79.0, 0.1),
                         "inject:2": (79.5, 0.1)}},
        baseline=(75.4, 0.1), good=["translation"],
    )
    assert render(fig).startswith(PNG_MAGIC)
    assert [ax.get_title() for ax in fig.axes] == ["replace", "inject"]
    line = [ln for ln in fig.axes[1].lines if ln.get_label() == "translation"][0]
    np.testing.assert_allclose(line.get_ydata(), [79.0, 79.5])


def test_geometry_figures_render():
    names = ["translation", "wrap", "horizontal_flip"]
    fig = plots.neighbour_scatter_figure(
        names, {"all": ([8.1, 8.0, 6.5], [0.95, 0.94, 0.9])}, [79.0, 78.5, 74.0]
    )
    assert render(fig).startswith(PNG_MAGIC)
    fig = plots.metric_bars_figure(names, {"ratio": [1.0, 1.1, 1.6], "same": [8, 8, 6]})
    assert render(fig).startswith(PNG_MAGIC)
    rng = np.random.default_rng(0)
    fig = plots.tsne_figure({"wrap": (rng.normal(size=(20, 2)), np.repeat([False, True], 10))})
    assert render(fig).startswith(PNG_MAGIC)
    grid = np.linspace(0, 1, 11)
    fig = plots.kde_figure({"wrap": (grid, np.ones(11)), "constant_wrapup": (grid, None)})
    assert render(fig).startswith(PNG_MAGIC)
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert labels == ["wrap", "constant_wrapup (no spread)"]


def test_gain_vs_distance_ratio_puts_each_augmentation_at_its_ratio_and_gain():
    fig = plots.gain_vs_distance_ratio_figure(
        ["translation", "gaussian_noise", "horizontal_flip"],
        ["sequence", "amplitude", "sequence"],
        ratio=[1.4, 2.1, 3.0], ratio_half_width=[0.1, np.nan, 0.2],
        gain=[4.4, 0.9, -2.0], gain_half_width=[0.5, 0.3, np.nan],
    )
    assert render(fig).startswith(PNG_MAGIC)
    labels = {t.get_text(): t.xy for t in fig.axes[0].texts}
    assert labels == {"translation": (1.4, 4.4), "gaussian_noise": (2.1, 0.9),
                      "horizontal_flip": (3.0, -2.0)}
