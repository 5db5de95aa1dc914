"""The pure training core: epochs as ``lax.scan`` over on-device batches, early stopping in a
``lax.while_loop``, and ``train_run``, a pure function of (key, fold arrays, config).

Everything here is traceable: ``train_run`` can be jitted, vmapped over keys (runs) and put
under ``shard_map`` (see ``jtcaug.train.parallel``). The host shell (``jtcaug.train.runner``)
drives the same pieces one epoch at a time to draw a progress bar and save checkpoints.

Early stopping (paper section 4): an epoch *counts as an improvement* only if its validation
accuracy exceeds the reference accuracy by more than ``min_delta`` (the reference is the
accuracy of the last epoch that counted; the first epoch always counts); training stops after
``patience`` epochs in a row without one, or after ``max_epochs``. Independently, the
parameters of the epoch with the highest validation accuracy so far (any strict increase,
earliest on ties) are kept as the *best* state, and those are evaluated on test.

A non-finite mean training loss stops the run: the epoch's update is discarded (the state
stays that of the last good epoch) and ``diverged_epoch`` names the epoch.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jtcaug.train import batching
from jtcaug.train.config import Policy, TrainConfig
from jtcaug.train.state import (
    TrainState,
    create_train_state,
    eval_forward,
    learning_rate_schedule,
    train_step,
)

# Streams derived from a run's key by fold_in, one per purpose.
_INIT, _PREAUGMENT, _EPOCH, _STEP = 0, 1, 2, 3


@struct.dataclass
class FoldArrays:
    """The arrays of one fold, as the jitted core sees them.

    Attributes:
      x_train, x_val, x_test: ``(N_split, T, 3)`` float32 normalized samples.
      y_train, y_val, y_test: ``(N_split,)`` int32 labels in ``[0, C)``.
      stats: ``jtcaug.aug.Stats`` of the training split (sigma ``(C, T, 3)`` fixes C).
      n_train, n_val, n_test: int32 scalars, the real rows of each split when the arrays
        carry padding rows at their end (folds of different sizes stacked into one program,
        ``parallel.stack_folds``); None: every row is real. Padding rows are never drawn
        for training and never counted in accuracies.
      aug_weights: ``(n_pool,)`` float32 member probabilities of the run's ``weighted``
        augmentation, replacing the pool's own (``augment_batch(weights=...)``), or None.
        Carried with the data so that runs differing only in their weights share one
        compiled program, each vmapped run with its own row.
    """

    x_train: jnp.ndarray
    y_train: jnp.ndarray
    x_val: jnp.ndarray
    y_val: jnp.ndarray
    x_test: jnp.ndarray
    y_test: jnp.ndarray
    stats: object
    n_train: jnp.ndarray | None = None
    n_val: jnp.ndarray | None = None
    n_test: jnp.ndarray | None = None
    aug_weights: jnp.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return int(self.stats.sigma.shape[-3])

    @property
    def padded(self) -> bool:
        return self.n_train is not None

    def rows(self, split: str) -> jnp.ndarray:
        """int32 count of the real rows of ``split`` ("train", "val" or "test")."""
        count = getattr(self, f"n_{split}")
        if count is None:
            return jnp.asarray(getattr(self, f"x_{split}").shape[-3], jnp.int32)
        return jnp.asarray(count, jnp.int32)


@struct.dataclass
class History:
    """Per-epoch records, ``(max_epochs,)`` float32, NaN past the epochs run.

    Attributes:
      train_loss: mean cross-entropy over the epoch's steps.
      val_acc: validation accuracy after the epoch.
      lr: learning rate of the epoch's first step.
    """

    train_loss: jnp.ndarray
    val_acc: jnp.ndarray
    lr: jnp.ndarray


@struct.dataclass
class EarlyStopping:
    """Best-state tracking and the early-stopping counter (module docstring for the rule).

    Attributes:
      best_val_acc: highest validation accuracy so far (-1 before the first epoch).
      best_epoch: its 1-based epoch (0 before the first epoch).
      reference_acc: accuracy of the last epoch that counted as an improvement (-inf first).
      bad_epochs: epochs since that one.
      stopped: patience ran out or max_epochs was reached.
    """

    best_val_acc: jnp.ndarray
    best_epoch: jnp.ndarray
    reference_acc: jnp.ndarray
    bad_epochs: jnp.ndarray
    stopped: jnp.ndarray

    @classmethod
    def initial(cls) -> EarlyStopping:
        return cls(
            best_val_acc=jnp.asarray(-1.0, jnp.float32),
            best_epoch=jnp.zeros((), jnp.int32),
            reference_acc=jnp.asarray(-jnp.inf, jnp.float32),
            bad_epochs=jnp.zeros((), jnp.int32),
            stopped=jnp.zeros((), bool),
        )

    def update(
        self, val_acc: jnp.ndarray, epoch: jnp.ndarray, config: TrainConfig
    ) -> tuple[EarlyStopping, jnp.ndarray]:
        """Records epoch ``epoch`` (1-based); returns the new tracker and "is the new best"."""
        is_best = val_acc > self.best_val_acc
        counts = val_acc > self.reference_acc + config.min_delta
        bad_epochs = jnp.where(counts, 0, self.bad_epochs + 1)
        return (
            EarlyStopping(
                best_val_acc=jnp.where(is_best, val_acc, self.best_val_acc),
                best_epoch=jnp.where(is_best, epoch, self.best_epoch),
                reference_acc=jnp.where(counts, val_acc, self.reference_acc),
                bad_epochs=bad_epochs,
                stopped=(bad_epochs >= config.patience) | (epoch >= config.max_epochs),
            ),
            is_best,
        )


@struct.dataclass
class LoopState:
    """Everything that carries from one epoch to the next (what a checkpoint stores).

    Attributes:
      train: the current ``TrainState``.
      best: ``{"params", "batch_stats"}`` of the best-validation epoch so far.
      tracker: best accuracy/epoch and the early-stopping counter.
      epoch: int32, epochs completed.
      diverged_epoch: int32, 1-based epoch whose loss was not finite (0: none).
      history: per-epoch records.
      key: the run's raw uint32 key; every random draw derives from it.
    """

    train: TrainState
    best: dict
    tracker: EarlyStopping
    epoch: jnp.ndarray
    diverged_epoch: jnp.ndarray
    history: History
    key: jnp.ndarray

    @property
    def stopped(self) -> jnp.ndarray:
        return self.tracker.stopped | (self.diverged_epoch > 0)

    @property
    def best_epoch(self) -> jnp.ndarray:
        return self.tracker.best_epoch


@struct.dataclass
class RunOutput:
    """What a finished run returns (leading run axis when vmapped).

    Attributes:
      best: ``{"params", "batch_stats"}`` of the best-validation epoch.
      history: per-epoch records.
      epochs_run, best_epoch, diverged_epoch: int32 scalars (1-based; 0 = none).
      best_val_acc: float32 scalar.
      test_pred: ``(N_test,)`` int32 predictions of the best state.
      test_latent: ``(N_test, 128)`` latents, or None when not requested.
    """

    best: dict
    history: History
    epochs_run: jnp.ndarray
    best_epoch: jnp.ndarray
    best_val_acc: jnp.ndarray
    diverged_epoch: jnp.ndarray
    test_pred: jnp.ndarray
    test_latent: jnp.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    """Static shape facts of a run, derived from the config and the array shapes."""

    n_classes: int
    t_len: int
    policy: Policy
    pool_size: int
    per_step: int
    # Steps of the scanned epoch: enough for the padded pool. A run with fewer real rows
    # takes its own number of steps (``run_steps_per_epoch``); the rest leave it unchanged.
    steps_per_epoch: int


def layout(config: TrainConfig, data: FoldArrays) -> Layout:
    """The run's static layout (steps per epoch, rows drawn per step, ...)."""
    policy = config.parsed_policy
    pool_size = policy.training_set_size(data.x_train.shape[-3])
    per_step = policy.originals_per_step(config.batch_size)
    return Layout(
        n_classes=data.n_classes,
        t_len=data.x_train.shape[-2],
        policy=policy,
        pool_size=pool_size,
        per_step=per_step,
        steps_per_epoch=batching.steps_per_epoch(pool_size, per_step),
    )


