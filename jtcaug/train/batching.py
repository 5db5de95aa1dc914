"""Epoch sampling and on-device batch construction for the batching policies (pure).

An epoch is ``steps_per_epoch`` steps of ``per_step`` drawn rows each:

- uniform: a key-driven permutation of the pool (rows sorted by a random word drawn per
  row). The last batch is completed by wrapping around to the start of the same permutation,
  so every row is seen at least once per epoch, every step has the same static shape, and
  BatchNorm never sees padding (at most ``per_step - 1`` rows are seen twice).
- class-weighted: i.i.d. draws with probability proportional to ``1 / n_class`` of the row's
  class, ``steps_per_epoch * per_step`` of them (|pool| draws rounded up to whole steps). A
  draw picks a class uniformly among the classes present, then a row uniformly within it,
  which is the same distribution.

Pools may carry padding rows at their end (folds of different sizes stacked into one
program, ``jtcaug.train.parallel``): only the first ``n_valid`` rows are ever drawn, and
every draw depends on a row's index and the step, never on the padded size, so a padded run
draws exactly the rows the same run draws unpadded.

Policies (docs/augmentations.md, "Batching policies") turn drawn rows into a batch:
``none`` uses them as they are, ``replace:P`` swaps each for its augmentation with
probability P, ``inject:N`` appends N augmented copies of the ``floor(B / (1 + N))`` drawn
originals (originals first, then copy 1 of every original, copy 2, ...), and
``preaugment:M`` enlarges the pool once before training (``preaugment``) and then batches like
``none``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtcaug.aug import Stats, augment_batch
from jtcaug.train.config import Policy


def steps_per_epoch(pool_size, per_step: int):
    """Steps that cover a pool of ``pool_size`` rows once, last step completed by wrapping.

    ``pool_size`` may be a Python int (static layout) or a traced int32 (a padded run's own
    count).
    """
    if isinstance(pool_size, int):
        return max(1, -(-pool_size // per_step))
    return jnp.maximum(1, (pool_size + per_step - 1) // per_step)


def sampling_probabilities(y: jnp.ndarray, n_classes: int) -> jnp.ndarray:
    """``(N,)`` float32 probabilities proportional to ``1 / n_y`` (sum 1)."""
    counts = jnp.bincount(y, length=n_classes).astype(jnp.float32)
    weights = 1.0 / counts[y]
    return weights / jnp.sum(weights)


def _row_words(key: jax.Array, n_rows: int) -> jnp.ndarray:
    """``(n_rows,)`` uint32 random words, row ``i``'s from ``fold_in(key, i)`` alone."""
    return jax.vmap(lambda i: jax.random.bits(jax.random.fold_in(key, i), (), jnp.uint32))(
        jnp.arange(n_rows, dtype=jnp.uint32)
    )


def epoch_indices(
    key: jax.Array,
    y: jnp.ndarray,
    n_classes: int,
    n_steps: int,
    per_step: int,
    class_weighted: bool,
    n_valid: jnp.ndarray | None = None,
) -> jnp.ndarray:
    """Rows of the pool each step of one epoch draws.

    Args:
      key: the epoch's key.
      y: ``(N,)`` int32 labels of the pool.
      n_steps, per_step: static epoch layout.
      class_weighted: i.i.d. class-balanced draws instead of a permutation.
      n_valid: rows ``[0, n_valid)`` are real, the rest padding (default: all ``N``).

    Returns:
      ``(n_steps, per_step)`` int32 indices into the pool's real rows.
    """
    n = y.shape[0]
    rows = jnp.arange(n, dtype=jnp.int32)
    n_valid = jnp.asarray(n if n_valid is None else n_valid, jnp.int32)
    valid = rows < n_valid
    if class_weighted:
        return _class_weighted_indices(key, jnp.where(valid, y, n_classes), n_classes,
                                       n_steps, per_step)
    words = jnp.where(valid, _row_words(key, n), jnp.uint32(0xFFFFFFFF))
    # Stable: padding sorts after every real row, even one whose word is the maximum too.
    order = jnp.argsort(words, stable=True).astype(jnp.int32)
    return order[jnp.arange(n_steps * per_step, dtype=jnp.int32) % n_valid].reshape(
        n_steps, per_step
    )


