"""G6 (automatic augmentation): options, the search's generations, resume and the report."""

import argparse
import dataclasses
import zlib

import numpy as np
import pandas as pd
import pytest

from experiments import cli, g6, policy_search
from experiments.execution import per_run
from experiments.grid import CampaignError, RunSpec
from jtcaug import aug
from jtcaug.train import TrainConfig

from .fakes import fake_output

ARGV = ["--dataset", "synthetic", "--scale", "0.01", "--folds", "3", "--search-folds", "2",
        "--population", "3", "--generations", "3", "--elite", "2", "--max-epochs", "1",
        "--no-progress", "--compile-cache", "none"]


def g6_args(**overrides) -> argparse.Namespace:
    defaults = dict(pool=None, population=4, generations=3, elite=2, search_folds=2,
                    concentration=20.0, folds=3, seed=0)
    defaults.update(overrides)
    return argparse.Namespace(**defaults)


class SearchRunFn:
    """Fake runs whose validation F1 grows with the weight on translation (known optimum)."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[str] = []
        self.stop_after = stop_after

    def __call__(self, spec: RunSpec):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(spec.run_id)
        out = fake_output(spec)
        how = spec.config.train["aug"]
        lift = 0.2 * aug.member_weights(how)[0] if how.startswith("weighted") else 0.0
        noise = (zlib.crc32(spec.run_id.encode()) % 100) / 1e4
        out.record["extra"] = {policy_search.VAL_F1: 0.6 + lift + noise}
        return out


def fake_campaign(run_fn):
    return dataclasses.replace(g6.CAMPAIGN, make_unit_fn=lambda args, n: per_run(run_fn))


# ---------------------------------------------------------------------------------- grid


def test_first_generation_is_uniform_then_seeded_dirichlet_draws():
    grid = g6.build_grid(g6_args())
    assert [c.name for c in grid] == ["g0_c00", "g0_c01", "g0_c02", "g0_c03"]
    weights = [np.asarray(aug.member_weights(c.train["aug"])) for c in grid]
    np.testing.assert_allclose(weights[0], [1 / 3] * 3, atol=1e-6)
    assert all(abs(w.sum() - 1) < 1e-5 and (w >= 0).all() for w in weights)
    assert len({tuple(w) for w in weights}) == 4
    for c in grid:
        assert c.max_folds == 2 and c.unit_group == "g6_generation0"
        assert aug.parse_how(c.train["aug"]).names == ("translation", "wrap", "permutation")
        TrainConfig(**c.train, seed=0).validate()
    assert [c.to_dict() for c in g6.build_grid(g6_args())] == [c.to_dict() for c in grid]
    assert [c.train for c in g6.build_grid(g6_args(seed=1))][1:] != [c.train for c in grid][1:]


@pytest.mark.parametrize("overrides, message", [
    (dict(population=0), "--population must be >= 1, got 0"),
    (dict(population=-2), "--population must be >= 1, got -2"),
    (dict(generations=0), "--generations must be >= 1"),
    (dict(elite=5), "--elite 5 exceeds --population 4"),
    (dict(search_folds=4), "--search-folds 4 exceeds --folds 3"),
])
def test_bad_search_options_are_refused(overrides, message):
    with pytest.raises(CampaignError, match=message):
        g6.build_grid(g6_args(**overrides))


def test_the_default_elite_fits_the_population():
    args = g6_args(population=1, elite=None)
    assert len(g6.build_grid(args)) == 1 and args.elite == 1
    args = g6_args(population=5, elite=None)
    g6.build_grid(args)
    assert args.elite == g6.DEFAULT_ELITE


def test_population_zero_is_one_line_error_on_the_command_line(tmp_path, capsys):
    code = cli.main(fake_campaign(SearchRunFn()),
                    [*ARGV, "--population", "0", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: --population must be >= 1, got 0"
    assert not (tmp_path / "out").exists()


def _results(grid, run_fn, folds=2):
    rows = []
    for c in grid:
        for fold in range(folds):
            spec = RunSpec(c, fold, 0, 1)
            rows.append(dict(config=c.name, fold=fold, weighted_f1=0.5,
                             **run_fn(spec).record["extra"]))
    return pd.DataFrame(rows)


def test_next_generation_varies_the_elites_and_the_last_one_leads_to_the_final_stage():
    args = g6_args()
    grid = g6.build_grid(args)
    assert g6.next_stage(args, grid, _results(grid[:3], SearchRunFn())) == []
    second = g6.next_stage(args, grid, _results(grid, SearchRunFn()))
    assert [c.name for c in second] == ["g1_c00", "g1_c01", "g1_c02", "g1_c03"]
    assert second == g6.next_stage(args, grid, _results(grid, SearchRunFn()))
    # Children lie around their parents (child j of elite j mod E).
    scores = policy_search.ranked(
        policy_search.candidate_scores(grid, _results(grid, SearchRunFn()), 2))
    elites = [np.asarray(aug.member_weights(h)) for h in scores["aug"].head(2)]
    for j, child in enumerate(second):
        w = np.asarray(aug.member_weights(child.train["aug"]))
        assert np.abs(w - elites[j % 2]).max() < 0.45
    grid += second
    third = g6.next_stage(args, grid, _results(grid, SearchRunFn()))
    grid += third
    final = g6.next_stage(args, grid, _results(grid, SearchRunFn()))
    assert [c.name for c in final] == [
        "none", "g6_best", "ensemble", "random_stack", "masked_stack_p0.3",
        "masked_stack_p0.5", "masked_stack_p0.7", "trivial"]
    best = policy_search.ranked(
        policy_search.candidate_scores(grid, _results(grid, SearchRunFn()), 2)).iloc[0]
    assert final[1].train["aug"] == best["aug"]
    assert all(c.max_folds is None for c in final)
    assert g6.next_stage(args, grid + final, _results(grid, SearchRunFn())) == []


# ---------------------------------------------------------------------------------- campaign


def test_campaign_runs_every_stage_reports_and_a_rerun_trains_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    run_fn = SearchRunFn()
    assert cli.main(fake_campaign(run_fn), [*ARGV, "--out", str(out)]) == 0
    # 3 generations x 3 candidates x 2 search folds, then 8 final configs x 3 folds.
    assert len(run_fn.calls) == 18 + 24
    assert "runs: 42/42 finished (0 already there, 42 run now" in capsys.readouterr().out
    text = (out / "report.md").read_text()
    assert "Not available" not in text
    for section in ("## Search", "## Best policy", "## Best policy vs G4's combinations"):
        assert section in text
    for artefact in ("tables/g6_generations.csv", "tables/g6_candidates.csv",
                     "tables/g6_best_weights.csv", "tables/g6_final.csv", "tables/g6_gains.csv",
                     "figures/g6_search.png", "figures/g6_best_weights.png"):
        assert (out / artefact).stat().st_size > 0, artefact
    generations = pd.read_csv(out / "tables/g6_generations.csv")
    assert list(generations["generation"]) == [0, 1, 2]
    assert generations["best_so_far"].is_monotonic_increasing
    final = pd.read_csv(out / "tables/g6_final.csv")
    assert set(final["n"]) == {3} and final["p"].notna().sum() == 7

    again = SearchRunFn()
    assert cli.main(fake_campaign(again), [*ARGV, "--out", str(out)]) == 0
    assert again.calls == []
    assert "42 already there, 0 run now" in capsys.readouterr().out
    assert cli.main(g6.CAMPAIGN, [*ARGV, "--out", str(out), "--report-only"]) == 0
    assert "runs: 42/42 finished" in capsys.readouterr().out


def test_a_killed_search_resumes_to_the_same_campaign(tmp_path):
    whole = tmp_path / "whole"
    assert cli.main(fake_campaign(SearchRunFn()), [*ARGV, "--out", str(whole)]) == 0
    resumed = tmp_path / "resumed"
    # Killed inside the second generation.
    assert cli.main(fake_campaign(SearchRunFn(stop_after=8)),
                    [*ARGV, "--out", str(resumed)]) == 130
    assert len(list((resumed / "runs").glob("*.json"))) == 8
    rest = SearchRunFn()
    assert cli.main(fake_campaign(rest), [*ARGV, "--out", str(resumed)]) == 0
    assert len(rest.calls) == 42 - 8
    columns = ["run_id", "config", "aug", "fold", "weighted_f1", policy_search.VAL_F1]
    pd.testing.assert_frame_equal(pd.read_parquet(whole / "results.parquet")[columns],
                                  pd.read_parquet(resumed / "results.parquet")[columns])


def test_the_search_is_deterministic_given_the_seed(tmp_path):
    def searched(seed, name):
        out = tmp_path / name
        argv = [*ARGV, "--seed", str(seed), "--out", str(out)]
        assert cli.main(fake_campaign(SearchRunFn()), argv) == 0
        frame = pd.read_parquet(out / "results.parquet")
        return frame.drop_duplicates("config").set_index("config")["aug"]

    first, again, other = searched(0, "a"), searched(0, "b"), searched(1, "c")
    pd.testing.assert_series_equal(first, again)
    assert not first.equals(other)


def test_manifest_pins_the_search_options(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(fake_campaign(SearchRunFn()), [*ARGV, "--out", str(out)]) == 0
    code = cli.main(fake_campaign(SearchRunFn()), [*ARGV, "--elite", "1", "--out", str(out)])
    assert code == 2 and "different configuration" in capsys.readouterr().err


def test_a_generation_forms_units_of_several_candidates_on_a_fold():
    from experiments.grid import expand_runs, make_units

    grid = g6.build_grid(g6_args())
    units = make_units(expand_runs(grid, 3, 0, 1), 2)
    assert [[r.run_id for r in u.runs] for u in units[:3]] == [
        ["g0_c00__fold000", "g0_c01__fold000"], ["g0_c02__fold000", "g0_c03__fold000"],
        ["g0_c00__fold001", "g0_c01__fold001"]]
    assert len(units) == 4 and len({u.unit_id for u in units}) == 4
    # Without a unit group a configuration's dict (manifests, result files) is as before.
    final = g6.final_configs(g6_args(), "weighted[translation:1,wrap:1,permutation:1]")
    assert "unit_group" not in final[0].to_dict()
    assert [len(u.runs) for u in make_units(expand_runs(final[:2], 3, 0, 1), 2)] == [2, 2, 1, 1]


@pytest.mark.slow
def test_tiny_real_g6_campaign_scores_validation_and_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "synthetic", "--scale", "0.02", "--folds", "2", "--search-folds", "1",
            "--population", "2", "--generations", "2", "--elite", "1", "--max-epochs", "1",
            "--batch-size", "128", "--no-progress", "--compile-cache", "none",
            "--out", str(out)]
    assert cli.main(g6.CAMPAIGN, argv) == 0
    assert "runs: 20/20 finished" in capsys.readouterr().out
    results = pd.read_parquet(out / "results.parquet")
    assert results[policy_search.VAL_F1].between(0, 1).all() and len(results) == 20
    text = (out / "report.md").read_text()
    assert "Not available" not in text and "`weighted[translation:" in text
    assert cli.main(g6.CAMPAIGN, argv) == 0
    assert "20 already there, 0 run now" in capsys.readouterr().out
