"""Helpers shared by the augmentations (jtcaug.aug._common)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug import DIR
from jtcaug.aug._common import uniform_int, valid_length


def _valid_length_numpy(x: np.ndarray) -> int:
    nonzero = np.flatnonzero(x[:, DIR] != 0)
    return int(nonzero[-1]) + 1 if nonzero.size else 0


def test_valid_length_is_the_last_nonzero_direction_plus_one():
    rng = np.random.default_rng(7)
    flows = rng.choice([-1.0, 0.0, 1.0], size=(64, 20)).astype(np.float32)
    flows[0] = 0.0  # no packet at all
    flows[1] = 1.0  # every slot a packet
    flows[2, :-1], flows[2, -1] = 0.0, -1.0  # only the last slot
    flows[3, 1:], flows[3, 0] = 0.0, 1.0  # only the first slot
    flows[4] = -0.0  # negative zero is no packet either
    x = np.zeros((64, 20, 3), np.float32)
    x[..., DIR] = flows
    x[..., 0] = rng.uniform(0.1, 1.0, (64, 20))  # sizes must not count
    expected = [_valid_length_numpy(sample) for sample in x]
    assert expected[:5] == [0, 20, 20, 1, 0]
    vmapped = jax.jit(jax.vmap(valid_length))(jnp.asarray(x))
    assert vmapped.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(vmapped), expected)
    assert [int(valid_length(jnp.asarray(sample))) for sample in x[:8]] == expected[:8]


def test_uniform_int_covers_the_closed_range_uniformly():
    from scipy import stats as scipy_stats

    draws = jax.jit(lambda k: uniform_int(k, 2, 5, (4000,)))(jax.random.key(0))
    assert draws.dtype == jnp.int32
    counts = np.bincount(np.asarray(draws), minlength=6)
    assert counts[:2].sum() == 0 and counts[2:].min() > 0
    assert scipy_stats.chisquare(counts[2:]).pvalue > 0.01, counts


def test_uniform_int_with_traced_bounds_and_an_empty_range_gives_low():
    draw = jax.jit(uniform_int)(jax.random.key(1), jnp.int32(4), jnp.int32(3))
    assert int(draw) == 4
