"""Campaign grids G1-G4 and their reports, with the fake run function (no training)."""

import argparse
import dataclasses

import numpy as np
import pandas as pd
import pytest

from experiments import cli, g1, g2, g3, g4, report
from experiments.campaign import plan, run_campaign
from experiments.execution import RunRecord
from experiments.grid import CampaignError, expand_runs
from jtcaug import aug
from jtcaug.train import TrainConfig

from .fakes import CountingRunFn, fake_output, fake_unit_fn

DATASET = {"dataset": "synthetic", "scale": 0.01}


def campaign_args(**overrides) -> argparse.Namespace:
    defaults = dict(
        folds=4, seed=0, max_epochs=2, batch_size=None, magnitude_folds=3, augs=aug.NAMES,
        sampler_folds=3,
        top3=None, top3_from=None, tsne_augs=("translation", "horizontal_flip"),
        tsne_samples=20, anchor_copies=2, neighbours=3,
    )
    defaults.update(overrides)
    return argparse.Namespace(**defaults)


def fake_campaign(module, out, args, run_fn=None):
    campaign = dataclasses.replace(module.CAMPAIGN, make_unit_fn=fake_unit_fn(run_fn))
    the_plan = plan(campaign, args, DATASET, "quick")
    summary, path = run_campaign(campaign, args, out, the_plan, progress=False)
    return the_plan, summary, path


def assert_every_config_trains(grid):
    for config in grid:
        TrainConfig(**config.train, seed=0).validate()


# ---------------------------------------------------------------------------------- grids


def test_g1_grid_baseline_singles_and_magnitude_study():
    grid = g1.build_grid(campaign_args(folds=80, magnitude_folds=10))
    by_group = {g: [c for c in grid if c.group == g] for g in ("baseline", "single", "magnitude")}
    assert [c.name for c in by_group["single"]] == list(aug.NAMES)
    assert by_group["baseline"][0].train == {"aug": "none", "policy": "none", "alpha": None}
    assert all(c.train["policy"] == "inject:1" and c.train["alpha"] is None
               for c in by_group["single"])
    assert {c.train["aug"] for c in by_group["magnitude"]} == set(g1.MAGNITUDE_AUGS)
    assert all(c.train["alpha"] == 0.5 and c.max_folds == 10 for c in by_group["magnitude"])
    assert len(expand_runs(grid, 80, 0, None)) == 19 * 80 + 6 * 10
    assert_every_config_trains(grid)
    assert len(g1.build_grid(campaign_args(magnitude_folds=0))) == 19


def test_g2_grid_policies_and_sampler():
    grid = g2.build_grid(campaign_args(augs=g2.G2_AUGS))
    policies = {c.name: c.train["policy"] for c in grid}
    assert len(grid) == 1 + 5 * 8 + 2
    assert policies["wrap_replace0.3"] == "replace:0.3"
    assert policies["permutation_inject8"] == "inject:8"
    assert policies["constant_wrapup_preaugment10"] == "preaugment:10"
    sampler = [c for c in grid if c.group == "sampler"]
    assert [c.name for c in sampler] == ["none_cw", "translation_inject1_cw"]
    assert all(c.train["class_weighted"] and c.max_folds == 3 for c in sampler)
    assert_every_config_trains(grid)
    # Without translation in the policy study, the sampler study brings its own pair.
    names = [c.name for c in g2.build_grid(campaign_args(augs=("wrap",)))]
    assert "translation_inject1" in names and "translation_inject1_cw" in names


def test_g4_grid_pool_and_combinations():
    grid = g4.build_grid(campaign_args())
    hows = {c.name: c.train["aug"] for c in grid}
    assert hows["ensemble"] == "ensemble[translation,wrap,permutation]"
    assert hows["masked_stack_p0.7"] == "masked_stack:0.7[translation,wrap,permutation]"
    assert [c.name for c in grid if c.group == "single"] == list(g4.DEFAULT_TOP3)
    assert len(grid) == 1 + 3 + 5
    assert_every_config_trains(grid)
    custom = g4.build_grid(campaign_args(top3=("wrap", "spike_noise", "dup_rto")))
    assert {c.train["aug"] for c in custom if c.name == "random_stack"} == {
        "random_stack[wrap,spike_noise,dup_rto]"}
    with pytest.raises(ValueError, match="cutmix"):
        g4.build_grid(campaign_args(top3=("wrap", "cutmix")))


