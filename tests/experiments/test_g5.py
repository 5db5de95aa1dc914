"""G5 (data size): grid, nested stratified subsets, matching statistics and the report."""

import argparse
import dataclasses

import numpy as np
import pandas as pd
import pytest

from experiments import cli, g5
from experiments.campaign import plan, run_campaign
from experiments.execution import RunRecord, per_run
from experiments.grid import CampaignError, ConfigSpec, RunSpec, Unit
from jtcaug.train import TrainConfig

from .fakes import CountingRunFn, fake_output, fake_unit_fn
from .test_campaigns import DATASET, write_fake_g1


def g5_args(**overrides) -> argparse.Namespace:
    defaults = dict(folds=4, seed=0, max_epochs=2, batch_size=None, fractions=(0.01, 0.1, 1.0),
                    min_per_class=None, augs=None, top_from=None, top_n=1,
                    dataset_options=DATASET)
    defaults.update(overrides)
    return argparse.Namespace(**defaults)


# ---------------------------------------------------------------------------------- grid


def test_grid_is_fractions_times_baseline_and_inject_levels():
    grid = g5.build_grid(g5_args())
    assert [c.name for c in grid[:4]] == [
        "f0.01_none", "f0.01_translation_inject1", "f0.01_translation_inject4",
        "f0.01_translation_inject8"]
    assert len(grid) == 3 * 4
    assert {g5.parse_config_name(c.name)[0] for c in grid} == {0.01, 0.1, 1.0}
    policies = {c.name: c.train["policy"] for c in grid}
    assert policies["f1_none"] == "none" and policies["f0.1_translation_inject8"] == "inject:8"
    for config in grid:
        TrainConfig(**config.train, seed=0).validate()
    two = g5.build_grid(g5_args(augs=("wrap", "permutation"), fractions=(0.5, 1.0)))
    assert len(two) == 2 * (1 + 2 * 3) and "f0.5_permutation_inject4" in {c.name for c in two}


def test_top_from_takes_the_best_g1_augmentations(tmp_path):
    write_fake_g1(tmp_path / "g1", DATASET, {"wrap": 0.01, "dup_rto": 0.03, "perm_rto": 0.04})
    args = g5_args(top_from=tmp_path / "g1", top_n=2)
    assert g5.augmentations(args) == ("perm_rto", "dup_rto")
    assert "f0.01_dup_rto_inject8" in {c.name for c in g5.build_grid(args)}
    with pytest.raises(CampaignError, match=r"--top-from .* G1 ran on .* this campaign on"):
        g5.build_grid(g5_args(top_from=tmp_path / "g1", dataset_options={"dataset": "x"}))
    with pytest.raises(CampaignError, match="--top-from .*benchmarked 3 augmentation.*4 needed"):
        g5.build_grid(g5_args(top_from=tmp_path / "g1", top_n=4))
    with pytest.raises(CampaignError, match="--top-from .*missing: no such directory"):
        g5.build_grid(g5_args(top_from=tmp_path / "missing"))


