"""``python -m jtcaug.train``: end to end on the synthetic preset, refusals, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

data = pytest.importorskip("jtcaug.data")
from jtcaug.train.cli import main  # noqa: E402

SYNTHETIC = ["--dataset", "synthetic", "--scale", "0.02", "--no-cache"]
# Enough epochs to learn the preset; the same flags everywhere share one compilation.
TRAINING = ["--max-epochs", "30", "--patience", "10", "--batch-size", "256", "--quiet"]


@pytest.mark.slow
def test_trains_writes_metrics_and_beats_the_majority_baseline(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SYNTHETIC, "--fold", "0", *TRAINING, "--out", str(out)]) == 0
    record = json.loads((out / "metrics.json").read_text())
    metrics = record["metrics"]
    for field in ("weighted_f1", "accuracy", "per_class", "confusion"):
        assert field in metrics
    for field in ("epochs_run", "best_epoch", "n_params", "wall_time_s", "config", "history"):
        assert field in record
    assert record["n_params"] == 115_028  # the preset is shaped like MIRAGE-19: 20 classes
    assert record["config"]["max_epochs"] == 30 and record["config"]["aug"] == "none"
    assert len(record["history"]["val_acc"]) == record["epochs_run"]
    assert record["dataset"].startswith("synthetic") and record["fold"] == 0
    assert not list(out.glob(".metrics.json.*"))  # no temp file left behind

    fold = data.make_fold(data.load("synthetic", scale=0.02, cache=False), 0)
    majority = np.mean(fold.y_test == np.bincount(fold.y_train).argmax())
    assert metrics["accuracy"] > majority + 0.25

    # a finished run is refused, kept, and --resume reports it as done
    before = (out / "metrics.json").read_bytes()
    assert main([*SYNTHETIC, "--fold", "0", *TRAINING, "--out", str(out)]) == 2
    assert "finished run" in capsys.readouterr().err
    assert main([*SYNTHETIC, "--fold", "0", *TRAINING, "--out", str(out), "--resume"]) == 0
    assert (out / "metrics.json").read_bytes() == before


def test_refuses_a_directory_holding_a_finished_run(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text("{}")
    code = main([*SYNTHETIC, "--fold", "0", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--overwrite" in err and err.count("\n") == 1
    assert (tmp_path / "metrics.json").read_text() == "{}"


def test_refuses_an_interrupted_run_without_resume(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    assert main([*SYNTHETIC, "--fold", "0", "--out", str(tmp_path)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--policy", "inject:0", "--aug", "wrap"], "positive integer"),
        (["--policy", "shuffle:2", "--aug", "wrap"], "unknown policy"),
        (["--aug", "transmogrify", "--policy", "inject:1"], "unknown augmentation"),
        (["--alpha", "2"], "alpha"),
        (["--fold", "80"], "out of range"),
        (["--dataset", "no-such-set"], "unknown dataset"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys, flags, message):
    dataset = [] if "--dataset" in flags else SYNTHETIC
    args = [*dataset, "--fold", "0", "--out", str(tmp_path / "run"), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_module_entry_point_prints_help():
    done = subprocess.run(
        [sys.executable, "-m", "jtcaug.train", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for flag in ("--dataset", "--fold", "--aug", "--policy", "--class-weighted", "--resume"):
        assert flag in done.stdout