def pool_rows(data: FoldArrays, config: TrainConfig) -> jnp.ndarray:
    """int32 count of the real rows of the run's sampling pool."""
    return jnp.asarray(config.parsed_policy.training_set_size(data.rows("train")), jnp.int32)


def run_steps_per_epoch(data: FoldArrays, config: TrainConfig) -> jnp.ndarray:
    """int32 steps of one epoch of this run (its real rows, not the padded shape)."""
    per_step = config.parsed_policy.originals_per_step(config.batch_size)
    return batching.steps_per_epoch(pool_rows(data, config), per_step)


def total_steps(data: FoldArrays, config: TrainConfig) -> jnp.ndarray:
    """int32 steps of the whole run if it never stops early: the cosine decay horizon."""
    return run_steps_per_epoch(data, config) * config.max_epochs


def raw_key(key: jax.Array) -> jnp.ndarray:
    """A raw uint32 key (typed keys unwrapped), so loop states stay plain arrays."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


# --- initialization ---------------------------------------------------------------------


def init_loop_state(key: jax.Array, data: FoldArrays, config: TrainConfig) -> LoopState:
    """Fresh loop state of a run: initialized model, empty history."""
    key = raw_key(key)
    lay = layout(config, data)
    train = create_train_state(
        jax.random.fold_in(key, _INIT), lay.n_classes, lay.t_len, config,
        total_steps(data, config),
    )
    empty = jnp.full((config.max_epochs,), jnp.nan, jnp.float32)
    return LoopState(
        train=train,
        best=train.variables,
        tracker=EarlyStopping.initial(),
        epoch=jnp.zeros((), jnp.int32),
        diverged_epoch=jnp.zeros((), jnp.int32),
        history=History(train_loss=empty, val_acc=empty, lr=empty),
        key=key,
    )


def training_pool(
    key: jnp.ndarray, data: FoldArrays, config: TrainConfig
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The rows epochs sample from: the training split, plus M copies under preaugment:M.

    Deterministic in the run's key, so a resumed run rebuilds the identical pool instead of
    checkpointing it.
    """
    policy = config.parsed_policy
    if policy.kind != "preaugment":
        return data.x_train, data.y_train
    if data.padded:
        # The augmented copies are drawn per batch of the whole split, so they would depend
        # on the padded size; pre-augmented runs are trained unpadded.
        raise ValueError("preaugment:M runs cannot be trained on padded (stacked) folds")
    return batching.preaugment(
        jax.random.fold_in(raw_key(key), _PREAUGMENT),
        data.x_train,
        data.y_train,
        data.stats,
        int(policy.value),
        config.aug,
        config.alpha,
        data.aug_weights,
    )


