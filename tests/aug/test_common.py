"""Index helpers shared by the augmentations (jtcaug.aug._common)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug import DIR
from jtcaug.aug._common import add_small, prefix_counts, rows_to_slots, valid_length


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


def _random_counts(seed: int, t_len: int, n_columns: int, high: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high + 1, size=(n_columns, t_len))


@pytest.mark.parametrize(
    ("t_len", "n_columns", "high", "max_total"),
    [
        (20, 3, 2, 40),  # the TCP-aware functions' case: 6-bit fields
        (20, 1, 3, 60),
        (7, 4, 1, 7),  # 3-bit fields, four of them
        (300, 3, 2, 600),  # 10-bit fields: 30 of 31 bits
        (300, 4, 2, 600),  # 40 bits do not fit: the unpacked fallback
    ],
)
def test_prefix_counts_match_numpy_cumsum(t_len, n_columns, high, max_total):
    counts = _random_counts(0, t_len, n_columns, high)
    # Keep every column within the bound the caller promises.
    counts = np.minimum(counts, max_total // t_len)
    columns = tuple(jnp.asarray(c, jnp.int32) for c in counts)
    inclusive, exclusive = jax.jit(prefix_counts, static_argnums=1)(columns, max_total)
    expected = np.cumsum(counts, axis=1).T
    np.testing.assert_array_equal(np.asarray(inclusive), expected)
    np.testing.assert_array_equal(np.asarray(exclusive), expected - counts.T)
    assert inclusive.dtype == jnp.int32 and inclusive.shape == (t_len, n_columns)


def test_prefix_counts_fields_do_not_carry_at_the_bound():
    # Each column reaches exactly max_total = 2**bits - 1 at its end: any carry between the
    # packed fields would corrupt the next column.
    t_len, max_total = 21, 63
    full = jnp.full((t_len,), 3, jnp.int32)
    inclusive, _ = prefix_counts((full, jnp.zeros_like(full), full), max_total)
    np.testing.assert_array_equal(np.asarray(inclusive[-1]), [63, 0, 63])
    np.testing.assert_array_equal(np.asarray(inclusive[:, 1]), np.zeros(t_len))


def test_prefix_counts_vmap_equals_a_loop():
    counts = _random_counts(1, 20, 3, 2)
    batch = np.stack([np.roll(counts, shift, axis=1) for shift in range(5)])
    vmapped = jax.vmap(lambda c: prefix_counts((c[0], c[1], c[2]), 40))(jnp.asarray(batch))
    for i, sample in enumerate(batch):
        single = prefix_counts(tuple(jnp.asarray(c) for c in sample), 40)
        np.testing.assert_array_equal(np.asarray(vmapped[0][i]), np.asarray(single[0]))
        np.testing.assert_array_equal(np.asarray(vmapped[1][i]), np.asarray(single[1]))


def test_add_small_matches_numpy_add_at():
    rng = np.random.default_rng(2)
    index = rng.integers(-2, 23, size=20)  # some indices fall outside [0, 20)
    values = rng.integers(0, 5, size=20)
    expected = np.zeros(20, np.int64)
    inside = (index >= 0) & (index < 20)
    np.add.at(expected, index[inside], values[inside])
    got = jax.jit(add_small, static_argnums=2)(
        jnp.asarray(index, jnp.int32), jnp.asarray(values, jnp.int32), 20
    )
    np.testing.assert_array_equal(np.asarray(got), expected)
    assert got.dtype == jnp.int32


def test_rows_to_slots_matches_numpy_placement():
    rng = np.random.default_rng(3)
    t_len = 20
    first, second = rng.normal(size=(t_len, 3)), rng.normal(size=(t_len, 3))
    # Distinct slots over all three vectors; -1 and values >= t_len must be dropped.
    order = rng.permutation(4 * t_len)[: 3 * t_len] - 5
    slot_a, slot_b, slot_c = (order[i * t_len : (i + 1) * t_len] for i in range(3))
    expected = np.zeros((t_len, 3))
    for rows, slot in ((first, slot_a), (first, slot_b), (second, slot_c)):
        inside = (slot >= 0) & (slot < t_len)
        expected[slot[inside]] = rows[inside]
    got = rows_to_slots(
        (
            (jnp.asarray(first, jnp.float32), (jnp.asarray(slot_a), jnp.asarray(slot_b))),
            (jnp.asarray(second, jnp.float32), (jnp.asarray(slot_c),)),
        ),
        t_len,
    )
    np.testing.assert_array_equal(np.asarray(got), expected.astype(np.float32))
    # Some slots stay empty (zero rows) and some rows are dropped: both paths are exercised.
    assert (expected == 0).all(axis=1).any() and ((order < 0) | (order >= t_len)).any()


def test_rows_to_slots_rejects_row_arrays_of_different_lengths():
    rows = jnp.zeros((4, 3), jnp.float32)
    slot = jnp.arange(4, dtype=jnp.int32)
    with pytest.raises(ValueError, match="one length"):
        rows_to_slots(((rows, (slot,)), (rows[:3], (slot[:3],))), 4)
