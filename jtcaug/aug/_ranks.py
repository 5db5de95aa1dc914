"""Ranking short vectors of distinct keys: random orders and selections without a sort.

On XLA:CPU a vmapped sort of a few elements costs far more than comparing every pair, so
random orders (and "the k smallest") come from ranks of distinct integer keys.
"""

from __future__ import annotations

import jax.numpy as jnp


def ranks_distinct(keys: jnp.ndarray) -> jnp.ndarray:
    """Rank of each key (0 = smallest) when all keys are distinct: one comparison per pair."""
    return jnp.sum(keys[None, :] < keys[:, None], axis=1, dtype=jnp.int32)


def distinct_keys(words: jnp.ndarray, last: jnp.ndarray | None = None) -> jnp.ndarray:
    """Distinct int32 sort keys from random words ``(n,)``: random high bits, then the index.

    Ranking them gives a uniform random order up to ties among the random bits (25 of them
    for n <= 32), which are broken by index: a bias below ``n^2 / 2^26``. Entries where
    ``last`` is True rank after all others. Signed keys: XLA:CPU compares int32 about 1.5x
    faster than uint32.
    """
    n = words.shape[0]
    index_bits = max(1, (n - 1).bit_length())
    index = jnp.arange(n, dtype=jnp.uint32)
    # Bit 31 clear (non-negative), bit 30 reserved for ``last``, then random bits, the index.
    keys = ((words >> (index_bits + 2)) << index_bits) | index
    if last is not None:
        keys = jnp.where(last, jnp.uint32(1 << 30) | index, keys)
    return keys.astype(jnp.int32)
