"""A deterministic stand-in for the trainer: plausible metrics, no training."""

from __future__ import annotations

import zlib

import numpy as np

from experiments.execution import RunRecord, per_run
from experiments.grid import RunSpec
from jtcaug.evaluation.metrics import classification_metrics

CLASSES = ["big", "large", "mid", "small", "tiny"]
CLASS_SIZES = np.array([400, 250, 150, 80, 40])
# Accuracy bonus per augmentation, so gains and ranks have a known order.
BONUS = {"translation": 0.08, "wrap": 0.06, "permutation": 0.05, "horizontal_flip": -0.04}


def fake_output(spec: RunSpec) -> RunRecord:
    """Metrics that depend only on (config, fold): the fold sets the difficulty."""
    rng = np.random.default_rng(zlib.crc32(spec.run_id.encode()))
    train = spec.config.train
    how = train.get("aug", "none")
    base = 0.70 + 0.01 * (spec.fold % 3)
    p_correct = base + (0.0 if how == "none" else BONUS.get(how.split("[")[0], 0.02))
    if train.get("alpha") is not None:
        p_correct += 0.003
    if train.get("class_weighted"):
        p_correct -= 0.01
    y_true = np.repeat(np.arange(len(CLASSES)), CLASS_SIZES // 5)
    correct = rng.random(y_true.size) < p_correct
    y_pred = np.where(correct, y_true, rng.integers(0, len(CLASSES), y_true.size))
    epochs = int(30 + 100 * (p_correct - 0.7) + rng.integers(0, 5))
    record = {
        "metrics": classification_metrics(y_true, y_pred, CLASSES),
        "epochs_run": epochs,
        "best_epoch": epochs - 20,
        "n_params": 1234,
        "wall_time_s": 0.0,
        "history": {"val_acc": [0.5, 0.6]},
        "class_counts_train": dict(zip(CLASSES, (CLASS_SIZES * 7 // 10).tolist(), strict=True)),
    }
    return RunRecord(record=record)


class CountingRunFn:
    """Wraps :func:`fake_output`; optionally interrupts after ``stop_after`` runs."""

    def __init__(self, stop_after: int | None = None, fail_configs: tuple = ()):
        self.calls: list[str] = []
        self.stop_after = stop_after
        self.fail_configs = fail_configs

    def __call__(self, spec: RunSpec) -> RunRecord:
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(spec.run_id)
        if spec.config.name in self.fail_configs:
            raise FloatingPointError(f"NaN loss at epoch 3 in {spec.run_id}")
        return fake_output(spec)


def fake_unit_fn(run_fn=None):
    """A campaign's ``make_unit_fn`` hook that trains nothing."""
    return lambda args, n_folds: per_run(run_fn or CountingRunFn())
