"""The tidy results table: one row per finished run (``results.parquet``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from experiments.grid import RunSpec
from experiments.store import RESULTS, CorruptResult, ResultStore
from jtcaug.io import atomic_write_with

CONFIG_COLUMNS = ("config", "group", "aug", "policy", "alpha", "class_weighted")


def result_row(payload: dict) -> dict:
    """One tidy row of ``results.parquet`` from a result file's payload."""
    config = payload["config"]
    train = payload["train"]
    record = payload["record"]
    metrics = record["metrics"]
    row = {
        "run_id": payload["run_id"],
        "config": config["name"],
        "group": config["group"],
        "aug": train.get("aug", "none"),
        "policy": train.get("policy", "none"),
        "alpha": float("nan") if train.get("alpha") is None else float(train["alpha"]),
        "class_weighted": bool(train.get("class_weighted", False)),
        "fold": int(payload["fold"]),
        "key_seed": int(payload.get("key_seed", -1)),
        "weighted_f1": float(metrics["weighted_f1"]),
        "accuracy": float(metrics.get("accuracy", float("nan"))),
    }
    for key in ("epochs_run", "best_epoch", "n_params"):
        row[key] = int(record[key]) if record.get(key) is not None else pd.NA
    row["wall_time_s"] = float(record.get("wall_time_s") or float("nan"))
    for name, values in metrics.get("per_class", {}).items():
        for metric in ("precision", "recall", "f1", "support"):
            if metric in values:
                row[f"{metric}[{name}]"] = values[metric]
    for name, count in (record.get("class_counts_train") or {}).items():
        row[f"train_count[{name}]"] = int(count)
    for key, value in (record.get("extra") or {}).items():
        row[key] = float("nan") if value is None else value
    return row


def collect_results(store: ResultStore, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """One row per finished run, in grid order (unfinished or corrupt runs are left out)."""
    rows = []
    for spec in runs:
        try:
            rows.append(result_row(store.load(spec)))
        except (FileNotFoundError, CorruptResult):
            continue
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["run_id", *CONFIG_COLUMNS, "fold", "weighted_f1"])
    return frame


def write_results(store: ResultStore, frame: pd.DataFrame):
    path = store.out_dir / RESULTS
    atomic_write_with(path, lambda p: frame.to_parquet(p, index=False))
    return path
