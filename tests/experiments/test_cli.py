"""The campaign command line: presets, bad input, refusal of a different configuration."""

import dataclasses
import json

import pytest

from experiments import cli, g1, g4

from .fakes import fake_unit_fn

FAKE_G1 = dataclasses.replace(g1.CAMPAIGN, make_unit_fn=fake_unit_fn())
COMMON = ["--dataset", "synthetic", "--no-progress", "--compile-cache", "none"]


def test_quick_preset_fills_defaults_and_records_them(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(FAKE_G1, [*COMMON, "--quick", "--augs", "translation,wrap",
                                 "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preset"] == "quick"
    assert manifest["folds"] == cli.QUICK_PRESET["folds"]
    assert manifest["max_epochs"] == cli.QUICK_PRESET["max_epochs"]
    assert manifest["batch_size"] == cli.QUICK_PRESET["batch_size"]
    assert manifest["dataset"]["scale"] == cli.QUICK_SYNTHETIC_SCALE
    assert "data_dir" not in manifest["dataset"] and "no_cache" not in manifest["dataset"]
    assert manifest["options"]["magnitude_folds"] == 1  # G1's own quick default
    printed = capsys.readouterr().out
    assert "runs: 8/8 finished" in printed and "report:" in printed
    assert (out / "report.md").is_file() and (out / "results.parquet").is_file()


def test_explicit_options_win_over_the_quick_preset(tmp_path):
    out = tmp_path / "out"
    argv = [*COMMON, "--quick", "--folds", "1", "--max-epochs", "3", "--scale", "0.5",
            "--batch-size", "64", "--augs", "wrap", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["folds"], manifest["max_epochs"], manifest["batch_size"]) == (1, 3, 64)
    payload = json.loads((out / "runs" / "wrap__fold000.json").read_text())
    assert (payload["train"]["max_epochs"], payload["train"]["batch_size"]) == (3, 64)
    assert manifest["dataset"]["scale"] == 0.5


def test_rerun_with_other_options_is_refused_with_the_difference(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [*COMMON, "--folds", "2", "--max-epochs", "2", "--augs", "wrap", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 0
    capsys.readouterr()
    assert cli.main(FAKE_G1, [*argv[:-2], "--seed", "7", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "seed: 0 in OUT, 7 now" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_augmentation_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(FAKE_G1, [*COMMON, "--augs", "translation,nope"])
    assert exc.value.code == 2
    assert "unknown augmentation(s) nope" in capsys.readouterr().err


def test_unknown_dataset_fails_cleanly_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "no-such-dataset", "--no-progress", "--compile-cache", "none",
            "--folds", "1", "--augs", "wrap", "--out", str(out)]
    assert cli.main(g1.CAMPAIGN, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-such-dataset" in err
    assert not (out / "manifest.json").exists()


def test_g4_top3_from_missing_g1_is_a_clear_error(tmp_path, capsys):
    fake_g4 = dataclasses.replace(g4.CAMPAIGN, make_unit_fn=fake_unit_fn())
    argv = [*COMMON, "--top3-from", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    assert cli.main(fake_g4, argv) == 2
    assert "no G1 campaign there" in capsys.readouterr().err
