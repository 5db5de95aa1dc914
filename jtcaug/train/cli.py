"""``python -m jtcaug.train``: train one run on one fold and write ``DIR/metrics.json``.

Exit status: 0 done (or already finished with --resume), 1 training diverged (NaN loss),
2 bad input (message on stderr), 130 interrupted (checkpoint kept; rerun with --resume).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


def build_parser() -> argparse.ArgumentParser:
    from jtcaug.data import add_dataset_arguments

    parser = argparse.ArgumentParser(
        prog="python -m jtcaug.train",
        description="Train the paper's ResNet-1d on one fold; writes DIR/metrics.json.",
    )
    add_dataset_arguments(parser)
    parser.add_argument("--fold", type=int, required=True, help="fold index")
    parser.add_argument(
        "--aug",
        default="none",
        help="augmentation: none, a name (e.g. translation) or a combination policy "
        "(ensemble, random_stack, masked_stack:P, optionally with a [pool])",
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
    parser.add_argument("--out", type=Path, required=True, help="output directory DIR")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run checkpointed in DIR")
    again.add_argument(
        "--overwrite", action="store_true", help="discard a finished or interrupted run in DIR"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print(
            f"interrupted: the last completed epoch is checkpointed in {args.out}; "
            "rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130


def _main(args: argparse.Namespace) -> int:
    from jtcaug.train.config import TrainConfig
    from jtcaug.train.runner import TrainingDiverged, run

    try:
        config = TrainConfig(
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
        out: Path = args.out
        checkpoints = out / CHECKPOINT_DIR
        if (out / METRICS_FILE).exists():
            if args.resume:
                _say(args, f"{out / METRICS_FILE} exists: the run is already finished")
                return 0
            if not args.overwrite:
                return _fail(
                    f"{out} holds a finished run ({METRICS_FILE}); pass --overwrite to replace it"
                )
        if checkpoints.exists() and not (args.resume or args.overwrite):
            return _fail(
                f"{out} holds an interrupted run ({CHECKPOINT_DIR}/); pass --resume to "
                "continue it or --overwrite to start over"
            )
        if out.exists() and not out.is_dir():
            return _fail(f"--out {out} exists and is not a directory")
        fold = _load_fold(args)
        if args.overwrite:
            (out / METRICS_FILE).unlink(missing_ok=True)
            shutil.rmtree(checkpoints, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        result = run(
            fold,
            config,
            checkpoint_dir=checkpoints,
            resume=args.resume,
            progress=not args.quiet,
        )
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:
        return _fail(str(err))
    record = {
        "dataset": str(getattr(fold, "dataset", args.dataset)),
        "fold": int(getattr(fold, "fold", args.fold)),
        "class_names": list(fold.class_names),
        **result.to_dict(),
    }
    write_json_atomic(out / METRICS_FILE, record)
    m = result.metrics
    _say(
        args,
        f"weighted F1 {m['weighted_f1']:.4f}  accuracy {m['accuracy']:.4f}  epochs "
        f"{result.epochs_run} (best {result.best_epoch})  {result.wall_time_s:.1f}s  "
        f"-> {out / METRICS_FILE}",
    )
    return 0


def _load_fold(args):
    from jtcaug.data import load_from_args, make_fold

    flows = load_from_args(args)
    return make_fold(flows, args.fold)


def write_json_atomic(path: Path, record: dict) -> None:
    """Writes JSON to a temp file beside ``path`` and renames it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _say(args, message: str) -> None:
    if not args.quiet:
        print(message)
