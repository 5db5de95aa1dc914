"""Masking family (spec section 5): whole packet columns become all-zero, in place.

No shift and no IAT recomputation: a masked packet reads as "no packet" (direction 0).
Each function takes one sample ``x (T, 3)`` and returns ``(T, 3)`` of the same dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtcaug.aug import _random
from jtcaug.aug._common import randint, valid_length
from jtcaug.aug._xla import zero_rows
from jtcaug.aug.stats import AugContext

# [chosen] bernoulli_mask: per-packet masking probability is this fraction of alpha.
BERNOULLI_RATE = 0.5
# [chosen] window_mask: the longest window covers this fraction of the valid length at alpha=1.
WINDOW_MAX_FRACTION = 0.5


def bernoulli_mask(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Masks each valid packet independently with probability ``BERNOULLI_RATE * alpha``."""
    del ctx
    t_len = x.shape[0]
    valid = jnp.arange(t_len) < valid_length(x)
    # The draw is used once, inside zero_rows' materialized mask: no buffer of its own.
    hit = _random.uniform(key, (t_len,), fused=True) < BERNOULLI_RATE * alpha
    return zero_rows(x, valid & hit)


def window_mask(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Masks one contiguous window of ``w ~ U{1..max(1, ceil(alpha*L/2))}`` valid packets."""
    del ctx
    k_width, k_start = _random.split(key)
    t_len = x.shape[0]
    length = valid_length(x)
    max_width = jnp.maximum(
        1, jnp.ceil(alpha * WINDOW_MAX_FRACTION * length.astype(jnp.float32)).astype(jnp.int32)
    )
    width = randint(k_width, 1, max_width)
    start = randint(k_start, 0, jnp.maximum(length - width, 0))
    t = jnp.arange(t_len)
    return zero_rows(x, (t >= start) & (t < start + width) & (t < length))
