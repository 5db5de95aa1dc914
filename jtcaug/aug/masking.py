"""Masking family: whole packet columns become all-zero, in place (docs/augmentations.md).

No shift and no IAT recomputation: a masked packet reads as "no packet" (direction 0).
Each function takes one sample ``x (T, 3)`` and returns ``(T, 3)`` of the same dtype.

Example:
    >>> out = window_mask(jax.random.key(0), x, 0.5, ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtcaug.aug._common import uniform_int, valid_length
from jtcaug.aug.stats import AugContext

# [chosen] bernoulli_mask: per-packet masking probability is this fraction of alpha.
BERNOULLI_RATE = 0.5
# [chosen] window_mask: the longest window covers this fraction of the valid length at alpha=1.
WINDOW_MAX_FRACTION = 0.5


def bernoulli_mask(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Zeroes each valid packet independently with probability ``BERNOULLI_RATE * alpha``.

    Args:
      key: PRNG key.
      x: one flow ``(T, 3)``.
      alpha: magnitude in [0, 1].
      ctx: unused (the common signature).

    Returns:
      ``(T, 3)``, same dtype as ``x``.
    """
    del ctx
    valid = jnp.arange(x.shape[0]) < valid_length(x)
    hit = jax.random.bernoulli(key, BERNOULLI_RATE * alpha, (x.shape[0],))
    return jnp.where((valid & hit)[:, None], jnp.zeros((), x.dtype), x)


def window_mask(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Zeroes one window of ``w ~ U{1..max(1, ceil(alpha * L * WINDOW_MAX_FRACTION))}`` valid
    packets starting at ``t0 ~ U{0..L-w}``. Args and returns as :func:`bernoulli_mask`."""
    del ctx
    k_width, k_start = jax.random.split(key)
    length = valid_length(x)
    max_width = jnp.ceil(alpha * WINDOW_MAX_FRACTION * length.astype(jnp.float32))
    width = uniform_int(k_width, 1, jnp.maximum(1, max_width.astype(jnp.int32)))
    start = uniform_int(k_start, 0, length - width)
    t = jnp.arange(x.shape[0])
    masked = (t >= start) & (t < start + width) & (t < length)
    return jnp.where(masked[:, None], jnp.zeros((), x.dtype), x)
