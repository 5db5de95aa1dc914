"""Steering XLA:CPU's fusion decisions without changing any value.

XLA fuses elementwise producers into their consumers. When the consumer reads each element
many times - a per-pair comparison over ``(T, T)``, or a per-flow value broadcast over
``(B, T)`` - the whole producer chain is re-computed for every read. XLA treats reductions as
expensive and materializes them instead, so routing an array through a no-op reduction
computes it once. (XLA:CPU drops ``optimization_barrier``, which would say this directly.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def materialize(v: jnp.ndarray) -> jnp.ndarray:
    """``v`` unchanged, bit for bit, but computed once into a buffer of its own."""
    if v.dtype == jnp.bool_:
        pairs = jnp.stack([v, jnp.zeros_like(v)], axis=-1)
        return jax.lax.reduce(pairs, np.bool_(False), jax.lax.bitwise_or, (v.ndim,))
    if jnp.issubdtype(v.dtype, jnp.floating):
        as_bits = jax.lax.bitcast_convert_type(v, jnp.dtype(f"uint{v.dtype.itemsize * 8}"))
        return jax.lax.bitcast_convert_type(materialize(as_bits), v.dtype)
    pairs = jnp.stack([v, jnp.zeros_like(v)], axis=-1)
    return jax.lax.reduce(pairs, np.zeros((), v.dtype), jax.lax.bitwise_xor, (v.ndim,))


def zero_rows(x: jnp.ndarray, zeroed: jnp.ndarray) -> jnp.ndarray:
    """``jnp.where(zeroed[:, None], 0, x)`` for ``x (T, F)`` and ``zeroed (T,)``, bit for bit,
    without a branch per row. (Kept rows keep every bit, NaN payloads included, where
    XLA:CPU's ``where`` on bfloat16 does not.)

    XLA:CPU compiles that ``where`` into a loop that tests each row's flag and jumps to either
    a copy of the row or a store of zeros (seen in the dumped kernel's disassembly, jax 0.10);
    a random mask makes the jump unpredictable: one such select on ``(1024, 20, 3)`` took
    52 us per call with a new random mask each call against 12 us with the same one. Instead
    the flags become words of all-zero or all-one bits, materialized (so the compiler cannot
    see that they take two values and turn them back into a branch) together with whatever
    computes ``zeroed``, and ``x``'s bits are ANDed with them: a masked value becomes +0.0,
    as from the ``where``. Same-process A/B against the ``where`` (2 cores, 2026-11-28, equal
    outputs checked), per call / in a jitted loop: bernoulli_mask, whose uniform draw is
    ``fused`` into the mask, 1.70x / 1.76x on jax 0.10 and 1.62x / 2.45x on jax 0.12 (its
    loop hoisted into one kernel); window_mask 1.25x / 2.76x and 1.20x / 2.01x.
    """
    word = jnp.dtype(f"uint{x.dtype.itemsize * 8}")
    keep = materialize(zeroed.astype(word) - word.type(1))
    kept_bits = jax.lax.bitcast_convert_type(x, word) & keep[:, None]
    return jax.lax.bitcast_convert_type(kept_bits, x.dtype)