# --- one epoch --------------------------------------------------------------------------


def accuracy(
    variables: dict, x: jnp.ndarray, y: jnp.ndarray, n_classes: int, chunk: int, n_valid=None
):
    """Eval-mode accuracy (float32 scalar) of ``variables`` on the first ``n_valid`` rows of
    ``(x, y)`` (default: all)."""
    logits, _ = eval_forward(variables, x, n_classes, chunk)
    correct = jnp.argmax(logits, axis=-1) == y
    if n_valid is None:
        return jnp.mean(correct.astype(jnp.float32))
    real = jnp.arange(y.shape[0]) < n_valid
    return jnp.sum((correct & real).astype(jnp.float32)) / n_valid.astype(jnp.float32)


def run_epoch(
    ls: LoopState,
    data: FoldArrays,
    pool: tuple[jnp.ndarray, jnp.ndarray],
    config: TrainConfig,
    axis_name: str | None = None,
) -> tuple[TrainState, jnp.ndarray]:
    """Trains one epoch: sample the pool, ``lax.scan`` the steps.

    The scan has the static ``layout(...).steps_per_epoch`` steps; a padded run with fewer
    real rows takes its own number of steps and the others leave its state unchanged, so
    it trains exactly as it would unpadded. Under data parallelism (``axis_name``) every
    device builds the same full batch (same keys, same augmentations) and trains on its
    equal share of it, so the result equals the single-device run up to reduction order.

    Returns:
      ``(train_state, mean_loss)``.
    """
    lay = layout(config, data)
    pool_x, pool_y = pool
    idx = batching.epoch_indices(
        jax.random.fold_in(jax.random.fold_in(ls.key, _EPOCH), ls.epoch),
        pool_y,
        lay.n_classes,
        lay.steps_per_epoch,
        lay.per_step,
        config.class_weighted,
        n_valid=pool_rows(data, config) if data.padded else None,
    )
    step_key = jax.random.fold_in(ls.key, _STEP)
    run_steps = run_steps_per_epoch(data, config)
    horizon = total_steps(data, config)

    def step(train: TrainState, scanned):
        index, rows = scanned
        xb, yb = batching.build_batch(
            jax.random.fold_in(step_key, train.step),
            pool_x[rows],
            pool_y[rows],
            data.stats,
            lay.policy,
            config.aug,
            config.alpha,
            data.aug_weights,
        )
        if axis_name is not None:
            xb, yb = _device_share(xb, yb, axis_name)
        stepped, loss = train_step(
            train,
            xb,
            yb,
            n_classes=lay.n_classes,
            config=config,
            total_steps=horizon,
            axis_name=axis_name,
        )
        if not data.padded:
            return stepped, loss
        active = index < run_steps
        return _select(active, stepped, train), jnp.where(active, loss, 0.0)

    steps = jnp.arange(lay.steps_per_epoch, dtype=jnp.int32)
    train, losses = jax.lax.scan(step, ls.train, (steps, idx))
    if not data.padded:
        return train, jnp.mean(losses)
    return train, jnp.sum(losses) / run_steps.astype(jnp.float32)


