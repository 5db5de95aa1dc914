"""Epoch sampling and on-device batch construction for the batching policies (pure).

An epoch is ``steps_per_epoch`` steps of ``per_step`` drawn rows each:

- uniform: a key-driven permutation of the pool. The last batch is completed by wrapping
  around to the start of the same permutation, so every row is seen at least once per epoch,
  every step has the same static shape, and BatchNorm never sees padding (at most
  ``per_step - 1`` rows are seen twice).
- class-weighted: i.i.d. draws with probability proportional to ``1 / n_class`` of the row's
  class, ``steps_per_epoch * per_step`` of them (|pool| draws rounded up to whole steps).

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


def steps_per_epoch(pool_size: int, per_step: int) -> int:
    """Steps that cover a pool of ``pool_size`` rows once, last step completed by wrapping."""
    return max(1, -(-pool_size // per_step))


def sampling_probabilities(y: jnp.ndarray, n_classes: int) -> jnp.ndarray:
    """``(N,)`` float32 probabilities proportional to ``1 / n_y`` (sum 1)."""
    counts = jnp.bincount(y, length=n_classes).astype(jnp.float32)
    weights = 1.0 / counts[y]
    return weights / jnp.sum(weights)


def epoch_indices(
    key: jax.Array,
    y: jnp.ndarray,
    n_classes: int,
    n_steps: int,
    per_step: int,
    class_weighted: bool,
) -> jnp.ndarray:
    """Rows of the pool each step of one epoch draws.

    Args:
      key: the epoch's key.
      y: ``(N,)`` int32 labels of the pool.
      n_steps, per_step: static epoch layout.
      class_weighted: i.i.d. class-balanced draws instead of a permutation.

    Returns:
      ``(n_steps, per_step)`` int32 indices into the pool.
    """
    n = y.shape[0]
    total = n_steps * per_step
    if class_weighted:
        p = sampling_probabilities(y, n_classes)
        idx = jax.random.choice(key, n, (total,), replace=True, p=p)
    else:
        perm = jax.random.permutation(key, n)
        idx = perm[jnp.arange(total) % n]
    return idx.astype(jnp.int32).reshape(n_steps, per_step)


def build_batch(
    key: jax.Array,
    xb: jnp.ndarray,
    yb: jnp.ndarray,
    stats: Stats,
    policy: Policy,
    aug: str,
    alpha: float | None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Applies a batching policy to the drawn rows.

    Args:
      key: the step's key.
      xb: ``(b, T, 3)`` drawn rows, ``b = policy.originals_per_step(B)``.
      yb: ``(b,)`` int32 labels.

    Returns:
      ``(x (b', T, 3), y (b',))``: ``b' = b * (1 + N)`` for inject:N, else ``b``.
    """
    if policy.kind in ("none", "preaugment"):
        return xb, yb
    if policy.kind == "replace":
        mask_key, aug_key = jax.random.split(key)
        x_aug, y_aug = augment_batch(aug_key, xb, yb, stats, aug, alpha)
        replace = jax.random.bernoulli(mask_key, policy.value, yb.shape)
        return jnp.where(replace[:, None, None], x_aug, xb), jnp.where(replace, y_aug, yb)
    if policy.kind == "inject":
        copies = int(policy.value)
        x_rep = jnp.tile(xb, (copies, 1, 1))
        y_rep = jnp.tile(yb, copies)
        x_aug, y_aug = augment_batch(key, x_rep, y_rep, stats, aug, alpha)
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
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The training set followed by ``copies`` augmented copies of it, made once.

    Args:
      x: ``(N, T, 3)``; y: ``(N,)``.

    Returns:
      ``(x' ((1 + copies) * N, T, 3), y' ((1 + copies) * N,))``, originals first.
    """
    keys = jax.random.split(key, copies)
    x_aug, y_aug = jax.lax.map(lambda k: augment_batch(k, x, y, stats, aug, alpha), keys)
    return (
        jnp.concatenate([x, x_aug.reshape(-1, *x.shape[1:])]),
        jnp.concatenate([y, y_aug.reshape(-1)]),
    )
