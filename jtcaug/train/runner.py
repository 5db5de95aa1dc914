"""Host shell around the pure training core: validation, device placement, the epoch loop
with progress bar and checkpoints, and the ``RunResult`` with test metrics.

The shell drives ``jtcaug.train.loop`` one epoch per jitted call (one tiny transfer per epoch
to report loss/accuracy and decide on checkpoints); the arithmetic is the same jitted code
whatever the call pattern, so a resumed run is bitwise equal to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jtcaug.backbones import DEFAULT_MODEL
from jtcaug.evaluation.metrics import classification_metrics
from jtcaug.model import LATENT_DIM, count_params, n_classes_of
from jtcaug.train import loop
from jtcaug.train.checkpoint import CheckpointDamaged, Checkpointer
from jtcaug.train.config import TrainConfig
from jtcaug.train.limits import (
    DeviceMemoryError,
    check_limits,
    check_memory,
    footprint,
    is_out_of_memory,
    oversized_batch_warning,
)
from jtcaug.train.state import eval_forward


class TrainingDiverged(RuntimeError):
    """The training loss became NaN/inf; the message names the epoch."""


@dataclasses.dataclass(frozen=True)
class EpochReport:
    """What the host learns after each epoch (given to ``run``'s ``on_epoch`` hook)."""

    epoch: int
    train_loss: float
    val_acc: float
    lr: float
    best_epoch: int
    stopped: bool


@dataclasses.dataclass
class RunResult:
    """The outcome of one run.

    Attributes:
      metrics: test metrics of the best-validation state (``classification_metrics``).
      history: ``train_loss``, ``val_acc``, ``lr``: one float per epoch run.
      epochs_run, best_epoch: 1-based epoch counts.
      best_val_acc: validation accuracy of the best epoch.
      stop_reason: "early_stopping" or "max_epochs".
      n_params: trainable parameter count.
      wall_time_s: wall time of ``run`` (compilation included), summed over resumed sessions.
      config: the ``TrainConfig`` as a dict.
      test_pred: ``(N_test,)`` int32 predictions.
      state: ``{"params", "batch_stats"}`` of the best epoch (on request).
      test_latent: ``(N_test, 128)`` float32 latents of the best state (on request).
    """

    metrics: dict
    history: dict
    epochs_run: int
    best_epoch: int
    best_val_acc: float
    stop_reason: str
    n_params: int
    wall_time_s: float
    config: dict
    test_pred: np.ndarray
    state: dict | None = None
    test_latent: np.ndarray | None = None

    def to_dict(self) -> dict:
        """JSON-ready summary (no arrays besides the metrics' confusion matrix)."""
        return {
            "metrics": self.metrics,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "stop_reason": self.stop_reason,
            "n_params": self.n_params,
            "wall_time_s": self.wall_time_s,
            "config": self.config,
            "history": self.history,
        }


# --- fold validation and placement -------------------------------------------------------


def fold_arrays(fold) -> loop.FoldArrays:
    """Checks a ``jtcaug.data.Fold`` (or anything with its fields) and puts it on device.

    Raises:
      ValueError: one line naming the problem (shapes, dtypes, NaN, labels, one class).
    """
    n_classes = int(fold.n_classes)
    if n_classes < 2:
        raise ValueError(f"the dataset has {n_classes} class(es); training needs at least 2")
    arrays = {}
    t_len = None
    for split in ("train", "val", "test"):
        x = np.asarray(getattr(fold, f"x_{split}"))
        y = np.asarray(getattr(fold, f"y_{split}"))
        if x.ndim != 3 or x.shape[-1] != 3:
            raise ValueError(f"x_{split} must have shape (N, T, 3), got {x.shape}")
        if t_len is not None and x.shape[1] != t_len:
            raise ValueError(f"x_{split} has T={x.shape[1]}, x_train has T={t_len}")
        t_len = x.shape[1]
        if y.shape != x.shape[:1]:
            raise ValueError(f"y_{split} must have shape ({x.shape[0]},), got {y.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"the {split} split is empty")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y_{split} must hold integer labels, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"y_{split} labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"x_{split} contains NaN or infinite values")
        arrays[f"x_{split}"] = x.astype(np.float32)
        arrays[f"y_{split}"] = y.astype(np.int32)
    if np.unique(arrays["y_train"]).size < 2:
        raise ValueError("the training split holds a single class; training needs at least 2")
    sigma_shape = tuple(fold.stats.sigma.shape)
    if sigma_shape != (n_classes, t_len, 3):
        raise ValueError(
            f"fold.stats.sigma has shape {sigma_shape}, expected ({n_classes}, {t_len}, 3)"
        )
    return jax.device_put(loop.FoldArrays(**arrays, stats=fold.stats))


# --- jitted pieces (module level so compilations are reused across runs) -------------------

_init = jax.jit(loop.init_loop_state, static_argnames="config")
_pool = jax.jit(loop.training_pool, static_argnames="config")
_advance = jax.jit(loop.advance, static_argnames=("config", "axis_name"))
_finish = jax.jit(loop.finish, static_argnames=("config", "return_latents"))
_eval = jax.jit(eval_forward, static_argnames=("n_classes", "batch_size"))


# --- the run ------------------------------------------------------------------------------


def run(
    fold,
    config: TrainConfig,
    *,
    key: jax.Array | None = None,
    return_latents: bool = False,
    return_state: bool = False,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Trains ``config.model`` on one fold and evaluates its best-validation state on test.

    Args:
      fold: a ``jtcaug.data.Fold`` (x/y train/val/test, stats, class_names, n_classes).
      config: the run's settings (validated here).
      key: the run's PRNG key; default ``jax.random.PRNGKey(config.seed)``.
      return_latents: also return the test latents ``(N_test, 128)``.
      return_state: also return the best ``{"params", "batch_stats"}``.
      checkpoint_dir: save the loop state there every ``config.checkpoint_every`` epochs,
        at the end, and when interrupted. The directory is created by the first save.
      resume: continue from the newest usable checkpoint in ``checkpoint_dir``: a damaged
        one is moved aside with a warning and the previous one is tried; with none left (or
        none there) the run starts fresh. Without it, an existing checkpoint is an error.
      progress: draw a per-epoch progress bar (loss, val acc, ETA).
      mesh: a 1-d mesh with axis "data" for data-parallel training (``parallel.make_mesh``).
      on_epoch: called on the host after every epoch (logging; raising stops the run, with
        a checkpoint of the last completed epoch).
      warn: receives one-line warnings (a batch larger than the training set, a damaged
        checkpoint); default ``warnings.warn``.

    Raises:
      ValueError: bad config or fold, a checkpoint that belongs to another run (the message
        names the differing settings), or a batch that cannot fit the device's memory
        (``DeviceMemoryError``).
      FileExistsError: ``checkpoint_dir`` holds checkpoints and ``resume`` is False.
      TrainingDiverged: NaN/inf training loss (the last good epoch is checkpointed).
    """
    warn = _default_warn if warn is None else warn
    config.validate()
    data = fold_arrays(fold)
    check_limits(config, int(data.x_train.shape[0]), seeded=key is None)
    key = jax.random.PRNGKey(config.seed) if key is None else key
    advance = _advance
    if mesh is not None:
        from jtcaug.train import parallel

        advance = parallel.data_parallel_advance(mesh)
        data = parallel.replicate(data, mesh)
    meta = {
        "config": config.to_dict(),
        "dataset": str(getattr(fold, "dataset", "")),
        "fold": int(getattr(fold, "fold", -1)),
        "n_train": int(data.x_train.shape[0]),
        "data_sha256": fold_fingerprint(fold),
        "key": np.asarray(loop.raw_key(key)).tolist(),
    }
    started = time.perf_counter()
    ls = _init(key, data, config)
    if mesh is not None:
        ls = parallel.replicate(ls, mesh)
    device = jax.tree_util.tree_leaves(ls)[0].devices().pop()
    if config.parsed_policy.kind == "preaugment":
        check_memory(
            footprint(_pool, ls.key, data, config),
            device,
            f"policy {config.policy} builds a training set that",
            "use fewer pre-augmented copies",
        )
    pool = _pool(ls.key, data, config)
    check_memory(
        footprint(advance, ls, data, pool, config, jnp.ones((), jnp.int32)),
        device,
        f"batch_size {config.batch_size} makes a training step that",
        "use a smaller batch size",
    )
    batch_warning = oversized_batch_warning(config, int(data.x_train.shape[0]))
    if batch_warning:
        warn(batch_warning)
    previous_wall = 0.0
    if checkpoint_dir is None:
        ls = _train_epochs(ls, data, pool, config, advance, None, meta, progress, on_epoch, started)
    else:
        with Checkpointer(checkpoint_dir) as ckpt:
            latest = ckpt.latest_epoch()
            if latest is not None and not resume:
                raise FileExistsError(
                    f"{checkpoint_dir} already holds checkpoints (epoch {latest}); "
                    "pass resume=True to continue them"
                )
            restored = _restore_newest(ckpt, ls, meta, warn) if resume else None
            if restored is not None:
                ls, saved = restored
                previous_wall = float(saved.get("wall_time_s", 0.0))
            meta["previous_wall_time_s"] = previous_wall
            ls = _train_epochs(
                ls, data, pool, config, advance, ckpt, meta, progress, on_epoch, started
            )
    out = _finish(ls, data, config, return_latents)
    wall = previous_wall + time.perf_counter() - started
    return _result(out, fold, config, wall, return_state)


def _train_epochs(ls, data, pool, config, advance, ckpt, meta, progress, on_epoch, started):
    """The host epoch loop; returns the final loop state."""
    one = jnp.ones((), jnp.int32)
    epoch = int(ls.epoch)
    saved_epoch = epoch if ckpt is not None and ckpt.latest_epoch() == epoch else None

    def save(state, at_epoch):
        nonlocal saved_epoch
        if ckpt is None or saved_epoch == at_epoch or at_epoch == 0:
            return
        wall = meta["previous_wall_time_s"] + time.perf_counter() - started
        ckpt.save(at_epoch, state, {**meta, "epoch": at_epoch, "wall_time_s": wall})
        saved_epoch = at_epoch

    bar = tqdm(
        total=config.max_epochs, initial=epoch, disable=not progress, unit="epoch", leave=False
    )
    try:
        stopped = bool(ls.stopped)
        while not stopped:
            try:
                new = advance(ls, data, pool, config, one)
            except Exception as err:
                if is_out_of_memory(err):
                    raise DeviceMemoryError(
                        f"batch_size {config.batch_size} ran out of device memory in epoch "
                        f"{epoch + 1}; use a smaller batch size"
                    ) from None
                raise
            report = jax.device_get(
                (
                    new.epoch,
                    new.stopped,
                    new.diverged_epoch,
                    new.history.train_loss[epoch],
                    new.history.val_acc[epoch],
                    new.history.lr[epoch],
                    new.best_epoch,
                )
            )
            new_epoch, stopped, diverged, loss, val_acc, lr, best_epoch = report
            if diverged:
                save(ls, epoch)
                where = f"; last good checkpoint: epoch {epoch}" if ckpt and epoch else ""
                raise TrainingDiverged(
                    f"training loss is {float(loss)} at epoch {int(diverged)}: run stopped{where}"
                )
            ls, epoch, stopped = new, int(new_epoch), bool(stopped)
            bar.set_postfix(
                loss=f"{float(loss):.4f}", val_acc=f"{float(val_acc):.4f}", refresh=False
            )
            bar.update(1)
            if stopped or epoch % config.checkpoint_every == 0:
                save(ls, epoch)
            if on_epoch is not None:
                on_epoch(
                    EpochReport(
                        epoch, float(loss), float(val_acc), float(lr), int(best_epoch), stopped
                    )
                )
    except BaseException:
        # Interrupted (Ctrl-C, a hook, an error): keep the last completed epoch.
        save(ls, epoch)
        raise
    finally:
        bar.close()
    return ls


# --- resuming -----------------------------------------------------------------------------

# What must match between a checkpoint and the run resuming it.
RUN_IDENTITY = ("config", "dataset", "fold", "n_train", "data_sha256", "key")


def run_differences(saved: dict, current: dict) -> list[str]:
    """The settings in which a saved run (checkpoint meta or metrics record) differs.

    Both dicts may hold any of ``RUN_IDENTITY``; ``config`` is compared field by field.

    Returns:
      Short phrases such as ``"max_epochs: 4 saved, 20 given"``; empty if the runs match.
    """
    differences = []
    for field in RUN_IDENTITY:
        if field not in current:
            continue
        old, new = saved.get(field), current[field]
        if field == "config" and isinstance(old, dict) and isinstance(new, dict):
            # Runs saved before TrainConfig had a model field trained the ResNet-1d.
            old = {"model": DEFAULT_MODEL, **old}
            for name in sorted(set(old) | set(new), key=_config_order(new)):
                if old.get(name, _MISSING) != new.get(name, _MISSING):
                    differences.append(
                        f"{name}: {_show(old.get(name, _MISSING))} saved, "
                        f"{_show(new.get(name, _MISSING))} given"
                    )
        elif field == "data_sha256" and old != new:
            differences.append("the fold's data differ")
        elif field == "key" and old != new:
            differences.append("the run's key differs")
        elif old != new:
            differences.append(f"{field}: {_show(old)} saved, {_show(new)} given")
    return differences


_MISSING = object()


def _config_order(config: dict):
    order = {name: i for i, name in enumerate(config)}
    return lambda name: (order.get(name, len(order)), name)


def _show(value) -> str:
    return "(none)" if value is _MISSING else repr(value) if isinstance(value, str) else f"{value}"


def _restore_newest(ckpt: Checkpointer, like, meta: dict, warn):
    """The newest usable checkpoint as ``(loop_state, saved_meta)``, or None.

    Damaged steps are moved aside with a warning and the next older one is tried; the saved
    settings are compared before the state is read, so another run's checkpoint is named
    as such instead of failing on mismatched array shapes.
    """
    damaged = 0
    for epoch in reversed(ckpt.epochs()):
        try:
            saved = ckpt.restore_meta(epoch)
            _check_same_run(saved, meta, ckpt.directory)
            state, saved = ckpt.restore(epoch, like)
        except CheckpointDamaged as err:
            moved = ckpt.quarantine(epoch)
            damaged += 1
            warn(f"{err}; moved it to {moved.name} and trying the previous checkpoint")
            continue
        return state, saved
    if damaged:
        warn(f"no usable checkpoint left in {ckpt.directory}: starting the run over")
    return None


def _check_same_run(saved: dict, meta: dict, directory) -> None:
    differences = run_differences(saved, meta)
    if differences:
        raise ValueError(
            f"checkpoint in {directory} belongs to another run ({'; '.join(differences)}): "
            "resume with its settings, or start over"
        )


def _default_warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def fold_fingerprint(fold) -> str:
    """SHA-256 of the fold's arrays: a resumed run must see the very same data."""
    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        for name in (f"x_{split}", f"y_{split}"):
            digest.update(np.ascontiguousarray(getattr(fold, name)).tobytes())
    return digest.hexdigest()


def _result(out: loop.RunOutput, fold, config: TrainConfig, wall: float, return_state: bool):
    out = jax.device_get(out)
    epochs = int(out.epochs_run)
    history = {
        name: [float(v) for v in np.asarray(getattr(out.history, name))[:epochs]]
        for name in ("train_loss", "val_acc", "lr")
    }
    y_test = np.asarray(fold.y_test)
    test_pred = np.asarray(out.test_pred)
    metrics = classification_metrics(y_test, test_pred, list(fold.class_names))
    return RunResult(
        metrics=metrics,
        history=history,
        epochs_run=epochs,
        best_epoch=int(out.best_epoch),
        best_val_acc=float(out.best_val_acc),
        stop_reason="max_epochs" if epochs >= config.max_epochs else "early_stopping",
        n_params=count_params(out.best["params"]),
        wall_time_s=wall,
        config=config.to_dict(),
        test_pred=test_pred,
        state=out.best if return_state else None,
        test_latent=None if out.test_latent is None else np.asarray(out.test_latent),
    )


# --- inference ----------------------------------------------------------------------------


def predict(variables: dict, x, batch_size: int = 4096) -> np.ndarray:
    """Eval-mode (running BatchNorm statistics) class predictions.

    Args:
      variables: ``{"params", "batch_stats"}`` of either backbone (e.g. ``RunResult.state``;
        its parameter names say which model it is).
      x: ``(N, T, 3)`` float32.

    Returns:
      ``(N,)`` int32.
    """
    logits, _ = _forward(variables, x, batch_size)
    return np.asarray(jnp.argmax(logits, axis=-1)).astype(np.int32)


def embed(variables: dict, x, batch_size: int = 4096) -> np.ndarray:
    """Eval-mode 128-d latents (the pooled features before the head).

    Args:
      variables: ``{"params", "batch_stats"}`` of either backbone.
      x: ``(N, T, 3)`` float32.

    Returns:
      ``(N, 128)`` float32.
    """
    _, latent = _forward(variables, x, batch_size)
    return np.asarray(latent).reshape(-1, LATENT_DIM)


def _forward(variables, x, batch_size: int):
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"x must have shape (N, T, 3), got {x.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    return _eval(variables, x, n_classes=n_classes_of(variables), batch_size=batch_size)
