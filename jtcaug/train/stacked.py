"""Several runs of one configuration trained together in one compiled program.

``run_stacked`` takes K folds (of one dataset) and K keys, stacks the folds with padding
(``parallel.stack_folds``), trains all K runs in one ``vmap``ped program spread over the
local devices (``parallel.train_runs``) and returns one ``RunResult`` per run, as
``runner.run`` would for that run alone: each run keeps its own keys, sampling, schedule and
early stopping, and a stopped run's state stops changing while the others go on.

Pre-augmented runs (``preaugment:M``) draw their augmented copies over the whole training
split at once, so they would depend on the padded size: they are trained one per program,
unpadded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug.aug import check_weights, parse_how
from jtcaug.train import loop, parallel
from jtcaug.train.config import TrainConfig
from jtcaug.train.runner import RunResult, TrainingDiverged, _result, fold_arrays


def run_stacked(
    folds: Sequence,
    config: TrainConfig,
    keys: Sequence[jax.Array],
    *,
    devices: Sequence[jax.Device] | None = None,
    return_state: bool = False,
    return_latents: bool = False,
    aug_weights=None,
) -> list[RunResult | TrainingDiverged]:
    """Trains run i on ``folds[i]`` with ``keys[i]``, all runs in one program.

    Args:
      folds: K ``jtcaug.data.Fold`` objects of one dataset (equal T and classes).
      config: the configuration shared by the runs (validated here).
      keys: K PRNG keys (raw ``(2,)`` uint32 or typed), one per run.
      devices: devices to spread the runs over (default all local devices of the default
        backend); K is padded up to a multiple of their number with repeats of the last
        run, whose outputs are dropped.
      return_state, return_latents: as for ``runner.run``.
      aug_weights: with a ``weighted`` ``config.aug``: ``(K, n_pool)`` weights, run i
        drawing its members with row i (normalized) instead of the pool's own; the runs
        still share one program, since the weights are data, not part of the config.

    Returns:
      K entries in order: a ``RunResult`` (``wall_time_s`` is the program's wall time split
      evenly over its runs), or a ``TrainingDiverged`` for a run whose loss stopped being
      finite.
    """
    config.validate()
    if len(folds) != len(keys):
        raise ValueError(f"{len(folds)} folds but {len(keys)} keys")
    if not folds:
        return []
    devices = list(jax.devices() if devices is None else devices)
    started = time.perf_counter()
    raw_keys = [np.asarray(loop.raw_key(jnp.asarray(k))) for k in keys]
    arrays = [jax.device_get(fold_arrays(f)) for f in folds]
    if aug_weights is not None:
        arrays = [a.replace(aug_weights=w) for a, w in
                  zip(arrays, _run_weights(config, aug_weights, len(folds)), strict=True)]
    if config.parsed_policy.kind == "preaugment":
        outputs = [_train(raw_keys[i : i + 1], arrays[i], config, devices[:1], False,
                          return_latents) for i in range(len(folds))]
        outputs = [jax.tree_util.tree_map(lambda a: a[0], out) for out in outputs]
    else:
        n_groups = min(len(devices), len(folds))
        padded = -(-len(folds) // n_groups) * n_groups
        extra = padded - len(folds)
        stacked = parallel.stack_folds(arrays + [arrays[-1]] * extra)
        out = _train(raw_keys + [raw_keys[-1]] * extra, stacked, config, devices[:n_groups],
                     True, return_latents)
        outputs = [jax.tree_util.tree_map(lambda a, i=i: a[i], out) for i in range(len(folds))]
    share = (time.perf_counter() - started) / len(folds)
    results = []
    for fold, out in zip(folds, outputs, strict=True):
        if int(out.diverged_epoch):
            results.append(TrainingDiverged(
                f"training loss is not finite at epoch {int(out.diverged_epoch)}: run stopped"
            ))
            continue
        n_test = int(np.shape(fold.y_test)[0])
        out = out.replace(
            test_pred=out.test_pred[:n_test],
            test_latent=None if out.test_latent is None else out.test_latent[:n_test],
        )
        results.append(_result(out, fold, config, share, return_state))
    return results


def _run_weights(config: TrainConfig, aug_weights, n_runs: int) -> np.ndarray:
    """``(K, n_pool)`` checked, normalized float32 weights of a weighted config's runs."""
    how = parse_how(config.aug)
    if how.kind != "weighted":
        raise ValueError(f"aug_weights need a weighted augmentation, got aug={config.aug!r}")
    weights = check_weights(aug_weights, len(how.names))
    if weights.shape != (n_runs, len(how.names)):
        raise ValueError(f"aug_weights must have shape ({n_runs}, {len(how.names)}), got "
                         f"{weights.shape}")
    return weights


def _train(keys, data, config, devices, data_per_run: bool, return_latents: bool):
    mesh = parallel.make_mesh(runs=len(devices), devices=devices)
    return parallel.train_runs(
        np.stack(keys), data, config, mesh, data_per_run=data_per_run,
        return_latents=return_latents,
    )
