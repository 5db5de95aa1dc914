"""Index arithmetic shared by the augmentations: valid length, scans, ranks, small gathers.

Every helper here works on one sample ``(T, 3)`` with static shapes, so it composes with
``jit`` and ``vmap``; variable-length edits become masks, cumulative sums, pairwise
comparisons and gathers (XLA:CPU runs these faster than scatters on such short rows).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtcaug import DIR
from jtcaug.aug import _random
from jtcaug.aug._xla import materialize


def valid_length(x: jnp.ndarray) -> jnp.ndarray:
    """Number of leading real packets: index of the last non-zero direction + 1 (int32)."""
    t_len = x.shape[0]
    idx = jnp.arange(1, t_len + 1, dtype=jnp.int32)
    # Fused into the reduction, the strided read of the direction column and the select run
    # in XLA:CPU's scalar reduce loop; materialized first, the select is one elementwise
    # pass and the max reads contiguous words. Under vmap on (1024, 20, 3), horizontal_flip
    # (whose only other kernel is a gather) ran 1.23-1.24x faster in a jitted loop on jax
    # 0.10 and 0.12 (2 cores, 2026-12-01), with all outputs bitwise unchanged.
    return jnp.max(materialize(jnp.where(x[:, DIR] != 0, idx, 0)))


def prefix_sum(v: jnp.ndarray) -> jnp.ndarray:
    """Inclusive prefix sum of a short vector.

    A log-depth associative scan: under vmap on XLA:CPU it runs several times faster than
    ``jnp.cumsum``, which lowers to a reduce-window.
    """
    return jax.lax.associative_scan(jnp.add, v)


def prefix_counts(
    columns: tuple[jnp.ndarray, ...], max_total: int
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Inclusive and exclusive prefix sums, each ``(T, K)``, of K count vectors ``(T,)``
    (int32, non-negative, each summing to at most ``max_total``, a static bound).

    The counts are packed into bit fields of one int32 word and scanned once: no field can
    carry into the next, so every field holds its own exact prefix sum. On XLA:CPU one
    ``(T,)`` scan is cheaper than a ``(T, K)`` one (same-process A/B in commit 49ea317).
    """
    bits = max(1, int(max_total).bit_length())
    if bits * len(columns) > 31:
        counts = jnp.stack(columns, axis=1)
        inclusive = prefix_sum(counts)
        return inclusive, inclusive - counts
    packed = columns[0]
    for i, column in enumerate(columns[1:], start=1):
        packed = packed | (column << (bits * i))
    inclusive = prefix_sum(packed)
    field = (1 << bits) - 1

    def unpack(words: jnp.ndarray) -> jnp.ndarray:
        return jnp.stack([(words >> (bits * i)) & field for i in range(len(columns))], axis=1)

    return unpack(inclusive), unpack(inclusive - packed)


def take_small(v: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
    """``v[index]`` for a short 1-d ``v``, as a compare-and-sum over ``v``'s positions.

    Inside the augmentations XLA fuses a gather with the scans and ranks that produce its
    operands and recomputes them per gathered element; this form measured 1.3x faster for
    the whole of ``permutation`` (one pinned core, vmapped over 1024 flows).
    """
    hit = index[:, None] == jnp.arange(v.shape[0], dtype=index.dtype)[None, :]
    return jnp.sum(jnp.where(hit, v[None, :], jnp.zeros((), v.dtype)), axis=1)


def add_small(index: jnp.ndarray, values: jnp.ndarray, size: int) -> jnp.ndarray:
    """``out = zeros(size).at[index].add(values)`` for short int vectors, as a compare-and-sum.

    Indices outside ``[0, size)`` add nothing. Vmapped over 1024 flows, XLA:CPU runs this
    faster than its scatter-add (same-process A/B in commit f596902).
    """
    hit = index[None, :] == jnp.arange(size, dtype=index.dtype)[:, None]
    return jnp.sum(jnp.where(hit, values[None, :], jnp.zeros((), values.dtype)), axis=1)


def inverse_permutation(perm: jnp.ndarray) -> jnp.ndarray:
    """``inv`` with ``inv[perm[i]] = i`` for a permutation ``perm`` of ``0..n-1`` (int32)."""
    n = perm.shape[0]
    return add_small(perm, jnp.arange(n, dtype=jnp.int32), n)


def rows_to_slots(
    sources: tuple[tuple[jnp.ndarray, tuple[jnp.ndarray, ...]], ...], t_len: int
) -> jnp.ndarray:
    """Places rows into a zero ``(t_len, F)`` array: for each ``(rows (n, F), slot_vectors)``
    in ``sources`` and each ``slot (n,)`` in ``slot_vectors``, ``out[slot[i]] = rows[i]``.

    A row may go to several slots (one per vector), but each slot in ``[0, t_len)`` receives
    at most one row overall; slots outside that range are dropped. Every ``rows`` has the
    same length n.

    Computed the other way round: every output slot finds its source row by a compare-and-sum
    over the candidates, then one gather. Vmapped over 1024 flows, XLA:CPU runs this faster
    than one scatter per vector (same-process A/B in commit 7498ef1). Concatenating wrap's
    two slot vectors into one made XLA re-compute their producers for every compared pair,
    several times slower: hence one compare per vector.
    """
    lengths = {rows.shape[0] for rows, _ in sources}
    if len(lengths) != 1:
        raise ValueError(f"rows_to_slots needs row arrays of one length, got {sorted(lengths)}")
    slot_ids = jnp.arange(t_len, dtype=jnp.int32)[:, None]
    hits = jnp.zeros((t_len, 1), jnp.int32)
    offset = 0
    for rows, slot_vectors in sources:
        source_plus_one = offset + jnp.arange(1, rows.shape[0] + 1, dtype=jnp.int32)
        for slot in slot_vectors:
            hits = hits + jnp.where(slot[None, :] == slot_ids, source_plus_one[None, :], 0)
        offset += rows.shape[0]
    source_plus_one = jnp.sum(hits, axis=1)
    candidates = jnp.concatenate([rows for rows, _ in sources], axis=0)
    return gather_columns(candidates, source_plus_one - 1, source_plus_one > 0)


def gather_columns(x: jnp.ndarray, src: jnp.ndarray, emit: jnp.ndarray) -> jnp.ndarray:
    """``out[j] = x[src[j]]`` where ``emit[j]``, zero elsewhere; ``src`` is clipped into range."""
    src = jnp.clip(src, 0, x.shape[0] - 1)
    return jnp.where(emit[:, None], x[src], jnp.zeros((), x.dtype))


def randint(key: jax.Array, low: jnp.ndarray, high_inclusive: jnp.ndarray) -> jnp.ndarray:
    """Uniform integer in ``[low, high_inclusive]`` with traced bounds (int32)."""
    return _random.randint(
        key, (), jnp.asarray(low, jnp.int32), jnp.asarray(high_inclusive, jnp.int32) + 1
    )


def midpoint(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Average of two packet columns (direction ±1 and ∓1 average to 0)."""
    return (a + b) * jnp.asarray(0.5, a.dtype)
