"""``python -m jtcaug.train``: end to end on the synthetic preset, refusals, bad input."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

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

    # an interrupted run resumed with other settings: the differences, not orbax's shapes
    (out / "metrics.json").unlink()
    capsys.readouterr()
    longer = [*SYNTHETIC, "--fold", "0", *TRAINING, "--max-epochs", "31", "--out", str(out)]
    assert main([*longer, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_epochs: 30 saved, 31 given" in err

    # a bit flipped in the newest checkpoint: a warning, the previous one, the same run
    newest = max(int(p.name) for p in (out / "checkpoints").iterdir())
    data_files = (out / "checkpoints" / str(newest) / "state").rglob("*")
    largest = max((p for p in data_files if p.is_file()), key=lambda p: p.stat().st_size)
    flipped = bytearray(largest.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    largest.write_bytes(bytes(flipped))
    assert main([*SYNTHETIC, "--fold", "0", *TRAINING, "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning:") and err.count("\n") == 1
    assert f"checkpoints/{newest} is damaged" in err and "does not match its checksum" in err
    again = json.loads((out / "metrics.json").read_text())
    for field in ("metrics", "history", "epochs_run", "best_epoch", "best_val_acc"):
        assert again[field] == record[field]


def test_refuses_a_directory_holding_a_finished_run(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text("{}")
    code = main([*SYNTHETIC, "--fold", "0", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--overwrite" in err and err.count("\n") == 1
    assert (tmp_path / "metrics.json").read_text() == "{}"


def test_refuses_an_interrupted_run_without_resume(tmp_path, capsys):
    (tmp_path / "checkpoints" / "10").mkdir(parents=True)
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
        (["--model", "cnn"], "error: unknown model 'cnn'; choose from resnet1d, transformer"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys, flags, message):
    dataset = [] if "--dataset" in flags else SYNTHETIC
    args = [*dataset, "--fold", "0", "--out", str(tmp_path / "run"), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fold", "abc", "--out", "x"], "argument --fold: invalid int value: 'abc'"),
        (["--out", "x"], "the following arguments are required: --fold"),
        (["--fold", "0", "--out", "x", "--resume", "--overwrite"], "not allowed with"),
        (["--fold", "0", "--out", "x", "--batch-size", "1e3"], "invalid int value"),
    ],
)
def test_option_errors_are_one_line_too(capsys, argv, message):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and message in err
    assert "--help" in err


def test_module_entry_point_prints_help():
    done = subprocess.run(
        [sys.executable, "-m", "jtcaug.train", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for flag in ("--dataset", "--fold", "--aug", "--policy", "--class-weighted", "--resume"):
        assert flag in done.stdout


# --- the command's own logic, with training replaced by a stand-in ---------------------------

ARGS = [*SYNTHETIC, "--fold", "0", *TRAINING]


class FakeRun:
    """Stands in for ``runner.run``: records its calls and returns a plausible result."""

    def __init__(self, error: BaseException | None = None):
        self.calls = []
        self.error = error

    def __call__(self, fold, config, **kwargs):
        from jtcaug.train.runner import RunResult

        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        epochs = config.max_epochs
        return RunResult(
            metrics={"weighted_f1": 0.5, "accuracy": 0.5, "per_class": {}, "confusion": [[1]]},
            history={name: [0.5] * epochs for name in ("train_loss", "val_acc", "lr")},
            epochs_run=epochs,
            best_epoch=1,
            best_val_acc=0.5,
            stop_reason="max_epochs",
            n_params=1,
            wall_time_s=1.0,
            config=config.to_dict(),
            test_pred=np.zeros(1, np.int32),
        )


@pytest.fixture
def fake_run(monkeypatch):
    fake = FakeRun()
    monkeypatch.setattr("jtcaug.train.runner.run", fake)
    return fake


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("out", ["", "  "])
def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys, fake_run, out):
    monkeypatch.chdir(tmp_path)
    assert main([*ARGS, "--out", out]) == 2
    assert "--out is empty" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == [] and fake_run.calls == []


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("file", "--out {tmp}/file exists and is not a directory"),
        ("file/run", "--out {tmp}/file/run is inside the file {tmp}/file"),
        ("file/deeper/run", "is inside the file {tmp}/file"),
    ],
)
def test_an_out_that_is_or_is_inside_a_file_names_the_option(
    tmp_path, capsys, fake_run, out, message
):
    (tmp_path / "file").write_text("keep me")
    assert main([*ARGS, "--out", str(tmp_path / out)]) == 2
    assert message.format(tmp=tmp_path) in _one_error_line(capsys)
    assert (tmp_path / "file").read_text() == "keep me"


def test_an_out_that_cannot_be_created_names_the_option(capsys, fake_run):
    assert main([*ARGS, "--out", "/proc/self/no-such-run"]) == 2
    assert "--out /proc/self/no-such-run: cannot create it (" in _one_error_line(capsys)


def test_the_parents_created_before_a_failing_mkdir_are_removed(
    tmp_path, capsys, fake_run, monkeypatch
):
    real_mkdir = Path.mkdir

    def mkdir_failing_at_run(path, *args, **kwargs):
        if path.name == "run":
            raise PermissionError(13, "Permission denied")
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir_failing_at_run)
    assert main([*ARGS, "--out", str(tmp_path / "a" / "b" / "run")]) == 2
    assert "cannot create it (Permission denied)" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_metrics_json_gets_the_umask_s_permissions(tmp_path, fake_run, mask):
    previous = os.umask(mask)
    try:
        assert main([*ARGS, "--out", str(tmp_path / "run")]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "run" / "metrics.json").stat().st_mode) == 0o666 & ~mask


def test_a_failed_start_leaves_no_directory_behind(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("jtcaug.train.runner.run", FakeRun(ValueError("no good")))
    assert main([*ARGS, "--out", str(tmp_path / "a" / "b" / "run")]) == 2
    assert "no good" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []  # the parents it created are gone too
    (tmp_path / "mine").mkdir()
    assert main([*ARGS, "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine").is_dir()  # a directory it did not create is kept


def test_an_interrupt_before_the_first_checkpoint_keeps_nothing_and_says_so(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("jtcaug.train.runner.run", FakeRun(KeyboardInterrupt()))
    assert main([*ARGS, "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert err == "interrupted before the first checkpoint: nothing was kept\n"
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_while_starting_up_is_one_line(capsys, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("jtcaug.train.cli.build_parser", interrupted)
    assert main(["--help"]) == 130
    assert capsys.readouterr().err == "interrupted before the run started: nothing was written\n"


def test_a_file_in_place_of_checkpoints_is_refused_unless_overwritten(tmp_path, capsys, fake_run):
    (tmp_path / "checkpoints").write_text("not a directory")
    assert main([*ARGS, "--out", str(tmp_path)]) == 2
    assert "checkpoints is not a directory" in _one_error_line(capsys)
    assert fake_run.calls == []
    assert main([*ARGS, "--out", str(tmp_path), "--overwrite"]) == 0
    assert not (tmp_path / "checkpoints").exists() and (tmp_path / "metrics.json").is_file()


def test_an_empty_leftover_checkpoint_directory_is_no_interrupted_run(tmp_path, fake_run):
    (tmp_path / "checkpoints").mkdir()
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    assert fake_run.calls[0]["resume"] is False


@pytest.fixture
def finished(tmp_path, fake_run):
    """A run directory holding a finished run (as written by the command)."""
    out = tmp_path / "run"
    assert main([*ARGS, "--out", str(out)]) == 0
    fake_run.calls.clear()
    return out


def test_resume_of_a_finished_run_with_other_settings_names_them(finished, capsys, fake_run):
    before = (finished / "metrics.json").read_bytes()
    args = [*ARGS, "--out", str(finished), "--resume", "--max-epochs", "20", "--seed", "3"]
    assert main(args) == 2
    err = _one_error_line(capsys)
    assert "max_epochs: 30 saved, 20 given; seed: 0 saved, 3 given" in err
    assert "--overwrite" in err
    assert (finished / "metrics.json").read_bytes() == before and fake_run.calls == []


def test_resume_of_a_finished_run_on_other_data_names_them(finished, capsys, fake_run):
    assert main([*ARGS, "--out", str(finished), "--resume", "--data-seed", "1"]) == 2
    assert "the fold's data differ" in _one_error_line(capsys)
    assert main([*ARGS, "--out", str(finished), "--resume", "--fold", "1"]) == 2
    assert "fold: 0 saved, 1 given" in _one_error_line(capsys)


def test_resume_of_a_finished_run_with_the_same_settings_is_done(finished, capsys, fake_run):
    assert main([*ARGS, "--out", str(finished), "--resume"]) == 0
    assert fake_run.calls == []


def _truncate(text):
    return text[: len(text) // 2]


def _set(path, value):
    def change(text):
        record = json.loads(text)
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return json.dumps(record)

    return change


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_truncate, "line "),
        (lambda text: "[]", "not a JSON object"),
        (lambda text: "[" * 100_000, "maximum recursion depth"),
        (_set(["metrics"], [1, 2]), "metrics is missing or not an object"),
        (_set(["metrics", "weighted_f1"], 1.5), "metrics.weighted_f1"),
        (_set(["epochs_run"], "four"), "epochs_run is missing or not an integer"),
        (_set(["history", "val_acc"], [0.5]), "history.val_acc is not a list of 30 values"),
        (_set(["config", "max_epochs"], 0), "config is invalid"),
    ],
)
def test_a_damaged_metrics_json_is_no_finished_run(finished, capsys, fake_run, damage, problem):
    metrics = finished / "metrics.json"
    metrics.write_text(damage(metrics.read_text()))
    damaged = metrics.read_bytes()
    assert main([*ARGS, "--out", str(finished)]) == 2
    err = _one_error_line(capsys)
    assert "damaged" in err and problem in err and "--resume" in err

    assert main([*ARGS, "--out", str(finished), "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning:") and err.count("\n") == 1 and "not finished" in err
    assert fake_run.calls == [fake_run.calls[0]] and fake_run.calls[0]["resume"] is True
    assert json.loads(metrics.read_text())["epochs_run"] == 30  # rewritten whole
    (moved,) = finished.glob("metrics.json.corrupt-*")
    assert moved.read_bytes() == damaged  # kept for inspection


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-epochs", "100000000000"], "max_epochs must be <= 1000000"),
        (["--seed", str(2**64)], "seed must be < 4294967296"),
        (["--patience", str(2**40)], "patience must be <= 2147483647"),
        (["--batch-size", str(3 * 10**9)], "batch_size must be <= 2147483647"),
        (["--aug", "ensemble[bogus]", "--policy", "inject:1"], "bogus"),
        (["--policy", "replace:nan", "--aug", "wrap"], "probability"),
        (["--alpha", "-0.5"], "alpha"),
        (["--min-delta", "-1"], "min_delta"),
    ],
)
def test_more_bad_input_gives_one_line_and_status_2(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main([*SYNTHETIC, "--fold", "0", "--out", str(out), *flags]) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_an_absurd_batch_is_refused_up_front_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*SYNTHETIC, "--fold", "0", "--quiet", "--batch-size", str(10**8), "--out", str(out)]
    assert main(args) == 2
    err = _one_error_line(capsys)
    assert "batch_size 100000000 makes a training step that needs about" in err
    assert not out.exists()  # so the corrected rerun is not refused as an interrupted run


def test_test_dataset_is_the_test_split_and_is_recorded(tmp_path, fake_run):
    out = tmp_path / "run"
    assert main([*ARGS, "--test-dataset", "synthetic", "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["test_dataset"] == "synthetic-mirage19"
    assert record["unseen_test_counts"] == {}


def test_aug_module_registers_an_augmentation_for_aug(tmp_path, monkeypatch, fake_run, capsys):
    (tmp_path / "user_augs_train_cli.py").write_text(
        "from jtcaug import aug\n\n\n"
        "def reverse_sizes(key, x, alpha, ctx):\n"
        "    return x.at[:, 0].set(x[::-1, 0])\n\n\n"
        "aug.register('reverse_sizes_train', reverse_sizes, 'amplitude')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = [*ARGS, "--aug-module", "user_augs_train_cli", "--aug", "reverse_sizes_train",
            "--policy", "inject:1", "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 0
    assert fake_run.calls
    assert main([*ARGS, "--aug-module", "no_such_module_abc", "--out", str(tmp_path / "x")]) == 2
    assert "no_such_module_abc" in _one_error_line(capsys)


def test_model_chooses_the_backbone_and_is_recorded(tmp_path, fake_run, capsys):
    out = tmp_path / "run"
    assert main([*ARGS, "--model", "transformer", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["model"] == "transformer"
    # the finished run is the Transformer's: --resume with the default model names it
    assert main([*ARGS, "--out", str(out), "--resume"]) == 2
    assert "model: 'transformer' saved, 'resnet1d' given" in _one_error_line(capsys)
