"""G3 --gains-from: the latent distance ratio of each augmentation beside its G1 gain."""

import dataclasses
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from experiments import cli, g1, g3

from .fakes import fake_output, fake_unit_fn

COMMON = ["--dataset", "synthetic", "--no-progress", "--compile-cache", "none",
          "--max-epochs", "2"]
AUGS = ("translation", "wrap", "permutation", "horizontal_flip", "gaussian_noise")
FAKE_G1 = dataclasses.replace(g1.CAMPAIGN, make_unit_fn=fake_unit_fn())


def geometry_run(spec):
    """Fake G3 run: geometry metrics whose distance ratio differs per augmentation."""
    out = fake_output(spec)
    offset = zlib.crc32(spec.config.name.encode()) % 97 / 97
    rng = np.random.default_rng(spec.fold)
    out.record["extra"] = {
        "geo_same_label_all": 8.0, "geo_similarity_all": 0.9, "geo_same_label_aug": 7.0,
        "geo_similarity_aug": 0.85, "geo_distance_ratio": 1.0 + offset + rng.normal(0, 0.01),
        "geo_n_ratio": 50, "geo_k": 10,
    }
    return out


FAKE_G3 = dataclasses.replace(g3.CAMPAIGN, make_unit_fn=fake_unit_fn(geometry_run))


def run_g1(out, augs=AUGS, extra=()):
    argv = [*COMMON, "--folds", "3", "--augs", ",".join(augs), "--magnitude-folds", "0",
            *extra, "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 0


def g3_argv(out, augs=AUGS, extra=()):
    return [*COMMON, "--folds", "2", "--augs", ",".join(augs), "--tsne-augs", "translation",
            *extra, "--out", str(out)]


def section_titles(report_md: str) -> list[str]:
    return [line[3:] for line in report_md.splitlines() if line.startswith("## ")]


def test_sweet_spot_correlation_is_spearman_of_the_g1_and_g3_tables(tmp_path, capsys):
    run_g1(tmp_path / "g1")
    g3_out = tmp_path / "g3"
    assert cli.main(FAKE_G3, g3_argv(g3_out, extra=["--gains-from", str(tmp_path / "g1")])) == 0
    text = (g3_out / "report.md").read_text()
    assert "Sweet spot - latent distance ratio vs G1 gain" in section_titles(text)
    assert f"`{tmp_path / 'g1'}`" in text

    gains = pd.read_csv(tmp_path / "g1/tables/table5_gains.csv").set_index("config")
    ratios = pd.read_csv(g3_out / "tables/fig5_geometry.csv").set_index("config")
    names = list(AUGS)
    expected = scipy_stats.spearmanr(ratios.loc[names, "geo_distance_ratio"],
                                     gains.loc[names, "gain"])
    correlation = pd.read_csv(g3_out / "tables/sweet_spot_spearman.csv").iloc[0]
    assert correlation["n"] == len(names)
    assert correlation["rho"] == pytest.approx(expected.statistic)
    assert correlation["p"] == pytest.approx(expected.pvalue)
    assert f"rho = {expected.statistic:.3f}" in text

    table = pd.read_csv(g3_out / "tables/sweet_spot.csv").set_index("config")
    assert table.loc[names, "g1_gain"].to_numpy() == pytest.approx(
        gains.loc[names, "gain"].to_numpy())
    assert table.loc[names, "g1_gain_ci"].to_numpy() == pytest.approx(
        gains.loc[names, "ci"].to_numpy())
    assert (table["g1_folds"] == 3).all() and (table["g3_folds"] == 2).all()
    assert (g3_out / "figures/sweet_spot.png").stat().st_size > 0


def test_without_gains_from_the_report_is_as_before_and_can_gain_the_section_later(
        tmp_path, capsys):
    run_g1(tmp_path / "g1")
    g3_out = tmp_path / "g3"
    argv = g3_argv(g3_out)
    assert cli.main(FAKE_G3, argv) == 0
    assert section_titles((g3_out / "report.md").read_text()) == [
        "Fig. 5 - test samples among training anchors", "Fig. 6 - original vs augmented latents"]
    assert not (g3_out / "tables/sweet_spot.csv").exists()
    # The option only adds a report section: the G3 campaign in OUT accepts it afterwards.
    assert cli.main(FAKE_G3, [*argv, "--report-only", "--gains-from", str(tmp_path / "g1")]) == 0
    assert "Sweet spot" in (g3_out / "report.md").read_text()


def test_fewer_than_three_shared_augmentations_give_no_correlation(tmp_path, capsys):
    run_g1(tmp_path / "g1", augs=("translation", "wrap"))
    g3_out = tmp_path / "g3"
    argv = g3_argv(g3_out, augs=("translation", "wrap", "permutation"),
                   extra=["--gains-from", str(tmp_path / "g1")])
    assert cli.main(FAKE_G3, argv) == 0
    text = (g3_out / "report.md").read_text()
    assert "Only 2 augmentation(s) have both" in text and "rho =" not in text
    table = pd.read_csv(g3_out / "tables/sweet_spot.csv").set_index("config")
    assert np.isnan(table.loc["permutation", "g1_gain"])
    assert table.loc["permutation", "g1_folds"] == 0
