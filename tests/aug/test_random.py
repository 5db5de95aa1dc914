"""The augmentations' random draws (jtcaug.aug._random): reproducible and statistically sound.

Seeds are fixed, so the statistical tests are deterministic; thresholds are loose enough
(p > 1e-4) that a correct generator passes them for essentially any seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from jtcaug.aug import _random

N = 1 << 18


def test_same_key_bitwise_equal_different_keys_differ_jit_matches_eager():
    key = jax.random.key(7)
    a = _random.bits(key, (64,))
    np.testing.assert_array_equal(a, _random.bits(key, (64,)))
    np.testing.assert_array_equal(a, jax.jit(_random.bits, static_argnums=1)(key, (64,)))
    b = _random.bits(jax.random.key(8), (64,))
    assert (np.asarray(a) != np.asarray(b)).mean() > 0.95


def test_vmap_over_keys_matches_a_loop():
    keys = _random.split(jax.random.key(3), 5)
    batched = jax.vmap(lambda k: _random.normal(k, (7,)))(keys)
    looped = np.stack([_random.normal(keys[i], (7,)) for i in range(5)])
    np.testing.assert_array_equal(batched, looped)


def test_uniform_is_uniform_on_unit_interval():
    u = np.asarray(_random.uniform(jax.random.key(0), (N,)))
    assert u.dtype == np.float32 and u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=256, range=(0.0, 1.0))[0]
    assert scipy_stats.chisquare(counts).pvalue > 1e-4
    assert scipy_stats.kstest(u, "uniform").pvalue > 1e-4


def test_uniform_honours_traced_bounds():
    draw = jax.jit(lambda k, lo, hi: _random.uniform(k, (1000,), jnp.float32, lo, hi))
    u = np.asarray(draw(jax.random.key(1), jnp.float32(-2.0), jnp.float32(3.0)))
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.3


def test_every_bit_is_fair():
    words = np.asarray(_random.bits(jax.random.key(5), (N,)))
    ones = np.unpackbits(words.view(np.uint8)).reshape(N, 32).sum(axis=0)
    # Binomial(N, 1/2): 5 sigma is ~1280 for N = 2^18.
    assert np.all(np.abs(ones - N / 2) < 5 * np.sqrt(N) / 2), ones


def test_neighbouring_words_are_uncorrelated():
    u = np.asarray(_random.uniform(jax.random.key(11), (N,)), np.float64)
    for lag in (1, 2, 3):
        r = np.corrcoef(u[:-lag], u[lag:])[0, 1]
        assert abs(r) < 5 / np.sqrt(N), (lag, r)
    # Pairs (u[2i], u[2i+1]) fill the unit square evenly (8x8 cells).
    pairs = u.reshape(-1, 2)
    cells = np.histogram2d(pairs[:, 0], pairs[:, 1], bins=8, range=[[0, 1], [0, 1]])[0]
    assert scipy_stats.chisquare(cells.ravel()).pvalue > 1e-4


def test_split_keys_are_distinct_and_independent():
    keys = _random.split(jax.random.key(2), 4096)
    data = np.asarray(jax.random.key_data(keys))
    assert len({tuple(row) for row in data}) == 4096
    # Under vmap each sample draws word 0, 1, ... of its own key: those must look independent.
    first = np.asarray(jax.vmap(lambda k: _random.uniform(k, (2,)))(keys), np.float64)
    counts = np.histogram(first[:, 0], bins=32, range=(0.0, 1.0))[0]
    assert scipy_stats.chisquare(counts).pvalue > 1e-4
    assert abs(np.corrcoef(first[:-1, 0], first[1:, 0])[0, 1]) < 5 / np.sqrt(4096)
    assert abs(np.corrcoef(first[:, 0], first[:, 1])[0, 1]) < 5 / np.sqrt(4096)
    # A parent's draws and its children's draws do not coincide.
    parent = np.asarray(_random.bits(jax.random.key(2), (4096,)))
    child = np.asarray(jax.vmap(lambda k: _random.bits(k, ()))(keys))
    assert (parent == child).mean() < 0.01


def test_normal_is_standard_normal():
    z = np.asarray(_random.normal(jax.random.key(4), (N,)), np.float64)
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 5 / np.sqrt(N) and abs(z.std() - 1.0) < 0.01
    assert scipy_stats.kstest(z, "norm").pvalue > 1e-4


def test_bernoulli_frequency():
    hits = np.asarray(_random.bernoulli(jax.random.key(6), 0.3, (N,)))
    assert hits.dtype == bool
    assert abs(hits.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / N)


def test_randint_range_and_frequencies_with_traced_bounds():
    draw = jax.jit(lambda k, lo, hi: _random.randint(k, (N,), lo, hi))
    v = np.asarray(draw(jax.random.key(9), jnp.int32(3), jnp.int32(10)))
    assert v.dtype == np.int32 and v.min() == 3 and v.max() == 9
    assert scipy_stats.chisquare(np.bincount(v - 3)).pvalue > 1e-4
    empty_span = np.asarray(_random.randint(jax.random.key(9), (10,), 5, 5))
    np.testing.assert_array_equal(empty_span, 5)


def test_permutation_is_a_uniform_permutation():
    perms = np.asarray(jax.vmap(lambda k: _random.permutation(k, 4))(
        _random.split(jax.random.key(12), 24_000)
    ))
    assert (np.sort(perms, axis=1) == np.arange(4)).all()
    codes = perms @ np.array([64, 16, 4, 1])
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 24 and scipy_stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize(
    "key",
    [jax.random.PRNGKey(1), jax.random.key(1, impl="rbg"), jax.random.key(1, impl="unsafe_rbg")],
    ids=["legacy-uint32", "rbg", "unsafe_rbg"],
)
def test_other_key_kinds_are_accepted(key):
    u = np.asarray(_random.uniform(key, (1000,)))
    assert 0.4 < u.mean() < 0.6
    children = _random.split(key, 3)
    assert children.shape[0] == 3 and children.dtype == key.dtype


def test_a_non_key_is_rejected():
    with pytest.raises(ValueError, match="PRNG key"):
        _random.bits(jnp.zeros((2,), jnp.float32), (4,))


def test_ranks_of_distinct_keys_are_uniform_orders_with_last_entries_last():
    from jtcaug.aug._ranks import distinct_keys, ranks_distinct

    last = jnp.array([False, True, False, False, False])
    draw = jax.vmap(lambda k: ranks_distinct(distinct_keys(_random.bits(k, (5,)), last=last)))
    r = np.asarray(draw(_random.split(jax.random.key(13), 24_000)))
    assert (np.sort(r, axis=1) == np.arange(5)).all()
    assert (r[:, 1] == 4).all()
    free = r[:, [0, 2, 3, 4]]
    codes = free @ np.array([64, 16, 4, 1])
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 24 and scipy_stats.chisquare(counts).pvalue > 1e-4
