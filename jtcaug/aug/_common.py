"""Small helpers shared by the augmentations; each works on one sample ``x (T, 3)``.

Shapes stay static so that every augmentation composes with ``jit`` and ``vmap``: a
variable-length edit computes, for each output slot, which input column it shows (or that it
is padding), and gathers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtcaug import DIR, N_FEATURES


def valid_length(x: jnp.ndarray) -> jnp.ndarray:
    """Number of leading real packets ``L``: index of the last non-zero direction + 1.

    Args:
      x: one flow ``(T, 3)``.

    Returns:
      int32 scalar in ``[0, T]``.
    """
    positions = jnp.arange(1, x.shape[0] + 1, dtype=jnp.int32)
    return jnp.max(jnp.where(x[:, DIR] != 0, positions, 0))


def check_sample(x: jnp.ndarray, name: str) -> None:
    """Raises ValueError unless ``x`` is one float flow ``(T, 3)`` (static: runs at trace)."""
    if x.ndim != 2 or x.shape[-1] != N_FEATURES:
        raise ValueError(f"{name}: x must be one sample of shape (T, 3), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name}: x must be a floating array, got dtype {x.dtype}")


def positions(x: jnp.ndarray) -> jnp.ndarray:
    """``(T,)`` int32 ``0..T-1`` for a flow ``x (T, 3)``."""
    return jnp.arange(x.shape[0], dtype=jnp.int32)


def uniform_int(key: jax.Array, low, high, shape: tuple[int, ...] = ()) -> jnp.ndarray:
    """Uniform int32 in the closed range ``[low, high]`` (bounds may be traced).

    Every integer draw in ``jtcaug.aug`` names both ends, as the definitions do
    (``n ~ U{1..N}``); ``high < low`` gives ``low``.

    Example:
      >>> int(uniform_int(jax.random.key(0), 2, 2))
      2
    """
    low = jnp.asarray(low, jnp.int32)
    high = jnp.maximum(jnp.asarray(high, jnp.int32), low)
    return jax.random.randint(key, shape, low, high + 1, dtype=jnp.int32)


def gather_columns(x: jnp.ndarray, src: jnp.ndarray, emit: jnp.ndarray) -> jnp.ndarray:
    """``out[j] = x[src[j]]`` where ``emit[j]``, an all-zero column elsewhere.

    Args:
      x: ``(T, F)``.
      src: ``(T',)`` int source index per output slot (clipped into range).
      emit: ``(T',)`` bool, False for padding.

    Returns:
      ``(T', F)``.
    """
    src = jnp.clip(src, 0, x.shape[0] - 1)
    return jnp.where(emit[:, None], x[src], jnp.zeros((), x.dtype))


def midpoint(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Average of two packet columns (directions +1 and -1 average to 0)."""
    return (a + b) * jnp.asarray(0.5, a.dtype)
