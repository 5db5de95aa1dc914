"""The campaign command line: presets, bad input, refusal of a different configuration."""

import dataclasses
import json
import time

import pytest

from experiments import cli, g1, g4
from experiments.campaign import Plan, resolve_runs_per_unit

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
    assert "--top3-from" in (err := capsys.readouterr().err) and "no such directory" in err


def test_quick_scales_only_the_synthetic_default():
    parser, _ = cli.build_parser(FAKE_G1)
    for dataset, scale in (("synthetic", cli.QUICK_SYNTHETIC_SCALE), ("mirage19", 1.0),
                           ("flows:/data/t.parquet", 1.0), ("tcbench:/d/x.parquet", 1.0)):
        args = parser.parse_args(["--dataset", dataset, "--quick"])
        cli.apply_preset(parser, args, FAKE_G1)
        assert args.scale == scale, dataset
        assert (args.folds, args.max_epochs) == (cli.QUICK_PRESET["folds"],
                                                 cli.QUICK_PRESET["max_epochs"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runs-per-unit", "0"], "expected a positive integer, got 0"),
        (["--runs-per-unit", "-2"], "expected a positive integer"),
        (["--executor", "dask"], "invalid choice: 'dask'"),
        (["--gpus-per-unit", "-1"], "expected a number >= 0"),
    ],
)
def test_bad_execution_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(FAKE_G1, [*COMMON, *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_ray_address_fails_fast_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    started = time.perf_counter()
    argv = [*COMMON, "--quick", "--executor", "ray", "--ray-address", "127.0.0.1:9",
            "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 2
    assert time.perf_counter() - started < 30
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach Ray at 127.0.0.1:9") and len(err.splitlines()) == 1
    assert not out.exists()
    assert cli.main(FAKE_G1, [*COMMON, "--ray-address", "127.0.0.1:9", "--out", str(out)]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err


def test_slurm_array_variables_pick_the_shard(monkeypatch):
    parser, _ = cli.build_parser(FAKE_G1)
    args = parser.parse_args([])
    assert cli.shard_of(args) == (0, 1)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    assert cli.shard_of(args) == (2, 4)
    assert cli.shard_of(parser.parse_args(["--shard", "1/3"])) == (1, 3)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    with pytest.raises(cli.CampaignError, match="numbered from 0"):
        cli.shard_of(args)


def test_report_only_says_what_is_missing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [*COMMON, "--folds", "3", "--max-epochs", "2", "--augs", "wrap",
            "--magnitude-folds", "0", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 0
    (out / "runs" / "wrap__fold001.json").unlink()
    (out / "runs" / "wrap__fold002.json").unlink()
    (out / "report.md").unlink()
    capsys.readouterr()
    assert cli.main(FAKE_G1, [*argv, "--report-only"]) == 0
    printed = capsys.readouterr().out
    assert "runs: 4/6 finished" in printed and "missing wrap: folds 1-2" in printed
    assert "runs finished: 4 of 6" in (out / "report.md").read_text()
    assert cli.main(FAKE_G1, [*argv[:-2], "--out", str(tmp_path / "none"), "--report-only"]) == 2
    assert "holds no campaign" in capsys.readouterr().err


def test_pairing_is_recorded_and_reported(tmp_path):
    out = tmp_path / "out"
    argv = [*COMMON, "--folds", "2", "--max-epochs", "2", "--augs", "wrap",
            "--magnitude-folds", "0", "--out", str(out)]
    assert cli.main(FAKE_G1, [*argv, "--pairing", "seeds"]) == 0
    assert json.loads((out / "manifest.json").read_text())["pairing"] == "seeds"
    text = (out / "report.md").read_text()
    assert "pairing: seeds" in text and "precision: float32" in text
    assert cli.main(FAKE_G1, argv) == 2  # the default, split, differs from OUT's


def test_dry_run_with_a_missing_dataset_is_the_dataset_error(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "mirage19", "--data-dir", str(tmp_path / "nowhere"), "--no-progress",
            "--dry-run", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mirage19" in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_dry_run_prints_the_plan_and_an_estimate_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "synthetic", "--scale", "0.02", "--folds", "3", "--max-epochs", "5",
            "--batch-size", "64", "--augs", "translation,wrap", "--magnitude-folds", "0",
            "--runs-per-unit", "2", "--dry-run", "--out", str(out)]
    assert cli.main(g1.CAMPAIGN, argv) == 0
    printed = capsys.readouterr().out
    assert "grid: 3 configurations, 9 runs, model resnet1d" in printed
    assert "units: 6 of up to K = 2 runs" in printed
    assert "executor: local" in printed and "cpu device(s)" in printed
    assert "ms per step" in printed and "estimated wall time:" in printed
    assert not out.exists()


def test_auto_runs_per_unit_is_one_run_per_cpu_device():
    import jax

    the_plan = Plan([], {}, [])
    assert resolve_runs_per_unit("auto", the_plan) == len(jax.devices())
    assert resolve_runs_per_unit(3, the_plan) == 3


def test_files_in_place_of_directories_are_named(tmp_path, capsys):
    cache_file = tmp_path / "cache"
    cache_file.write_text("x")
    argv = [*COMMON[:-2], "--folds", "1", "--max-epochs", "1", "--augs", "wrap",
            "--magnitude-folds", "0"]
    assert cli.main(FAKE_G1, [*argv, "--compile-cache", str(cache_file),
                              "--out", str(tmp_path / "a")]) == 2
    assert "--compile-cache" in capsys.readouterr().err
    out = tmp_path / "b"
    out.mkdir()
    (out / "tables").write_text("x")
    assert cli.main(FAKE_G1, [*argv, "--compile-cache", "none", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "tables directory" in err and len(err.splitlines()) == 1


def test_aug_module_makes_a_registered_augmentation_a_campaign_config(tmp_path, monkeypatch,
                                                                        capsys):
    (tmp_path / "user_augs_for_test.py").write_text(
        "from jtcaug import aug\n\n\n"
        "def reverse_sizes(key, x, alpha, ctx):\n"
        "    return x.at[:, 0].set(x[::-1, 0])\n\n\n"
        "aug.register('reverse_sizes_cli', reverse_sizes, 'amplitude')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    argv = [*COMMON, "--aug-module", "user_augs_for_test", "--augs",
            "reverse_sizes_cli,translation", "--folds", "1", "--max-epochs", "1",
            "--magnitude-folds", "0", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["name"] for c in manifest["grid"]] == ["none", "translation", "reverse_sizes_cli"]
    assert manifest["aug_modules"] == ["user_augs_for_test"]
    capsys.readouterr()
    assert cli.main(FAKE_G1, [*COMMON, "--aug-module", "no_such_module_xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_module_xyz" in err and len(err.splitlines()) == 1


def test_test_dataset_options_enter_the_manifest_only_with_a_test_dataset(tmp_path):
    argv = [*COMMON, "--folds", "1", "--max-epochs", "1", "--augs", "wrap",
            "--magnitude-folds", "0"]
    assert cli.main(FAKE_G1, [*argv, "--out", str(tmp_path / "a")]) == 0
    dataset = json.loads((tmp_path / "a" / "manifest.json").read_text())["dataset"]
    assert not [k for k in dataset if k.startswith("test_")]
    assert cli.main(FAKE_G1, [*argv, "--test-dataset", "synthetic",
                              "--out", str(tmp_path / "b")]) == 0
    dataset = json.loads((tmp_path / "b" / "manifest.json").read_text())["dataset"]
    assert dataset["test_dataset"] == "synthetic" and "test_min_packets" in dataset


def test_host_devices_cannot_change_a_running_jax(tmp_path, capsys):
    # JAX already runs with 2 CPU devices in the tests: asking for 3 is refused in one line,
    # while the default leaves the running layout alone.
    cli.set_host_devices(3, explicit=False)
    argv = [*COMMON, "--folds", "1", "--augs", "wrap", "--out", str(tmp_path / "o")]
    assert cli.main(FAKE_G1, [*argv, "--host-devices", "3"]) == 2
    err = capsys.readouterr().err
    assert "--host-devices 3: JAX is already running with 2 CPU device(s)" in err


def test_the_quick_preset_splits_the_cpu_into_fewer_devices_unless_told():
    parser, _ = cli.build_parser(FAKE_G1)
    assert cli.host_devices_of(parser.parse_args([])) == cli.DEFAULT_HOST_DEVICES == 2
    assert cli.host_devices_of(parser.parse_args(["--quick"])) == cli.QUICK_HOST_DEVICES == 1
    assert cli.host_devices_of(parser.parse_args(["--quick", "--host-devices", "2"])) == 2


def test_model_is_recorded_reported_and_passed_to_every_run(tmp_path):
    out = tmp_path / "out"
    argv = [*COMMON, "--folds", "1", "--max-epochs", "2", "--augs", "wrap",
            "--magnitude-folds", "0", "--out", str(out)]
    assert cli.main(FAKE_G1, [*argv, "--model", "transformer"]) == 0
    assert json.loads((out / "manifest.json").read_text())["model"] == "transformer"
    assert "model: transformer" in (out / "report.md").read_text()
    runs = sorted((out / "runs").glob("*.json"))
    assert runs and all(json.loads(p.read_text())["train"]["model"] == "transformer"
                        for p in runs)
    assert cli.main(FAKE_G1, argv) == 2  # the default model differs from OUT's


def test_the_default_model_named_or_not_is_one_campaign(tmp_path):
    out = tmp_path / "out"
    argv = [*COMMON, "--folds", "1", "--max-epochs", "2", "--augs", "wrap",
            "--magnitude-folds", "0", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 0
    # None: a manifest written before --model existed is the same campaign
    assert json.loads((out / "manifest.json").read_text())["model"] is None
    assert "model: resnet1d" in (out / "report.md").read_text()
    payload = json.loads((out / "runs" / "wrap__fold000.json").read_text())
    assert "model" not in payload["train"]
    assert cli.main(FAKE_G1, [*argv, "--model", "resnet1d"]) == 0


def test_an_unknown_model_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [*COMMON, "--folds", "1", "--augs", "wrap", "--model", "cnn", "--out", str(out)]
    assert cli.main(FAKE_G1, argv) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown model 'cnn'; choose from resnet1d, transformer\n"
    assert not out.exists()