def test_g3_grid_trains_like_g1():
    grid = g3.build_grid(campaign_args(augs=aug.NAMES))
    assert [c.name for c in grid] == list(aug.NAMES)
    assert all(c.train["policy"] == "inject:1" for c in grid)
    with pytest.raises(ValueError, match="--neighbours must be >= 1"):
        g3.build_grid(campaign_args(augs=aug.NAMES, neighbours=0))


@pytest.mark.parametrize("parse", [cli.augmentation_list, g4._aug_pool])
def test_unknown_augmentation_names_are_refused(parse):
    with pytest.raises(argparse.ArgumentTypeError, match="unknown augmentation.*'?nope"):
        parse("translation,nope")
    with pytest.raises(argparse.ArgumentTypeError, match="repeat"):
        parse("translation,wrap,translation")


def write_fake_g1(out, dataset, gains, folds=3):
    """A finished G1 in ``out`` (through the result store) whose augmentations beat the
    baseline by exactly ``gains`` (weighted F1) on every fold."""

    def run_fn(spec):
        f1 = 0.7 + 0.01 * spec.fold + gains.get(spec.config.name, 0.0)
        return RunRecord(record={"metrics": {"weighted_f1": f1}, "epochs_run": 3,
                                 "best_epoch": 2, "n_params": 1, "wall_time_s": 0.0})

    args = campaign_args(folds=folds, augs=tuple(gains), magnitude_folds=0)
    campaign = dataclasses.replace(g1.CAMPAIGN, make_unit_fn=fake_unit_fn(run_fn))
    run_campaign(campaign, args, out, plan(campaign, args, dataset, "quick"),
                     progress=False)


def test_g4_top3_from_a_finished_g1(tmp_path):
    gains = {"wrap": 0.01, "cutmix": 0.06, "dup_rto": 0.03, "perm_rto": 0.04, "spike_noise": 0.0,
             "window_mask": 0.05}
    write_fake_g1(tmp_path / "g1", DATASET, gains)
    # cutmix gains most but cannot join a pool.
    assert g4.top3_from_g1(tmp_path / "g1", DATASET) == ("window_mask", "perm_rto", "dup_rto")
    with pytest.raises(CampaignError, match="G1 ran on .* this campaign on"):
        g4.top3_from_g1(tmp_path / "g1", {"dataset": "mirage19"})
    with pytest.raises(CampaignError, match="--top3-from .*missing: no such directory"):
        g4.top3_from_g1(tmp_path / "missing", DATASET)


# ---------------------------------------------------------------------------------- reports


def test_g1_report_has_every_artefact_and_correct_gains(tmp_path):
    the_plan, summary, path = fake_campaign(g1, tmp_path, campaign_args())
    assert summary.completed == 19 * 4 + 6 * 3
    text = path.read_text()
    for artefact in ("tables/table5_gains.csv", "tables/table5_gains.tex",
                     "figures/fig3_critical_distance.png", "figures/fig8_gain_vs_epochs.png",
                     "tables/magnitude_wilcoxon.csv",
                     "tables/fig3_critical_distance_nemenyi_p.csv"):
        assert artefact in text
        assert (tmp_path / artefact).stat().st_size > 0
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert len(results) == summary.completed and results["run_id"].is_unique
    table5 = pd.read_csv(tmp_path / "tables/table5_gains.csv").set_index("config")
    f1 = results.pivot(index="fold", columns="config", values="weighted_f1")
    expected = 100 * (f1["translation"] - f1["none"])
    assert table5.loc["translation", "gain"] == pytest.approx(expected.mean())
    assert table5.loc["translation", "n"] == 4
    assert table5.loc["none", "score"] == pytest.approx(100 * f1["none"].mean())
    assert (table5["mark"] == "best-3").sum() == 3 and (table5["mark"] == "worst-3").sum() == 3
    magnitude = pd.read_csv(tmp_path / "tables/magnitude_wilcoxon.csv")
    assert magnitude["augmentation"].tolist()[-1] == "all (grouped)"
    assert magnitude["n"].tolist() == [3] * 6 + [18]
    assert "Not available" not in text


