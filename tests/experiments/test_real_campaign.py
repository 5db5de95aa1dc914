"""A tiny real campaign through the trainer: every artefact, then kill + resume = same results."""

import dataclasses

import pandas as pd
import pytest

from experiments import cli, g1, g3
from experiments.store import ResultStore
from experiments.training import trainer_unit_fn

pytestmark = pytest.mark.slow

ARGV = ["--dataset", "synthetic", "--scale", "0.02", "--folds", "2", "--max-epochs", "2",
        "--augs", "translation,wrap", "--magnitude-folds", "1", "--no-progress",
        "--compile-cache", "none"]
# Timing and the host do not repeat; everything else must.
VOLATILE = ["wall_time_s"]


class KilledAfter:
    """The real unit function, interrupted like a killed process after ``n`` units."""

    def __init__(self, args, n_folds, n):
        self.inner = trainer_unit_fn(args, n_folds)
        self.left = n

    def __call__(self, unit):
        if self.left == 0:
            raise KeyboardInterrupt("simulated kill")
        self.left -= 1
        return self.inner(unit)


def test_tiny_g1_campaign_then_kill_and_resume(tmp_path, capsys):
    full = tmp_path / "full"
    assert cli.main(g1.CAMPAIGN, [*ARGV, "--out", str(full)]) == 0
    assert "runs: 8/8 finished" in capsys.readouterr().out
    text = (full / "report.md").read_text()
    assert "Not available" not in text
    for artefact in ("results.parquet", "tables/table5_gains.csv", "tables/table5_gains.tex",
                     "tables/magnitude_wilcoxon.csv", "tables/fig3_critical_distance_ranks.csv",
                     "figures/fig3_critical_distance.png", "figures/fig8_gain_vs_epochs.png"):
        assert (full / artefact).stat().st_size > 0, artefact
    reference = pd.read_parquet(full / "results.parquet")
    assert len(reference) == 8 and reference["run_id"].is_unique
    assert set(reference["epochs_run"]) <= {1, 2}
    assert reference["weighted_f1"].between(0, 1).all()

    resumed = tmp_path / "resumed"
    killed = dataclasses.replace(
        g1.CAMPAIGN, make_unit_fn=lambda args, n: KilledAfter(args, n, 2)
    )
    assert cli.main(killed, [*ARGV, "--out", str(resumed)]) == 130
    # Units of 2 runs (one per forced device): baseline folds 0-1, translation folds 0-1.
    assert len(list((resumed / "runs").glob("*.json"))) == 4
    assert cli.main(g1.CAMPAIGN, [*ARGV, "--out", str(resumed)]) == 0
    assert "4 already there, 4 run now" in capsys.readouterr().out
    again = pd.read_parquet(resumed / "results.parquet")
    pd.testing.assert_frame_equal(reference.drop(columns=VOLATILE),
                                  again.drop(columns=VOLATILE))


def test_tiny_g3_campaign_measures_latent_geometry(tmp_path):
    argv = ["--dataset", "synthetic", "--scale", "0.02", "--folds", "1", "--max-epochs", "1",
            "--batch-size", "128", "--augs", "translation,horizontal_flip",
            "--tsne-augs", "translation", "--tsne-samples", "60", "--anchor-copies", "2",
            "--no-progress", "--compile-cache", "none", "--out", str(tmp_path)]
    assert cli.main(g3.CAMPAIGN, argv) == 0
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert len(results) == 2
    assert results["geo_same_label_all"].between(0, 10).all()
    assert results["geo_similarity_aug"].between(-1, 1).all()
    assert (results["geo_distance_ratio"] > 0).all()
    arrays = ResultStore(tmp_path).load_arrays("translation__fold000")
    assert arrays["tsne"].shape == (120, 2)
    assert arrays["tsne_is_augmented"].sum() == 60
    assert ResultStore(tmp_path).load_arrays("horizontal_flip__fold000") is None
    for fig in ("fig5_neighbours", "fig5_metric_bars", "fig6_tsne", "fig6_kde"):
        assert (tmp_path / "figures" / f"{fig}.png").stat().st_size > 0


def test_tiny_g3_campaign_with_the_transformer(tmp_path):
    argv = ["--dataset", "synthetic", "--scale", "0.02", "--folds", "1", "--max-epochs", "1",
            "--batch-size", "128", "--augs", "translation", "--tsne-augs", "translation",
            "--tsne-samples", "60", "--anchor-copies", "2", "--model", "transformer",
            "--no-progress", "--compile-cache", "none", "--out", str(tmp_path)]
    assert cli.main(g3.CAMPAIGN, argv) == 0
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert len(results) == 1
    assert (results["n_params"] == 46_036).all()  # the preset has MIRAGE-19's 20 classes
    assert results["geo_same_label_all"].between(0, 10).all()
    assert (results["geo_distance_ratio"] > 0).all()
    assert ResultStore(tmp_path).load_arrays("translation__fold000")["tsne"].shape == (120, 2)
    assert "model: transformer" in (tmp_path / "report.md").read_text()
