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
