"""Combinations of augmentations and the batch entry point augment_batch."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from jtcaug import aug
from jtcaug.aug.combine import SAMPLE_FUNCTIONS, _apply_one, parse_how
from tests.aug.helpers import random_flows, toy_stats

STATS, _, _ = toy_stats()
# Eager dispatch of vmapped combinations is slow; the eager/jit agreement of every function is
# checked per sample in test_properties, so batches here go through jit.
augment = jax.jit(aug.augment_batch, static_argnames=("how", "alpha"))


def test_parse_how_forms():
    assert parse_how("none").kind == "none"
    assert parse_how("wrap").names == ("wrap",)
    assert parse_how("ensemble").names == aug.DEFAULT_POOL
    assert parse_how("masked_stack").skip_p == 0.5
    spec = parse_how("masked_stack:0.3[wrap,translation]")
    assert spec == ("masked_stack", ("wrap", "translation"), 0.3, 1)
    assert parse_how("rand:3[wrap]") == ("rand", ("wrap",), 0.0, 3)
    assert parse_how("rand").count == 2
    assert parse_how("trivial").names == tuple(SAMPLE_FUNCTIONS)


@pytest.mark.parametrize(
    "how, message",
    [
        ("warp", "unknown augmentation 'warp'"),
        ("ensemble[wrap,foo]", "unknown augmentation 'foo'"),
        ("masked_stack:1.5", "must lie in [0, 1]"),
        ("masked_stack:abc", "is not a number"),
        ("ensemble:0.5", "only masked_stack:P and rand:N"),
        ("rand:0", "N must be a whole number >= 1"),
        ("rand:1.5", "N must be a whole number >= 1"),
        ("random_stack[cutmix,wrap]", "cutmix pairs whole batches"),
        ("ensemble[]", "empty pool"),
    ],
)
def test_bad_how_is_rejected_with_a_clear_message(how, message):
    with pytest.raises(ValueError, match=None) as err:
        aug.validate_how(how)
    assert message in str(err.value)


def test_ensemble_picks_pool_members_uniformly():
    pool = ("horizontal_flip", "window_mask", "gaussian_noise")
    how = f"ensemble[{','.join(pool)}]"
    x = jnp.asarray(random_flows(1, 3, min_len=20)[0])
    ctx = STATS.context(jnp.asarray(0))
    keys = jax.random.split(jax.random.key(42), 600)
    outs = jax.jit(jax.vmap(lambda k: aug.apply_sample(k, x, ctx, how, alpha=1.0)))(keys)
    # Replay each member with the key the combination hands to the chosen member.
    apply_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
    def replay(name):
        member = jax.vmap(lambda k: _apply_one(SAMPLE_FUNCTIONS[name], k, x, 1.0, ctx))
        return np.asarray(jax.jit(member)(apply_keys))

    candidates = np.stack(
        [replay(name) for name in pool],
        axis=1,
    )  # (600, 3, T, 3)
    hits = (candidates == np.asarray(outs)[:, None]).all(axis=(2, 3))
    assert (hits.sum(axis=1) == 1).all()
    counts = hits.sum(axis=0)
    assert scipy_stats.chisquare(counts).pvalue > 0.01, counts


def test_masked_stack_with_p1_is_identity_and_p0_applies_all():
    xb = jnp.asarray(random_flows(16, 4))
    yb = jnp.zeros((16,), jnp.int32)
    out, _ = augment(jax.random.key(0), xb, yb, STATS, how="masked_stack:1.0")
    chex.assert_trees_all_equal(out, xb)
    out0, _ = augment(jax.random.key(0), xb, yb, STATS, how="masked_stack:0.0", alpha=1.0)
    assert not np.array_equal(np.asarray(out0), np.asarray(xb))


def test_random_stack_applies_every_member_in_some_order():
    # Flip and a deterministic-under-fixed-key mask: order matters, and both must be applied.
    x = jnp.asarray(random_flows(1, 2, min_len=20)[0])
    ctx = STATS.context(jnp.asarray(0))
    out = np.asarray(aug.apply_sample(jax.random.key(5), x, ctx, "random_stack[horizontal_flip]"))
    np.testing.assert_array_equal(out, np.asarray(x)[::-1])


@pytest.mark.parametrize(
    "how", ["ensemble", "random_stack", "masked_stack:0.5", "trivial", "rand:2", "cutmix"]
)
def test_combinations_are_reproducible_under_jit(how):
    xb = jnp.asarray(random_flows(8, 1))
    yb = jnp.asarray(np.arange(8) % 3, jnp.int32)
    a = augment(jax.random.key(1), xb, yb, STATS, how=how)
    chex.assert_trees_all_equal(a, augment(jax.random.key(1), xb, yb, STATS, how=how))
    chex.assert_shape(a[0], xb.shape)
    b = augment(jax.random.key(2), xb, yb, STATS, how=how)
    assert not np.array_equal(np.asarray(a[0]), np.asarray(b[0]))


def test_fixed_alpha_differs_from_random_alpha():
    xb = jnp.asarray(random_flows(32, 1))
    yb = jnp.zeros((32,), jnp.int32)
    fixed, _ = augment(jax.random.key(0), xb, yb, STATS, how="bernoulli_mask", alpha=1.0)
    zero, _ = augment(jax.random.key(0), xb, yb, STATS, how="bernoulli_mask", alpha=0.0)
    chex.assert_trees_all_equal(zero, xb)
    assert not np.array_equal(np.asarray(fixed), np.asarray(xb))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 1.5}, "alpha must lie in [0, 1]"),
        ({"alpha": -0.1}, "alpha must lie in [0, 1]"),
        ({"how": "nope"}, "unknown augmentation"),
        ({"xb": np.zeros((4, 20), np.float32)}, "shape (B, T, 3)"),
        ({"xb": np.zeros((4, 20, 3), np.int32)}, "must be a float array"),
        ({"xb": np.zeros((4, 10, 3), np.float32)}, "T=10 positions"),
        ({"yb": np.zeros((5,), np.int32)}, "yb must have shape (4,)"),
        ({"yb": np.zeros((4,), np.float32)}, "integer class ids"),
        ({"yb": np.array([0, 1, 2, 3], np.int32)}, "class ids must lie in [0, 3)"),
    ],
)
def test_bad_batch_input(kwargs, message):
    args = {
        "xb": random_flows(4, 0),
        "yb": np.zeros((4,), np.int32),
        "how": "wrap",
        "alpha": None,
    } | kwargs
    with pytest.raises(ValueError) as err:
        aug.augment_batch(
            jax.random.key(0), jnp.asarray(args["xb"]), jnp.asarray(args["yb"]), STATS,
            args["how"], args["alpha"],
        )
    assert message in str(err.value)


def test_batch_combination_applies_the_per_sample_rule_to_each_sample():
    # augment_batch gives sample b the per-sample combination under the b-th split key.
    how = "random_stack"
    xb = jnp.asarray(random_flows(12, 21))
    yb = jnp.asarray(np.arange(12) % STATS.n_classes, jnp.int32)
    key = jax.random.key(17)
    out, _ = augment(key, xb, yb, STATS, how=how)
    for b, k in enumerate(jax.random.split(key, 12)):
        alone = aug.apply_sample(k, xb[b], STATS.context(yb[b]), how)
        np.testing.assert_array_equal(out[b], alone)
    assert not np.array_equal(out, xb)


def test_masked_stack_applies_members_in_the_pool_order():
    # Flip then a window of copies differs from copies then flip; p = 0 applies both.
    x = jnp.asarray(random_flows(1, 2, min_len=20)[0])
    ctx = STATS.context(jnp.asarray(0))
    key = jax.random.key(3)
    out = aug.apply_sample(key, x, ctx, "masked_stack:0[horizontal_flip,translation]", 1.0)
    k_steps = jax.random.split(key)[1]
    k_flip, k_move = jax.random.split(k_steps, 2)
    flipped = _apply_one(SAMPLE_FUNCTIONS["horizontal_flip"], k_flip, x, 1.0, ctx)
    expected = _apply_one(SAMPLE_FUNCTIONS["translation"], k_move, flipped, 1.0, ctx)
    np.testing.assert_array_equal(out, expected)


def test_trivial_draws_one_member_with_a_random_alpha():
    # With a pool of one, trivial is that member with alpha ~ U(0, 1) whatever alpha says.
    x = jnp.asarray(random_flows(1, 3, min_len=20)[0])
    ctx = STATS.context(jnp.asarray(0))
    key = jax.random.key(8)
    out = aug.apply_sample(key, x, ctx, "trivial[bernoulli_mask]", alpha=0.0)
    replay = _apply_one(SAMPLE_FUNCTIONS["bernoulli_mask"], jax.random.split(key)[1], x, None, ctx)
    np.testing.assert_array_equal(out, replay)
    assert not np.array_equal(out, x)


def test_rand_applies_n_uniform_draws_from_the_pool():
    from scipy import stats as scipy_stats

    pool = ("horizontal_flip", "window_mask")
    x = jnp.asarray(random_flows(1, 3, min_len=20)[0])
    ctx = STATS.context(jnp.asarray(0))
    keys = jax.random.split(jax.random.key(4), 400)
    how = f"rand:2[{','.join(pool)}]"
    outs = jax.jit(jax.vmap(lambda k: aug.apply_sample(k, x, ctx, how, alpha=1.0)))(keys)
    picks = jax.vmap(lambda k: jax.random.randint(jax.random.split(k)[0], (2,), 0, 2))(keys)
    # Replay the drawn pair of members in order.
    for k, p, out in list(zip(keys, np.asarray(picks), np.asarray(outs), strict=True))[:20]:
        y = x
        for step, k_step in enumerate(jax.random.split(jax.random.split(k)[1], 2)):
            y = _apply_one(SAMPLE_FUNCTIONS[pool[p[step]]], k_step, y, 1.0, ctx)
        np.testing.assert_array_equal(out, y)
    counts = np.bincount(np.asarray(picks).ravel(), minlength=2)
    assert scipy_stats.chisquare(counts).pvalue > 0.01, counts
