"""The default unit function of the campaigns: train a unit's runs with ``jtcaug.train``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from experiments.execution import RunRecord, UnitFn
from experiments.grid import DEFAULT_FOLDS, Unit


class FoldSource:
    """Loads the dataset once per process and makes folds on demand (the latest few kept:
    units come fold-major, so consecutive units share folds)."""

    def __init__(self, args: argparse.Namespace, n_folds: int, keep: int = 16):
        import jtcaug.data

        self._data = jtcaug.data
        self.flows = jtcaug.data.load_from_args(args)
        # --test-dataset: train and validate on this dataset's folds, test on that one.
        self.test_flows = jtcaug.data.load_test_from_args(args)
        # Folds are drawn among at least the paper's 80, so fold i is the same fold whatever
        # --folds says.
        self.n_folds = max(n_folds, DEFAULT_FOLDS)
        self._keep = keep
        self._folds: dict[int, object] = {}

    def get(self, fold: int):
        if fold not in self._folds:
            if len(self._folds) >= self._keep:
                self._folds.pop(next(iter(self._folds)))
            if self.test_flows is None:
                made = self._data.make_fold(self.flows, fold, n_folds=self.n_folds)
            else:
                made = self._data.make_transfer_fold(self.flows, self.test_flows, fold,
                                                     n_folds=self.n_folds)
            self._folds[fold] = made
        return self._folds[fold]


def train_class_counts(y: np.ndarray, class_names: Sequence[str]) -> dict[str, int]:
    """Training rows per class name."""
    counts = np.bincount(np.asarray(y), minlength=len(class_names))
    return {name: int(counts[i]) for i, name in enumerate(class_names)}


def train_record(result, fold) -> dict:
    """The record of a ``jtcaug.train.RunResult`` on a fold.

    With a test dataset of its own, the test flows whose class training never saw are not
    scored: their count per class goes to ``extra`` as ``test_unseen[<class>]``.
    """
    unseen = getattr(fold, "unseen_test_counts", None) or {}
    return {
        "metrics": result.metrics,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "n_params": result.n_params,
        "wall_time_s": result.wall_time_s,
        "stop_reason": result.stop_reason,
        "history": result.history,
        "class_counts_train": train_class_counts(fold.y_train, fold.class_names),
        "extra": {f"test_unseen[{name}]": int(n) for name, n in unseen.items()},
    }


def train_unit(folds: FoldSource, unit: Unit, return_state: bool = False) -> list:
    """Trains a unit's runs together; per run its ``(fold, RunResult)`` or an exception."""
    import jax

    import jtcaug.train
    from jtcaug.train.stacked import run_stacked

    config = jtcaug.train.TrainConfig(**unit.runs[0].train_kwargs())
    fold_list = [folds.get(spec.fold) for spec in unit.runs]
    keys = [jax.random.PRNGKey(spec.key_seed) for spec in unit.runs]
    results = run_stacked(fold_list, config, keys, return_state=return_state)
    return [r if isinstance(r, BaseException) else (f, r)
            for f, r in zip(fold_list, results, strict=True)]


def trainer_unit_fn(args: argparse.Namespace, n_folds: int) -> UnitFn:
    """Trains each unit's runs in one program and keeps their metrics."""
    folds = FoldSource(args, n_folds)

    def unit_fn(unit: Unit) -> list[RunRecord | BaseException]:
        return [
            out if isinstance(out, BaseException) else RunRecord(train_record(out[1], out[0]))
            for out in train_unit(folds, unit)
        ]

    return unit_fn

