"""The weighted combination: parsing, bad input, keys, member probabilities, traced weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug import aug
from tests.aug.helpers import random_flows, toy_stats

STATS, _, _ = toy_stats()
augment = jax.jit(aug.augment_batch, static_argnames=("how", "alpha"))
POOL = ("horizontal_flip", "window_mask", "gaussian_noise")


def _batch(n: int, seed: int = 0):
    xb = jnp.asarray(random_flows(n, seed, min_len=20))
    yb = jnp.asarray(np.arange(n) % STATS.n_classes, jnp.int32)
    return xb, yb


def test_weights_are_parsed_and_normalized():
    spec = aug.parse_how("weighted[wrap:3,translation]")
    assert spec.kind == "weighted" and spec.names == ("wrap", "translation")
    assert aug.member_weights("weighted[wrap:3,translation]") == (0.75, 0.25)
    assert aug.member_weights("weighted[wrap:0,translation:2]") == (0.0, 1.0)
    assert aug.parse_how("weighted").names == aug.DEFAULT_POOL
    assert aug.member_weights("weighted") == pytest.approx((1 / 3,) * 3)
    text = aug.weighted_how(("wrap", "translation"), (2.0, 6.0))
    assert text == "weighted[wrap:0.25,translation:0.75]"
    assert aug.member_weights(text) == (0.25, 0.75)


@pytest.mark.parametrize("how, message", [
    ("weighted[wrap:-1,translation]", "must be a finite number >= 0"),
    ("weighted[wrap:inf]", "must be a finite number >= 0"),
    ("weighted[wrap:nan,translation]", "must be a finite number >= 0"),
    ("weighted[wrap:0,translation:0]", "sum to 0"),
    ("weighted[wrap:x]", "weight 'x' of 'wrap' is not a number"),
    ("weighted[wrap:,translation]", "'wrap' has a ':' but no weight"),
    ("weighted[wrap,wrap:2]", "'wrap' appears twice"),
    ("weighted[warp:1]", "unknown augmentation 'warp'"),
    ("weighted[cutmix:1,wrap]", "cutmix pairs whole batches"),
    ("weighted:2[wrap]", "only masked_stack:P and rand:N"),
    ("ensemble[wrap:0.5,translation]", "only a weighted pool takes name:weight"),
    ("weighted[]", "empty pool"),
])
def test_bad_weighted_how_is_rejected_with_one_line(how, message):
    with pytest.raises(ValueError) as err:
        aug.validate_how(how)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_weighted_is_a_reserved_name():
    with pytest.raises(ValueError, match="taken"):
        aug.register("weighted", lambda key, x, alpha, ctx: x, "amplitude")


def test_same_key_same_output_other_key_differs():
    xb, yb = _batch(64)
    how = "weighted[translation:0.5,wrap:0.3,permutation:0.2]"
    a = augment(jax.random.key(1), xb, yb, STATS, how)[0]
    b = augment(jax.random.key(1), xb, yb, STATS, how)[0]
    c = augment(jax.random.key(2), xb, yb, STATS, how)[0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    eager = aug.augment_batch(jax.random.key(1), xb[:8], yb[:8], STATS, how)[0]
    np.testing.assert_allclose(np.asarray(eager), np.asarray(
        augment(jax.random.key(1), xb[:8], yb[:8], STATS, how)[0]), atol=1e-6)


@pytest.mark.parametrize("member", range(3))
def test_one_hot_weights_equal_that_member_alone(member):
    # A one-member ensemble applies its member with the same key split: the weighted
    # combination with all weight on that member must give the same bits.
    xb, yb = _batch(32)
    weights = ",".join(f"{n}:{float(i == member)}" for i, n in enumerate(POOL))
    got = augment(jax.random.key(7), xb, yb, STATS, f"weighted[{weights}]")[0]
    want = augment(jax.random.key(7), xb, yb, STATS, f"ensemble[{POOL[member]}]")[0]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _members_drawn(out, xb, yb, key):
    """Which pool member produced each sample (-1: none or more than one matches)."""
    alone = [np.asarray(augment(key, xb, yb, STATS, f"ensemble[{n}]")[0]) for n in POOL]
    match = np.stack([(a == np.asarray(out)).all(axis=(1, 2)) for a in alone], axis=1)
    return np.where(match.sum(axis=1) == 1, match.argmax(axis=1), -1)


def test_members_are_drawn_with_their_probabilities():
    n, probs = 3000, np.array([0.6, 0.3, 0.1])
    xb, yb = _batch(n, seed=3)
    key = jax.random.key(11)
    how = aug.weighted_how(POOL, probs)
    drawn = _members_drawn(augment(key, xb, yb, STATS, how)[0], xb, yb, key)
    known = drawn[drawn >= 0]
    assert known.size > 0.95 * n
    freq = np.bincount(known, minlength=3) / known.size
    # Binomial sd at n = 3000 is <= 0.009: 0.04 is over 4 sd.
    np.testing.assert_allclose(freq, probs, atol=0.04)


def test_traced_weights_equal_the_same_weights_in_the_string():
    xb, yb = _batch(48)
    probs = np.array([0.2, 0.5, 0.3], np.float32)
    shared = f"weighted[{','.join(POOL)}]"
    traced = jax.jit(lambda k, w: aug.augment_batch(k, xb, yb, STATS, shared, weights=w)[0])
    static = augment(jax.random.key(5), xb, yb, STATS, aug.weighted_how(POOL, probs))[0]
    np.testing.assert_array_equal(np.asarray(traced(jax.random.key(5), probs)),
                                  np.asarray(static))
    # vmapped over weight rows = one call per row.
    rows = np.array([[1, 0, 0], [0, 0, 1], [0.2, 0.5, 0.3]], np.float32)
    batched = jax.vmap(traced, in_axes=(None, 0))(jax.random.key(5), rows)
    for row, out in zip(rows, batched, strict=True):
        np.testing.assert_array_equal(np.asarray(out), np.asarray(traced(jax.random.key(5), row)))


def test_bad_weights_argument_is_rejected():
    xb, yb = _batch(4)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="weighted combination, not 'ensemble'"):
        aug.augment_batch(key, xb, yb, STATS, "ensemble", weights=np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        aug.augment_batch(key, xb, yb, STATS, "weighted", weights=np.ones(2))
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        aug.augment_batch(key, xb, yb, STATS, "weighted", weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="sum to 0"):
        aug.check_weights(np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="not a weighted combination"):
        aug.member_weights("trivial")
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        aug.weighted_how(("wrap", "translation"), (1.0, -1.0))
    with pytest.raises(ValueError, match="2 names but 1 weights"):
        aug.weighted_how(("wrap", "translation"), (1.0,))
