"""jtcaug.aug._xla: helpers that steer XLA:CPU's code generation must not change a single bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.aug import _random
from jtcaug.aug._xla import materialize, zero_rows

# A quiet NaN with a non-default payload, per format: its bits must come through unchanged.
NAN_WITH_PAYLOAD = {jnp.float32: 0x7FC00123, jnp.bfloat16: 0x7FC1, jnp.float16: 0x7E01}


def _awkward_values(dtype) -> jnp.ndarray:
    """(6, 3) values whose bits a careless rewrite would change: -0.0, a NaN with a payload,
    infinities, subnormals."""
    rows = np.array(
        [
            [-0.0, 0.0, 1.5],
            [np.inf, -np.inf, -2.0],
            [np.nan, 3.0, -0.0],
            [1e-40, -1e-40, 7.0],
            [-1.0, 1.0, 0.25],
            [5.0, -5.0, np.nan],
        ],
        np.float32,
    )
    values = jnp.asarray(rows, dtype)
    word = jnp.dtype(f"uint{values.dtype.itemsize * 8}")
    bits = jax.lax.bitcast_convert_type(values, word).at[2, 0].set(NAN_WITH_PAYLOAD[dtype])
    return jax.lax.bitcast_convert_type(bits, values.dtype)


def _bits(a) -> np.ndarray:
    a = jnp.asarray(a)
    if a.dtype == jnp.bool_:
        return np.asarray(a)
    return np.asarray(jax.lax.bitcast_convert_type(a, jnp.dtype(f"uint{a.dtype.itemsize * 8}")))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_zero_rows_keeps_rows_bit_for_bit_and_zeroes_the_others(dtype):
    x = _awkward_values(dtype)
    for zeroed in (
        np.array([True, False, True, False, True, False]),
        np.zeros(6, bool),
        np.ones(6, bool),
    ):
        expected = np.where(zeroed[:, None], 0, _bits(x))  # +0.0 is all-zero bits
        for got in (zero_rows(x, jnp.asarray(zeroed)), jax.jit(zero_rows)(x, zeroed)):
            assert got.dtype == x.dtype and got.shape == x.shape
            np.testing.assert_array_equal(_bits(got), expected)
        if dtype != jnp.bfloat16:
            # The where it replaces, bit for bit. (On bfloat16, XLA:CPU's where itself
            # rewrites a NaN's payload: 0x7FC1 came out as 0x7FC0.)
            where = jnp.where(zeroed[:, None], jnp.zeros((), x.dtype), x)
            np.testing.assert_array_equal(_bits(zero_rows(x, jnp.asarray(zeroed))), _bits(where))


def test_zero_rows_under_vmap_matches_a_loop():
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(5, 7, 3)), jnp.float32)
    masks = jnp.asarray(rng.random((5, 7)) < 0.5)
    batched = jax.jit(jax.vmap(zero_rows))(xs, masks)
    looped = np.stack([zero_rows(xs[i], masks[i]) for i in range(5)])
    np.testing.assert_array_equal(_bits(batched), _bits(looped))
    # The mask really zeroes whole rows and keeps the others.
    assert (np.asarray(batched)[np.asarray(masks)] == 0).all()
    np.testing.assert_array_equal(
        np.asarray(batched)[~np.asarray(masks)], np.asarray(xs)[~np.asarray(masks)]
    )


@pytest.mark.parametrize("dtype", [jnp.bool_, jnp.int32, jnp.uint32, jnp.float32, jnp.bfloat16])
def test_materialize_is_the_identity(dtype):
    source = _awkward_values(jnp.float32)
    if dtype == jnp.bool_:
        values = source > 0
    elif jnp.issubdtype(dtype, jnp.integer):
        values = jax.lax.bitcast_convert_type(source, jnp.uint32).astype(dtype)
    else:
        values = source.astype(dtype)
    np.testing.assert_array_equal(_bits(materialize(values)), _bits(values))
    np.testing.assert_array_equal(_bits(jax.jit(materialize)(values)), _bits(values))


def test_fused_draws_equal_materialized_ones():
    key = jax.random.key(11)
    np.testing.assert_array_equal(
        _random.bits(key, (4, 9), fused=True), _random.bits(key, (4, 9))
    )
    jitted = jax.jit(lambda k: _random.uniform(k, (33,), fused=True))
    np.testing.assert_array_equal(_bits(jitted(key)), _bits(_random.uniform(key, (33,))))
