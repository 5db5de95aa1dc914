"""Options that read a finished G1 (G3 --gains-from, G4 --top3-from, G5 --top-from) refuse a
directory that is missing, not a G1, unfinished or of another dataset: one line, exit 2, and
nothing written to the campaign's own --out."""

import dataclasses
import json
import shutil

import pytest

from experiments import cli, finished, g1, g3, g4, g5
from experiments.grid import CampaignError

from .fakes import fake_unit_fn
from .test_campaigns import write_fake_g1

COMMON = ["--dataset", "synthetic", "--no-progress", "--compile-cache", "none",
          "--max-epochs", "2"]
READERS = [(g3, "--gains-from"), (g4, "--top3-from"), (g5, "--top-from")]


@pytest.fixture(scope="module")
def finished_g1(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "g1"
    fake = dataclasses.replace(g1.CAMPAIGN, make_unit_fn=fake_unit_fn())
    argv = [*COMMON, "--folds", "2", "--augs", "translation,wrap,permutation",
            "--magnitude-folds", "0", "--out", str(out)]
    assert cli.main(fake, argv) == 0
    return out


def refused(module, option, source, out, capsys, extra=()) -> str:
    """The one-line error of ``module`` given ``option source``; checks nothing was written."""
    campaign = dataclasses.replace(module.CAMPAIGN, make_unit_fn=fake_unit_fn())
    capsys.readouterr()
    argv = [*COMMON, "--folds", "2", option, str(source), *extra, "--out", str(out)]
    assert cli.main(campaign, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} {source}: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    return err


@pytest.mark.parametrize("module, option", READERS)
def test_missing_directory(module, option, tmp_path, capsys):
    err = refused(module, option, tmp_path / "nope", tmp_path / "out", capsys)
    assert "no such directory" in err


@pytest.mark.parametrize("module, option", READERS)
def test_not_a_g1_campaign(module, option, tmp_path, capsys, finished_g1):
    (tmp_path / "empty").mkdir()
    err = refused(module, option, tmp_path / "empty", tmp_path / "out", capsys)
    assert "not a campaign directory (manifest.json missing" in err
    other = tmp_path / "other"
    shutil.copytree(finished_g1, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps(manifest | {"campaign": "g2"}))
    err = refused(module, option, other, tmp_path / "out", capsys)
    assert "holds campaign 'g2', not 'g1'" in err


@pytest.mark.parametrize("module, option", READERS)
def test_unfinished_g1_says_how_many_runs_are_missing(module, option, tmp_path, capsys,
                                                     finished_g1):
    partial = tmp_path / "partial"
    shutil.copytree(finished_g1, partial)
    (partial / "runs/wrap__fold001.json").unlink()
    (partial / "runs/none__fold000.json").write_text("{}")  # damaged counts as missing
    err = refused(module, option, partial, tmp_path / "out", capsys)
    assert "the G1 campaign is unfinished, 2 of 8 runs missing (none: 1, wrap: 1)" in err


@pytest.mark.parametrize("module, option", READERS)
def test_different_dataset_names_both(module, option, tmp_path, capsys, finished_g1):
    err = refused(module, option, finished_g1, tmp_path / "out", capsys,
                  extra=["--scale", "0.5"])
    assert "G1 ran on dataset synthetic (scale=1.0," in err
    assert "this campaign on synthetic (scale=0.5," in err


def test_a_finished_g1_reads_as_its_run_files(finished_g1):
    dataset = json.loads((finished_g1 / "manifest.json").read_text())["dataset"]
    g1_run = finished.read_finished_g1(finished_g1, "--gains-from", dataset)
    assert len(g1_run.results) == 8
    gains = finished.g1_single_gains(g1_run)
    assert gains["aug"].tolist() == ["translation", "wrap", "permutation"]
    f1 = g1_run.results.pivot(index="fold", columns="config", values="weighted_f1")
    expected = (100 * (f1["wrap"] - f1["none"])).mean()
    assert gains.set_index("aug").loc["wrap", "gain"] == pytest.approx(expected)
    assert (gains["n"] == 2).all()


def test_dataset_options_compare_as_the_manifest_records_them(tmp_path):
    # A tuple option is a list once in manifest.json; it is still the same dataset.
    dataset = {"dataset": "synthetic", "splits": (0.8, 0.1, 0.1)}
    write_fake_g1(tmp_path / "g1", dataset, {"wrap": 0.01, "translation": 0.02})
    g1_run = finished.read_finished_g1(tmp_path / "g1", "--gains-from", dataset)
    assert finished.g1_single_gains(g1_run)["gain"].tolist() == pytest.approx([2.0, 1.0])
    with pytest.raises(CampaignError, match=r"splits=\[0.8, 0.1, 0.1\]\), this campaign on "
                       r"synthetic \(splits=\(0.8, 0.2\)\)"):
        finished.read_finished_g1(tmp_path / "g1", "--gains-from",
                                  dataset | {"splits": (0.8, 0.2)})


@pytest.mark.parametrize("module, option", READERS)
def test_another_backbone_names_both(module, option, tmp_path, capsys, finished_g1):
    err = refused(module, option, finished_g1, tmp_path / "out", capsys,
                  extra=["--model", "transformer"])
    assert "G1 trained model resnet1d, this campaign transformer (--model)" in err


def test_a_g1_of_another_backbone_reads_with_that_backbone(tmp_path):
    out = tmp_path / "g1"
    fake = dataclasses.replace(g1.CAMPAIGN, make_unit_fn=fake_unit_fn())
    argv = [*COMMON, "--folds", "2", "--augs", "translation,wrap", "--magnitude-folds", "0",
            "--model", "transformer", "--out", str(out)]
    assert cli.main(fake, argv) == 0
    dataset = json.loads((out / "manifest.json").read_text())["dataset"]
    g1_run = finished.read_finished_g1(out, "--gains-from", dataset, "transformer")
    assert len(g1_run.results) == 6
    with pytest.raises(CampaignError, match="G1 trained model transformer, this campaign "
                       "resnet1d"):
        finished.read_finished_g1(out, "--gains-from", dataset)
