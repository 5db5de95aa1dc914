"""``python -m jtcaug.train``: train one run on one fold and write ``DIR/metrics.json``.

Exit status: 0 done (or already finished with --resume and the same settings), 1 training
diverged (NaN loss), 2 bad input or an unusable --out (one line on stderr), 130 interrupted
(checkpoint kept; rerun with --resume).

``DIR`` is created when the run starts and removed again if the run fails before anything was
written into it, so a corrected rerun is never refused for an empty leftover directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from jtcaug.io import atomic_write_text

METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


def build_parser() -> argparse.ArgumentParser:
    from jtcaug.data import add_dataset_arguments, add_test_dataset_arguments

    parser = _OneLineParser(
        prog="python -m jtcaug.train",
        description="Train a model (the paper's ResNet-1d by default) on one fold; writes "
        "DIR/metrics.json.",
    )
    add_dataset_arguments(parser)
    add_test_dataset_arguments(parser)
    parser.add_argument(
        "--aug-module", action="append", default=[], metavar="MODULE",
        help="import MODULE first, so the augmentations it registers (jtcaug.aug.register) "
        "can be named in --aug (repeatable)",
    )
    parser.add_argument("--fold", type=int, required=True, help="fold index")
    parser.add_argument(
        "--model", default="resnet1d",
        help="backbone: resnet1d (the paper's ResNet-1d) or transformer (docs/models.md)",
    )
    parser.add_argument(
        "--aug",
        default="none",
        help="augmentation: none, a name (e.g. translation) or a combination "
        "(ensemble, random_stack, masked_stack:P, trivial, rand:N, optionally with a [pool]; "
        "weighted[name:w,...])",
    )
    parser.add_argument(
        "--policy", default="none", help="none | replace:P | inject:N | preaugment:M"
    )
    parser.add_argument(
        "--alpha", type=float, default=None, help="fixed magnitude in [0, 1] (default U(0,1))"
    )
    parser.add_argument(
        "--class-weighted", action="store_true", help="sample rows with probability 1/n_class"
    )
    parser.add_argument("--max-epochs", type=int, default=500)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--min-delta", type=float, default=0.02)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0, help="seed of the run's key")
    parser.add_argument(
        "--checkpoint-every", type=int, default=10, help="epochs between checkpoints"
    )
    # A str, not a Path: Path("") is ".", and an empty --out must be refused, not mean here.
    parser.add_argument("--out", required=True, help="output directory DIR")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run checkpointed in DIR")
    again.add_argument(
        "--overwrite", action="store_true", help="discard a finished or interrupted run in DIR"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


class _OneLineParser(argparse.ArgumentParser):
    """Reports a bad option in one line, as every other bad input is, not under the usage."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    try:
        # building the parser imports jtcaug.data (numpy, scipy): seconds a Ctrl-C can hit
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("interrupted before the run started: nothing was written", file=sys.stderr)
        return 130
    try:
        return _main(args)
    except KeyboardInterrupt:
        if _has_checkpoints(Path(args.out) / CHECKPOINT_DIR):
            message = (
                f"interrupted: the last completed epoch is checkpointed in {args.out}; "
                "rerun with --resume to continue"
            )
        else:
            message = "interrupted before the first checkpoint: nothing was kept"
        print(message, file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    from jtcaug import aug
    from jtcaug.train.config import TrainConfig
    from jtcaug.train.runner import TrainingDiverged, run

    try:
        for module in args.aug_module:
            aug.import_augmentation_module(module)
        config = TrainConfig(
            model=args.model,
            aug=args.aug,
            policy=args.policy,
            alpha=args.alpha,
            class_weighted=args.class_weighted,
            batch_size=args.batch_size,
            max_epochs=args.max_epochs,
            patience=args.patience,
            min_delta=args.min_delta,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
        ).validate()
        out = output_directory(args.out)
        metrics_path = out / METRICS_FILE
        checkpoints = out / CHECKPOINT_DIR
        if checkpoints.exists() and not checkpoints.is_dir() and not args.overwrite:
            raise _Refused(
                f"--out {out}: {CHECKPOINT_DIR} is not a directory; move it away or pass "
                "--overwrite"
            )
        finished = _finished_run(metrics_path, args, config)
        if _has_checkpoints(checkpoints) and not (args.resume or args.overwrite):
            return _fail(
                f"{out} holds an interrupted run ({CHECKPOINT_DIR}/); pass --resume to "
                "continue it or --overwrite to start over"
            )
        fold = _load_fold(args)
        if finished is not None:
            _check_finished_run_data(finished, fold, out)
            _say(args, f"{metrics_path} exists: the run is already finished")
            return 0
        if args.overwrite:
            _discard_previous_run(out)
        created = _make_directory(out)
        try:
            result = run(
                fold,
                config,
                checkpoint_dir=checkpoints,
                resume=args.resume,
                progress=not args.quiet,
                warn=_warn,
            )
        except BaseException:
            _remove_empty(created)
            raise
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except _Refused as err:
        return _fail(str(err))
    except (ValueError, OSError) as err:
        return _fail(_one_line(err))
    record = {
        "dataset": str(getattr(fold, "dataset", args.dataset)),
        "fold": int(getattr(fold, "fold", args.fold)),
        "class_names": list(fold.class_names),
        "data_sha256": _fingerprint(fold),
        **result.to_dict(),
    }
    if getattr(fold, "test_dataset", None):
        # Test flows of classes the model never saw are counted, not scored.
        record["test_dataset"] = fold.test_dataset
        record["unseen_test_counts"] = dict(fold.unseen_test_counts)
    try:
        write_json_atomic(metrics_path, record)
    except OSError as err:
        return _fail(
            f"--out {out}: cannot write {METRICS_FILE} ({err.strerror or err}); the "
            f"checkpoints are kept: rerun with --resume once it is writable"
        )
    m = result.metrics
    _say(
        args,
        f"weighted F1 {m['weighted_f1']:.4f}  accuracy {m['accuracy']:.4f}  epochs "
        f"{result.epochs_run} (best {result.best_epoch})  {result.wall_time_s:.1f}s  "
        f"-> {metrics_path}",
    )
    return 0


# --- the output directory -------------------------------------------------------------------


class _Refused(Exception):
    """The command cannot go ahead; the message is the one line to print."""


def output_directory(text: str) -> Path:
    """The ``--out`` directory, refused when empty or when it names a non-directory.

    Raises:
      _Refused: one line naming ``--out``.
    """
    if not text.strip():
        raise _Refused("--out is empty: give the run's output directory")
    out = Path(text)
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            what = "exists and is not a directory" if path == out else f"is inside the file {path}"
            raise _Refused(f"--out {out} {what}")
    return out


def _make_directory(out: Path) -> list[Path]:
    """Creates ``out`` and missing parents; returns the ones created, outermost first.

    Raises:
      _Refused: it cannot be created, or it cannot be written to.
    """
    missing = [p for p in (out, *out.parents) if not p.exists()][::-1]
    try:
        for path in missing:
            path.mkdir()
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        _remove_empty(missing)
        verb = "create" if missing else "write to"
        raise _Refused(f"--out {out}: cannot {verb} it ({err.strerror or err})") from None
    return missing


def _remove_empty(created: list[Path]) -> None:
    """Removes the directories this run created, innermost first, as long as they are empty."""
    for path in reversed(created):
        try:
            path.rmdir()
        except FileNotFoundError:
            continue  # never created: the failure came first
        except OSError:
            return


def _has_checkpoints(checkpoints: Path) -> bool:
    """A checkpoint directory counts only if it holds something (an empty one is a leftover)."""
    try:
        return checkpoints.is_dir() and any(checkpoints.iterdir())
    except OSError:
        return False


def _discard_previous_run(out: Path) -> None:
    """Removes what --overwrite replaces, whether each is a file or a directory."""
    for path in (out / METRICS_FILE, out / CHECKPOINT_DIR):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _quarantine(path: Path) -> Path:
    """Moves a damaged file aside (kept for inspection); returns where it went."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


# --- a finished run ---------------------------------------------------------------------------


def _finished_run(metrics_path: Path, args, config) -> dict | None:
    """The finished run in ``DIR/metrics.json`` that --resume may report as done, else None.

    None when there is none, when --overwrite discards it, or when it is damaged and
    --resume redoes it (the damaged file is moved aside). The saved configuration and fold
    are compared here, before the data are loaded; the data themselves afterwards.

    Raises:
      _Refused: a finished run without --resume or --overwrite, a damaged one without
        --resume, or a finished one with other settings.
    """
    if args.overwrite or not metrics_path.exists():
        return None
    record, problem = read_metrics(metrics_path)
    if problem and args.resume:
        moved = _quarantine(metrics_path)
        _warn(
            f"{metrics_path} is damaged ({problem}), so the run is not finished: moved it to "
            f"{moved.name} and resuming"
        )
        return None
    if problem:
        raise _Refused(
            f"{metrics_path} is damaged ({problem}); pass --resume to finish the run from "
            "its checkpoints or --overwrite to start over"
        )
    if not args.resume:
        raise _Refused(
            f"{metrics_path.parent} holds a finished run ({METRICS_FILE}); pass --overwrite "
            "to replace it"
        )
    from jtcaug.train.runner import run_differences

    current = {"config": config.to_dict(), "fold": int(args.fold)}
    differences = run_differences(record, current)
    if differences:
        raise _Refused(_other_settings(metrics_path.parent, differences))
    return record


def _check_finished_run_data(record: dict, fold, out: Path) -> None:
    from jtcaug.train.runner import run_differences

    current = {"dataset": str(getattr(fold, "dataset", record["dataset"]))}
    if "data_sha256" in record:
        current["data_sha256"] = _fingerprint(fold)
    differences = run_differences(record, current)
    if differences:
        raise _Refused(_other_settings(out, differences))


def _other_settings(out: Path, differences: list[str]) -> str:
    return (
        f"--resume: {out} holds a finished run with other settings ({'; '.join(differences)}); "
        "rerun with its settings, or pass --overwrite to replace it"
    )


def read_metrics(path: Path) -> tuple[dict | None, str | None]:
    """Reads and checks ``metrics.json``; returns ``(record, None)`` or ``(None, problem)``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        return None, _one_line(err)
    problem = metrics_problem(record)
    return (None, problem) if problem else (record, None)


def metrics_problem(record) -> str | None:
    """The first way ``record`` is not a metrics record this command wrote, None if none."""
    from jtcaug.train.config import TrainConfig

    if not isinstance(record, dict):
        return "not a JSON object"
    fields = {
        "dataset": str,
        "fold": int,
        "class_names": list,
        "metrics": dict,
        "epochs_run": int,
        "best_epoch": int,
        "best_val_acc": (int, float),
        "stop_reason": str,
        "n_params": int,
        "wall_time_s": (int, float),
        "config": dict,
        "history": dict,
    }
    for name, kind in fields.items():
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{name} is missing or not {_kind_name(kind)}"
    try:
        TrainConfig.from_dict(record["config"]).validate()
    except (TypeError, ValueError) as err:
        return f"config is invalid ({_one_line(err)})"
    epochs = record["epochs_run"]
    if not 1 <= record["best_epoch"] <= epochs:
        return f"best_epoch {record['best_epoch']} is not within 1..{epochs}"
    if record["stop_reason"] not in ("early_stopping", "max_epochs"):
        return f"stop_reason {record['stop_reason']!r} is unknown"
    for name in ("train_loss", "val_acc", "lr"):
        series = record["history"].get(name)
        if not isinstance(series, list) or len(series) != epochs:
            return f"history.{name} is not a list of {epochs} values"
        if not all(_is_number(v) for v in series):
            return f"history.{name} holds a non-number"
    metrics = record["metrics"]
    for name in ("weighted_f1", "accuracy"):
        value = metrics.get(name)
        if not (_is_number(value) and 0.0 <= value <= 1.0):
            return f"metrics.{name} is missing or not in [0, 1]"
    if not isinstance(metrics.get("per_class"), dict):
        return "metrics.per_class is missing or not an object"
    if not isinstance(metrics.get("confusion"), list):
        return "metrics.confusion is missing or not a list"
    return None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind_name(kind) -> str:
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object"}
    return names.get(kind, "a number")


# --- helpers ------------------------------------------------------------------------------------


def _load_fold(args):
    from jtcaug.data import load_from_args, load_test_from_args, make_fold, make_transfer_fold

    flows = load_from_args(args)
    test_flows = load_test_from_args(args)
    if test_flows is None:
        return make_fold(flows, args.fold)
    return make_transfer_fold(flows, test_flows, args.fold)


def _fingerprint(fold) -> str:
    from jtcaug.train.runner import fold_fingerprint

    return fold_fingerprint(fold)


def write_json_atomic(path: Path, record: dict) -> None:
    """Writes JSON atomically (``jtcaug.io``); the file gets the umask's permissions."""
    atomic_write_text(path, json.dumps(record, indent=1, allow_nan=False) + "\n")


def _one_line(err: BaseException) -> str:
    """An exception as one line: an OSError as "path: reason", others by their first line."""
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message)
