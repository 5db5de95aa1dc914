"""Random draws for the augmentations: jax PRNG keys in, a counter-based integer hash inside.

The augmentations take ordinary ``jax.random`` keys (any implementation, typed or legacy
``uint32[2]``), and the same key still gives bitwise-identical output. Only the expansion of
a key into many random words is done here instead of by ``jax.random``: XLA:CPU runs
threefry at about 19 ns per 32-bit word (1.2 ms for a (1024, 20, 3) batch on the 2-core dev
machine), which made the random bits most of every augmentation's cost, while this hash costs
about 1-2 ns per word.

Word ``i`` of a draw is ``mix(mix(i * PHI + stream ^ s0) ^ s1)``, where ``(s0, s1)`` are the
key's data words and ``mix`` is a 32-bit avalanche finalizer (the "lowbias32" constants); for
a fixed key and stream, counters map to words bijectively. Sub-keys from ``split`` use a stream
of their own. The words are forced into a buffer of their own (``_xla.materialize``): an
all-elementwise hash gets re-computed inside every consumer fusion (e.g. once per packet
position when a per-flow draw is broadcast over ``(B, T)``), which made some augmentations 2x
slower.

This is a statistical generator for data augmentation, not a cryptographic one;
``tests/aug/test_random.py`` checks uniformity, normality, and independence of neighbouring
words and of split keys.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug.aug._ranks import distinct_keys, ranks_distinct
from jtcaug.aug._xla import materialize

_PHI = np.uint32(0x9E3779B9)  # 2^32 / golden ratio: a Weyl step that spreads counters
_MIX_1 = np.uint32(0x7FEB352D)
_MIX_2 = np.uint32(0x846CA68B)
_STREAM_BITS = np.uint32(0x00000000)
_STREAM_SPLIT = np.uint32(0x5BD1E995)
_ONE_BITS = np.uint32(0x3F800000)  # float32 1.0: mantissa filling gives [1, 2)


def _mix(h: jnp.ndarray) -> jnp.ndarray:
    h = h ^ (h >> 16)
    h = h * _MIX_1
    h = h ^ (h >> 15)
    h = h * _MIX_2
    return h ^ (h >> 16)


def _seed_words(key: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Two uint32 seed words from a key; keys wider than 64 bits fold the rest in."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(key)
    else:
        data = jnp.asarray(key)
        if data.dtype != jnp.uint32 or data.ndim != 1 or data.shape[0] < 2:
            raise ValueError(
                f"expected a PRNG key (jax.random.key) or raw uint32 key data, "
                f"got {data.dtype}{list(data.shape)}"
            )
    words = data.reshape(-1)
    s0, s1 = words[0], words[1]
    for extra in range(2, words.shape[0]):
        s0 = _mix(s0 ^ words[extra])
    return s0, s1


def _hash(key: jax.Array, n: int, stream: np.uint32, fused: bool = False) -> jnp.ndarray:
    s0, s1 = _seed_words(key)
    counter = jax.lax.iota(jnp.uint32, n) * _PHI + stream
    words = _mix(_mix(counter ^ s0) ^ s1)
    # Computed once, not inside every consumer (module docstring), unless the caller's
    # consumer is itself computed once and would only pay for a buffer in between.
    return words if fused else materialize(words)


def bits(key: jax.Array, shape: tuple[int, ...] = (), fused: bool = False) -> jnp.ndarray:
    """Uniform random uint32 words of ``shape``.

    ``fused=True`` leaves the hash to be fused into its consumer, which then re-computes it
    on every read: only for a consumer that reads each word once and is materialized itself
    (e.g. ``_xla.zero_rows``'s mask).
    """
    return _hash(key, math.prod(shape), _STREAM_BITS, fused).reshape(shape)


def split(key: jax.Array, num: int = 2) -> jax.Array:
    """``num`` independent keys (same implementation and key type as ``key``)."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    width = jax.random.key_data(key).shape[-1] if typed else key.shape[-1]
    words = _hash(key, num * width, _STREAM_SPLIT).reshape(num, width)
    if typed:
        return jax.random.wrap_key_data(words, impl=jax.random.key_impl(key))
    return words


def _unit_float(words: jnp.ndarray) -> jnp.ndarray:
    """``[0, 1)`` float32 from the top 23 bits of each word."""
    mantissa = (words >> 9) | _ONE_BITS
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)


def uniform(
    key: jax.Array,
    shape: tuple[int, ...] = (),
    dtype=jnp.float32,
    minval=0.0,
    maxval=1.0,
    fused: bool = False,
) -> jnp.ndarray:
    """Uniform floats in ``[minval, maxval)`` (bounds may be traced scalars); ``fused`` as
    in ``bits``."""
    unit = _unit_float(bits(key, shape, fused))
    minval = jnp.asarray(minval, jnp.float32)
    maxval = jnp.asarray(maxval, jnp.float32)
    value = unit * (maxval - minval) + minval
    return jnp.maximum(minval, value).astype(dtype)


def normal(key: jax.Array, shape: tuple[int, ...] = (), dtype=jnp.float32) -> jnp.ndarray:
    """Standard normal floats: the inverse error function of a uniform in (-1, 1)."""
    lowest = np.nextafter(np.float32(-1.0), np.float32(0.0))
    unit = _unit_float(bits(key, shape))
    centered = jnp.maximum(unit * (jnp.float32(1.0) - lowest) + lowest, lowest)
    return (np.float32(math.sqrt(2.0)) * jax.lax.erf_inv(centered)).astype(dtype)


def bernoulli(key: jax.Array, p=0.5, shape: tuple[int, ...] = ()) -> jnp.ndarray:
    """Booleans, True with probability ``p`` (a float or traced scalar/array)."""
    return _unit_float(bits(key, shape)) < jnp.asarray(p, jnp.float32)


def randint(key: jax.Array, shape: tuple[int, ...], low, high) -> jnp.ndarray:
    """Uniform int32 in ``[low, high)`` (traced bounds allowed; ``high <= low`` gives ``low``).

    Scales a 23-bit uniform, so a span ``n`` has relative bias below ``n / 2^23`` - nothing
    for the spans of a 20-packet flow.
    """
    low = jnp.asarray(low, jnp.int32)
    span = jnp.maximum(jnp.asarray(high, jnp.int32) - low, 1)
    unit = _unit_float(bits(key, shape))
    offset = jnp.minimum((unit * span.astype(jnp.float32)).astype(jnp.int32), span - 1)
    return low + offset


def permutation(key: jax.Array, n: int) -> jnp.ndarray:
    """A uniformly random permutation of ``0..n-1`` (int32).

    Short ones (n <= 64, e.g. a policy's order of its pool) are the ranks of distinct random
    keys, one comparison per pair: vmapped over 1024 samples, random_stack's per-sample draws
    took 32 us instead of 200 us with a sort (XLA:CPU, one core). Longer ones sort.
    """
    if n <= _RANKED_PERMUTATION_MAX:
        return ranks_distinct(distinct_keys(bits(key, (n,))))
    words = bits(key, (n,))
    order = jnp.argsort(words, stable=True)
    return order.astype(jnp.int32)


_RANKED_PERMUTATION_MAX = 64