@pytest.mark.parametrize("text, message", [
    ("0,0.1", "outside"), ("0.5,1.5", "outside"), ("-0.1", "outside"), ("a", "not a number"),
    (",", "expected"),
])
def test_bad_fractions_are_refused(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        g5.parse_fractions(text)
    assert g5.parse_fractions("1, 0.1,0.01,0.1") == (0.01, 0.1, 1.0)


def test_command_line_refuses_bad_fractions_and_unknown_top_from(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(g5.CAMPAIGN, ["--fractions", "0.1,2", "--dry-run"])
    assert "fraction 2 lies outside (0, 1]" in capsys.readouterr().err
    code = cli.main(g5.CAMPAIGN, ["--top-from", str(tmp_path / "nope"), "--dry-run",
                                  "--out", str(tmp_path / "out")])
    assert code == 2 and "--top-from" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- subsets


LABELS = np.repeat(np.arange(3), [500, 200, 60])


def test_subsets_are_nested_and_stratified():
    seed = g5.subset_seed(0, 3)
    small = g5.nested_subset(LABELS, 0.05, seed)
    large = g5.nested_subset(LABELS, 0.5, seed)
    assert set(small) < set(large)
    assert np.bincount(LABELS[small]).tolist() == [25, 10, 3]
    assert np.bincount(LABELS[large]).tolist() == [250, 100, 30]
    assert g5.nested_subset(LABELS, 1.0, seed).tolist() == list(range(LABELS.size))


def test_subset_is_fixed_per_fold_and_differs_across_folds():
    same = [g5.nested_subset(LABELS, 0.1, g5.subset_seed(0, 2)) for _ in range(2)]
    assert np.array_equal(*same)
    other = g5.nested_subset(LABELS, 0.1, g5.subset_seed(0, 3))
    assert not np.array_equal(same[0], other)
    assert not np.array_equal(same[0], g5.nested_subset(LABELS, 0.1, g5.subset_seed(1, 2)))


def test_too_small_a_class_is_named_unless_min_per_class():
    names = ("web", "video", "chat")
    with pytest.raises(CampaignError, match="fraction 0.01 leaves class chat with 1 training"):
        g5.nested_subset(LABELS, 0.01, 0, class_names=names)
    kept = g5.nested_subset(LABELS, 0.01, 0, min_per_class=4, class_names=names)
    assert np.bincount(LABELS[kept]).tolist() == [5, 4, 4]
    # Nesting holds with the floor too.
    assert set(kept) <= set(g5.nested_subset(LABELS, 0.1, 0, min_per_class=4))


@dataclasses.dataclass(frozen=True)
class FakeFold:
    x_train: np.ndarray
    y_train: np.ndarray
    idx_train: np.ndarray
    stats: object
    n_classes: int = 3
    iat_q99: float = 0.5
    class_names: tuple = ("web", "video", "chat")
    x_test: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((7, 4, 3)))


def fake_fold() -> FakeFold:
    rng = np.random.default_rng(0)
    x = rng.random((LABELS.size, 4, 3)).astype(np.float32)
    x[..., 1] = 1.0
    return FakeFold(x_train=x, y_train=LABELS, idx_train=np.arange(LABELS.size) + 1000,
                    stats=None)


def test_subsample_fold_cuts_training_only_and_recomputes_statistics():
    fold = fake_fold()
    cut = g5.subsample_fold(fold, 0.1, seed=5)
    keep = g5.nested_subset(LABELS, 0.1, 5)
    assert np.array_equal(cut.x_train, fold.x_train[keep])
    assert np.array_equal(cut.idx_train, keep + 1000)
    assert cut.x_test is fold.x_test
    from jtcaug.aug import Stats

    expected = Stats.from_training(fold.x_train[keep], LABELS[keep], 3, 0.5)
    assert np.allclose(np.asarray(cut.stats.sigma), np.asarray(expected.sigma))
    assert g5.subsample_fold(fold, 1.0, seed=5) is fold


def test_every_configuration_of_a_fold_trains_on_one_subset():
    class Source:
        def get(self, fold):
            return fake_fold()

    views = [g5.SubsetFolds(Source(), 0.1, campaign_seed=0, min_per_class=None)
             for _ in ("f0.1_none", "f0.1_translation_inject4")]
    assert np.array_equal(views[0].get(1).idx_train, views[1].get(1).idx_train)
    assert not np.array_equal(views[0].get(1).idx_train, views[0].get(2).idx_train)


# ---------------------------------------------------------------------------------- statistics


def test_compare_flags_only_significantly_worse():
    base = np.linspace(80, 90, 10)
    assert g5.compare(base - 2.0, base).significantly_worse
    assert g5.compare(base + 2.0, base).matches
    noisy = base + np.array([1, -1] * 5, float)
    assert g5.compare(noisy, base).matches
    # Five folds all worse cannot be significant two-sided: undecided, not a match.
    assert g5.compare(base[:5] - 2.0, base[:5]).matches is None


def test_match_table_and_smallest_matched():
    rows = []
    for fold in range(8):
        rows += [dict(config="f0.1_none", fold=fold, weighted_f1=0.70),
                 dict(config="f0.5_none", fold=fold, weighted_f1=0.78 + 0.001 * fold),
                 dict(config="f1_none", fold=fold, weighted_f1=0.90 + 0.001 * fold),
                 dict(config="f0.1_a_inject4", fold=fold,
                      weighted_f1=0.80 + 0.002 * (fold % 3))]
    results = pd.DataFrame(rows)
    table = g5.match_table(results, [0.1, 0.5, 1.0], ["a_inject4"])
    assert table[["fraction", "baseline_fraction"]].values.tolist() == [
        [0.1, 0.5], [0.1, 1.0], [0.5, 1.0]]
    assert table["matches"].tolist()[:2] == [True, False]
    assert table.iloc[2]["n"] == 0  # no f0.5_a_inject4 runs
    summary = g5.smallest_matched(table).set_index("fraction")
    assert summary.loc[0.1, "smallest_matched"] == 0.5
    assert np.isnan(summary.loc[0.5, "smallest_matched"])


# ---------------------------------------------------------------------------------- report


def fraction_run(spec: RunSpec) -> RunRecord:
    """A fake run whose accuracy grows with the fraction, and with augmentation."""
    fraction, setting = g5.parse_config_name(spec.config.name)
    shrunk = dataclasses.replace(spec.config, train=dict(spec.config.train, aug="none"))
    out = fake_output(dataclasses.replace(spec, config=shrunk))
    bonus = 0.1 * np.log10(fraction) + (0.05 if setting != g5.BASELINE else 0.0)
    out.record["metrics"]["weighted_f1"] += bonus
    return out


def test_report_on_fake_results(tmp_path):
    args = g5_args(folds=3)
    campaign = dataclasses.replace(g5.CAMPAIGN, make_unit_fn=lambda a, n: per_run(fraction_run))
    the_plan = plan(campaign, args, DATASET, "quick")
    summary, path = run_campaign(campaign, args, tmp_path, the_plan, progress=False)
    assert summary.completed == 12 * 3
    text = path.read_text()
    assert "Not available" not in text
    assert (tmp_path / "figures/g5_f1_vs_fraction.png").stat().st_size > 0
    curves = pd.read_csv(tmp_path / "tables/g5_f1_vs_fraction.csv")
    results = pd.read_parquet(tmp_path / "results.parquet")
    expected = 100 * results.loc[results["config"] == "f0.1_none", "weighted_f1"].mean()
    row = curves[(curves["setting"] == "none") & (curves["fraction"] == 0.1)]
    assert row["f1"].item() == pytest.approx(expected) and row["n"].item() == 3
    assert row["train_flows"].item() == sum(fake_output(the_plan.runs[0]).record[
        "class_counts_train"].values())
    assert "training flows (mean)" in text
    matches = pd.read_csv(tmp_path / "tables/g5_matches.csv")
    assert len(matches) == 3 * 2  # three augmented settings at 1% and 10%
    assert "cannot reach p < 0.05" in text  # three folds
    assert matches["smallest_matched"].isna().all()


def test_report_of_a_partial_campaign_says_what_is_missing(tmp_path):
    args = g5_args(folds=2, fractions=(0.5, 1.0))
    campaign = dataclasses.replace(g5.CAMPAIGN, make_unit_fn=fake_unit_fn(
        CountingRunFn(fail_configs=("f1_none",))))
    the_plan = plan(campaign, args, DATASET, "quick")
    _, path = run_campaign(campaign, args, tmp_path, the_plan, progress=False)
    assert "Not available yet" in path.read_text()


def test_unit_fn_trains_each_unit_on_its_fraction(monkeypatch):
    seen = {}

    class Source:
        def __init__(self, args, n_folds):
            pass

        def get(self, fold):
            return fake_fold()

    def fake_train_unit(folds, unit):
        seen[unit.config.name] = [folds.get(s.fold).y_train.size for s in unit.runs]
        return [ValueError("not trained") for _ in unit.runs]

    monkeypatch.setattr(g5, "FoldSource", Source)
    monkeypatch.setattr(g5, "train_unit", fake_train_unit)
    unit_fn = g5.make_unit_fn(g5_args(min_per_class=None), 2)
    for name in ("f0.1_none", "f1_none"):
        config = ConfigSpec(name, "baseline", {"aug": "none", "policy": "none"})
        unit_fn(Unit((RunSpec(config, 0, 0, 1), RunSpec(config, 1, 0, 1))))
    assert seen == {"f0.1_none": [76, 76], "f1_none": [760, 760]}


def test_command_line_names_the_class_a_fraction_empties(tmp_path, capsys):
    argv = ["--scale", "0.01", "--folds", "2", "--dry-run", "--out", str(tmp_path / "out")]
    assert cli.main(g5.CAMPAIGN, argv) == 2
    err = capsys.readouterr().err
    assert "fold 0: fraction 0.01 leaves class " in err and "--min-per-class 2" in err
    assert not (tmp_path / "out").exists()