def _device_share(xb, yb, axis_name: str):
    """This device's contiguous, equal share of a batch."""
    n_devices = jax.lax.axis_size(axis_name)
    size = xb.shape[0]
    if size % n_devices:
        raise ValueError(
            f"a step's batch of {size} rows does not split evenly over {n_devices} devices"
        )
    share = size // n_devices
    start = jax.lax.axis_index(axis_name) * share
    return (
        jax.lax.dynamic_slice_in_dim(xb, start, share),
        jax.lax.dynamic_slice_in_dim(yb, start, share),
    )


def epoch_update(
    ls: LoopState,
    data: FoldArrays,
    pool: tuple[jnp.ndarray, jnp.ndarray],
    config: TrainConfig,
    axis_name: str | None = None,
) -> LoopState:
    """One epoch plus validation, best-state tracking, early stopping and divergence check."""
    lay = layout(config, data)
    train, loss = run_epoch(ls, data, pool, config, axis_name)
    val_acc = accuracy(
        train.variables, data.x_val, data.y_val, lay.n_classes, config.eval_batch_size,
        data.n_val,
    )
    epoch = ls.epoch + 1
    tracker, is_best = ls.tracker.update(val_acc, epoch, config)
    lr = learning_rate_schedule(config, total_steps(data, config))(ls.train.step)
    history = History(
        train_loss=ls.history.train_loss.at[ls.epoch].set(loss),
        val_acc=ls.history.val_acc.at[ls.epoch].set(val_acc),
        lr=ls.history.lr.at[ls.epoch].set(jnp.asarray(lr, jnp.float32)),
    )
    advanced = ls.replace(
        train=train,
        best=_select(is_best, train.variables, ls.best),
        tracker=tracker,
        epoch=epoch,
        history=history,
    )
    diverged = ls.replace(
        diverged_epoch=epoch,
        history=ls.history.replace(train_loss=ls.history.train_loss.at[ls.epoch].set(loss)),
    )
    return _select(jnp.isfinite(loss), advanced, diverged)


def _select(pred: jnp.ndarray, on_true, on_false):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


# --- many epochs, the whole run -----------------------------------------------------------


def advance(
    ls: LoopState,
    data: FoldArrays,
    pool: tuple[jnp.ndarray, jnp.ndarray],
    config: TrainConfig,
    n_epochs: jnp.ndarray,
    axis_name: str | None = None,
) -> LoopState:
    """Runs up to ``n_epochs`` (traced int) more epochs, fewer if the run stops first."""
    target = jnp.minimum(ls.epoch + n_epochs, config.max_epochs)

    def cond(state: LoopState):
        return jnp.logical_not(state.stopped) & (state.epoch < target)

    return jax.lax.while_loop(
        cond, lambda state: epoch_update(state, data, pool, config, axis_name), ls
    )


def finish(
    ls: LoopState, data: FoldArrays, config: TrainConfig, return_latents: bool = False
) -> RunOutput:
    """Evaluates the best state on the test split and packs the run's output."""
    logits, latent = eval_forward(ls.best, data.x_test, data.n_classes, config.eval_batch_size)
    return RunOutput(
        best=ls.best,
        history=ls.history,
        epochs_run=ls.epoch,
        best_epoch=ls.tracker.best_epoch,
        best_val_acc=ls.tracker.best_val_acc,
        diverged_epoch=ls.diverged_epoch,
        test_pred=jnp.argmax(logits, axis=-1).astype(jnp.int32),
        test_latent=latent if return_latents else None,
    )


def train_run(
    key: jax.Array,
    data: FoldArrays,
    config: TrainConfig,
    return_latents: bool = False,
    axis_name: str | None = None,
) -> RunOutput:
    """One complete run, a pure function: init, train to the stopping rule, test.

    Args:
      key: the run's PRNG key (raw uint32 ``(2,)`` or typed).
      data: the fold's arrays.
      config: static; ``config.validate()`` it first.
      return_latents: also return the test latents (static).
      axis_name: data-parallel mesh axis when called inside ``shard_map``.

    Jit with ``config``/``return_latents``/``axis_name`` static; vmap over ``key`` (and
    optionally ``data``) for many runs.
    """
    ls = init_loop_state(key, data, config)
    pool = training_pool(ls.key, data, config)
    ls = advance(ls, data, pool, config, jnp.asarray(config.max_epochs, jnp.int32), axis_name)
    return finish(ls, data, config, return_latents)