def _class_weighted_indices(key, labels, n_classes: int, n_steps: int, per_step: int):
    """Class uniformly among those present, then a row uniformly within it; one key a step.

    ``labels`` holds ``n_classes`` on padding rows, which no draw can reach.
    """
    order = jnp.argsort(labels, stable=True).astype(jnp.int32)
    counts = jnp.bincount(labels, length=n_classes + 1)[:n_classes].astype(jnp.int32)
    starts = jnp.cumsum(counts) - counts
    present = jnp.argsort(counts == 0, stable=True).astype(jnp.int32)
    n_present = jnp.sum(counts > 0).astype(jnp.int32)

    def draw(step):
        class_key, row_key = jax.random.split(jax.random.fold_in(key, step))
        cls = present[jax.random.randint(class_key, (per_step,), 0, n_present)]
        within = jax.random.randint(row_key, (per_step,), 0, counts[cls])
        return order[starts[cls] + within]

    return jax.vmap(draw)(jnp.arange(n_steps, dtype=jnp.uint32))


def build_batch(
    key: jax.Array,
    xb: jnp.ndarray,
    yb: jnp.ndarray,
    stats: Stats,
    policy: Policy,
    aug: str,
    alpha: float | None,
    weights: jnp.ndarray | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Applies a batching policy to the drawn rows.

    Args:
      key: the step's key.
      xb: ``(b, T, 3)`` drawn rows, ``b = policy.originals_per_step(B)``.
      yb: ``(b,)`` int32 labels.
      weights: a ``weighted`` aug's ``(n_pool,)`` probabilities in place of its own, or None.

    Returns:
      ``(x (b', T, 3), y (b',))``: ``b' = b * (1 + N)`` for inject:N, else ``b``.
    """
    if policy.kind in ("none", "preaugment"):
        return xb, yb
    if policy.kind == "replace":
        mask_key, aug_key = jax.random.split(key)
        x_aug, y_aug = augment_batch(aug_key, xb, yb, stats, aug, alpha, weights)
        replace = jax.random.bernoulli(mask_key, policy.value, yb.shape)
        return jnp.where(replace[:, None, None], x_aug, xb), jnp.where(replace, y_aug, yb)
    if policy.kind == "inject":
        copies = int(policy.value)
        x_rep = jnp.tile(xb, (copies, 1, 1))
        y_rep = jnp.tile(yb, copies)
        x_aug, y_aug = augment_batch(key, x_rep, y_rep, stats, aug, alpha, weights)
        return jnp.concatenate([xb, x_aug]), jnp.concatenate([yb, y_aug])
    raise ValueError(f"unknown policy kind {policy.kind!r}")


def preaugment(
    key: jax.Array,
    x: jnp.ndarray,
    y: jnp.ndarray,
    stats: Stats,
    copies: int,
    aug: str,
    alpha: float | None,
    weights: jnp.ndarray | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The training set followed by ``copies`` augmented copies of it, made once.

    Args:
      x: ``(N, T, 3)``; y: ``(N,)``.

    Returns:
      ``(x' ((1 + copies) * N, T, 3), y' ((1 + copies) * N,))``, originals first.
    """
    keys = jax.random.split(key, copies)
    x_aug, y_aug = jax.lax.map(
        lambda k: augment_batch(k, x, y, stats, aug, alpha, weights), keys
    )
    return (
        jnp.concatenate([x, x_aug.reshape(-1, *x.shape[1:])]),
        jnp.concatenate([y, y_aug.reshape(-1)]),
    )