def test_g2_report_policies_and_sampler_split(tmp_path):
    args = campaign_args(augs=("translation", "sine_wrapup"))
    _, summary, path = fake_campaign(g2, tmp_path, args)
    text = path.read_text()
    assert "figures/fig4_policies.png" in text and (tmp_path / "figures/fig4_policies.png").exists()
    table6 = pd.read_csv(tmp_path / "tables/table6_sampler.csv")
    assert table6["class_weighted"].tolist() == ["no", "yes", "diff"] * 2
    diff = table6.iloc[2]
    assert diff["majority_recall"] == pytest.approx(
        table6.iloc[1]["majority_recall"] - table6.iloc[0]["majority_recall"])
    assert "big, large, mid" in text and "(small, tiny)" in text
    policies = pd.read_csv(tmp_path / "tables/fig4_policies.csv")
    assert len(policies) == 2 * 8 and (policies["n"] == 4).all()


def test_g4_report_table7(tmp_path):
    _, _, path = fake_campaign(g4, tmp_path, campaign_args())
    table7 = pd.read_csv(tmp_path / "tables/table7_combinations.csv")
    assert table7["config"].tolist() == [
        "none", "translation", "wrap", "permutation", "ensemble", "random_stack",
        "masked_stack_p0.3", "masked_stack_p0.5", "masked_stack_p0.7"]
    assert (tmp_path / "figures/g4_critical_distance.png").exists()
    assert "Table 7" in path.read_text()


def fake_geometry_run(spec):
    out = fake_output(spec)
    rng = np.random.default_rng(spec.fold)
    quality = out.record["metrics"]["weighted_f1"]
    out.record["extra"] = {
        "geo_same_label_all": 10 * quality, "geo_similarity_all": 0.9 + quality / 20,
        "geo_same_label_aug": 9 * quality, "geo_similarity_aug": 0.85 + quality / 20,
        "geo_distance_ratio": 1.0 + rng.normal(0, 0.05), "geo_n_ratio": 50, "geo_k": 10,
    }
    arrays = None
    if spec.fold == 0 and spec.config.name in ("translation", "horizontal_flip"):
        arrays = {"tsne": rng.normal(size=(40, 2)),
                  "tsne_is_augmented": np.repeat([False, True], 20),
                  "distances": rng.gamma(2.0, 1.0, size=100)}
    return RunRecord(record=out.record, arrays=arrays)


def test_g3_report_geometry_tsne_and_kde(tmp_path):
    args = campaign_args(augs=("translation", "wrap", "horizontal_flip"), folds=2)
    _, summary, path = fake_campaign(g3, tmp_path, args, run_fn=fake_geometry_run)
    assert summary.completed == 6
    text = path.read_text()
    for fig in ("fig5_neighbours", "fig5_metric_bars", "fig6_tsne", "fig6_kde"):
        assert f"figures/{fig}.png" in text and (tmp_path / f"figures/{fig}.png").exists()
    geometry = pd.read_csv(tmp_path / "tables/fig5_geometry.csv").set_index("config")
    results = pd.read_parquet(tmp_path / "results.parquet")
    expected = results[results.config == "wrap"]["geo_same_label_all"].mean()
    assert geometry.loc["wrap", "geo_same_label_all"] == pytest.approx(expected)
    distances = pd.read_csv(tmp_path / "tables/fig6_distances.csv")
    assert distances["config"].tolist() == ["translation", "horizontal_flip"]


def test_partial_campaign_report_says_what_is_missing(tmp_path):
    args = campaign_args()
    with pytest.raises(KeyboardInterrupt):
        fake_campaign(g1, tmp_path, args, run_fn=CountingRunFn(stop_after=1))
    the_plan = plan(g1.CAMPAIGN, args, DATASET, "quick")
    path = report.write_campaign_report(tmp_path, g1.CAMPAIGN, the_plan.manifest,
                                        the_plan.runs)
    text = path.read_text()
    assert "runs finished: 1 of 94" in text and "partial campaign" in text
    assert "Not available yet: no finished runs of" in text


def test_shards_split_the_grid_and_together_complete_it(tmp_path):
    args = campaign_args(augs=("translation", "wrap"), magnitude_folds=0, folds=3)
    campaign = dataclasses.replace(g1.CAMPAIGN, make_unit_fn=fake_unit_fn())
    the_plan = plan(campaign, args, DATASET, "quick")
    first, _ = run_campaign(campaign, args, tmp_path, the_plan, shard=(0, 2),
                                progress=False)
    second, path = run_campaign(campaign, args, tmp_path, the_plan, shard=(1, 2),
                                    progress=False)
    assert (first.completed, second.completed) == (5, 4)
    assert "runs finished: 9 of 9" in path.read_text()
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 9
