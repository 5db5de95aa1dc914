"""Training a backbone (the paper's ResNet-1d or a Transformer, ``jtcaug.backbones``):
config, pure on-device core, multi-device, checkpoints.

Public API:
  ``TrainConfig`` / ``parse_policy``: run settings and batching policies.
  ``run(fold, config, ...) -> RunResult``: one run with progress bar and checkpoints.
  ``train_run(key, fold_arrays, config)``: the pure, vmappable core (``loop``).
  ``train_runs(keys, fold_arrays, config, mesh)``: many runs over a device mesh.
  ``predict`` / ``embed``: eval-mode predictions and 128-d latents.
CLI: ``python -m jtcaug.train --help``.
"""

from jtcaug.train.config import Policy, TrainConfig, parse_policy
from jtcaug.train.loop import FoldArrays, History, LoopState, RunOutput, train_run
from jtcaug.train.parallel import make_mesh, train_runs
from jtcaug.train.runner import (
    EpochReport,
    RunResult,
    TrainingDiverged,
    embed,
    fold_arrays,
    predict,
    run,
)
from jtcaug.train.state import TrainState

__all__ = [
    "EpochReport",
    "FoldArrays",
    "History",
    "LoopState",
    "Policy",
    "RunOutput",
    "RunResult",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "embed",
    "fold_arrays",
    "make_mesh",
    "parse_policy",
    "predict",
    "run",
    "train_run",
    "train_runs",
]
