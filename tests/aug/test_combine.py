"""Combination policies and the batch entry point (spec section 7, issue 2)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from jtcaug import aug
from jtcaug.aug import _random
from jtcaug.aug.combine import SAMPLE_FUNCTIONS, _apply_one, parse_how
from tests.aug.helpers import random_flows, toy_stats

STATS, _, _ = toy_stats()
# Eager dispatch of vmapped policies is slow; the eager/jit agreement of every function is
# checked per sample in test_properties, so batches here go through jit.
augment = jax.jit(aug.augment_batch, static_argnames=("how", "alpha"))


def test_parse_how_forms():
    assert parse_how("none").kind == "none"
    assert parse_how("wrap").names == ("wrap",)
    assert parse_how("ensemble").names == aug.DEFAULT_POOL
    assert parse_how("masked_stack").skip_p == 0.5
    spec = parse_how("masked_stack:0.3[wrap,translation]")
    assert spec == ("masked_stack", ("wrap", "translation"), 0.3)


@pytest.mark.parametrize(
    "how, message",
    [
        ("warp", "unknown augmentation 'warp'"),
        ("ensemble[wrap,foo]", "unknown augmentation 'foo'"),
        ("masked_stack:1.5", "must lie in [0, 1]"),
        ("masked_stack:abc", "is not a number"),
        ("ensemble:0.5", "only masked_stack"),
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
    # Replay each member with the key the policy hands to the chosen branch.
    apply_keys = jax.vmap(lambda k: _random.split(k)[1])(keys)
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


@pytest.mark.parametrize("how", ["ensemble", "random_stack", "masked_stack:0.5", "cutmix"])
def test_policies_are_reproducible_under_jit(how):
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


@pytest.mark.parametrize(
    "how", ["ensemble", "random_stack", "masked_stack:0.3", "ensemble[horizontal_flip,wrap]"]
)
# (5, 256): one window larger than the batch; (300, 64): several windows per member, the last
# pulled back to fit; (300, 256): one window per member, most pulled back; None: the default
# window, sized from each member's expected share.
@pytest.mark.parametrize(("batch", "window"), [(5, 256), (300, 64), (300, 256), (300, None)])
def test_batch_policies_equal_the_per_sample_policy_bitwise(how, batch, window, monkeypatch):
    from jtcaug.aug import combine

    monkeypatch.setattr(combine, "DISPATCH_WINDOW", window)
    xb = jnp.asarray(random_flows(batch, 21))
    yb = jnp.asarray(np.arange(batch) % STATS.n_classes, jnp.int32)
    key = jax.random.key(17)
    out, _ = jax.jit(lambda k: aug.augment_batch(k, xb, yb, STATS, how))(key)
    per_sample = jax.vmap(lambda k, x, y: combine.apply_sample(k, x, STATS.context(y), how))
    expected = jax.jit(per_sample)(_random.split(key, batch), xb, yb)
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, xb)


def test_select_dispatch_equals_sort_dispatch_bitwise(monkeypatch):
    from jtcaug.aug import combine

    # "select" is vmap(apply_sample), which the test above pins "sort" against for every
    # policy; one policy checks the plumbing (ensemble: a per-sample switch over three).
    how = "ensemble"
    xb = jnp.asarray(random_flows(64, 23))
    yb = jnp.asarray(np.arange(64) % STATS.n_classes, jnp.int32)
    key = jax.random.key(29)
    outs = {}
    for mode in ("sort", "select"):
        monkeypatch.setattr(combine, "POLICY_DISPATCH", mode)
        outs[mode] = np.asarray(jax.jit(lambda k: aug.augment_batch(k, xb, yb, STATS, how)[0])(key))
    np.testing.assert_array_equal(outs["select"], outs["sort"])
    assert not np.array_equal(outs["select"], np.asarray(xb))


def test_auto_dispatch_sorts_on_cpu_and_selects_elsewhere(monkeypatch):
    from jtcaug.aug import combine

    assert combine.POLICY_DISPATCH == "auto"
    for backend, expected in (("cpu", "sort"), ("gpu", "select"), ("tpu", "select")):
        monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
        assert combine.policy_dispatch() == expected
    monkeypatch.setattr(combine, "POLICY_DISPATCH", "select")
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert combine.policy_dispatch() == "select"  # an explicit choice wins
    monkeypatch.setattr(combine, "POLICY_DISPATCH", "sorted")
    with pytest.raises(ValueError, match="POLICY_DISPATCH must be one of auto, sort, select"):
        combine.policy_dispatch()


def test_batch_policy_under_vmap_over_runs_equals_separate_calls(monkeypatch):
    from jtcaug.aug import combine

    # Training runs vmapped over seeds turn the window loops' writes into selects; windows of
    # 4 give each run its own number of windows per member.
    monkeypatch.setattr(combine, "DISPATCH_WINDOW", 4)
    xb = jnp.asarray(random_flows(12, 22))
    yb = jnp.asarray(np.arange(12) % STATS.n_classes, jnp.int32)
    keys = _random.split(jax.random.key(5), 2)
    both = jax.jit(jax.vmap(lambda k: aug.augment_batch(k, xb, yb, STATS, "random_stack")[0]))
    out = both(keys)
    for run in range(2):
        alone, _ = augment(keys[run], xb, yb, STATS, how="random_stack")
        np.testing.assert_array_equal(out[run], alone)


@pytest.mark.parametrize(
    ("batch", "share", "window"),
    [(1024, 1 / 3, 392), (1024, 0.5, 560), (1024, 1.0, 1024), (1024, 0.0, 1), (5, 1 / 3, 5)],
)
def test_dispatch_window_covers_the_expected_share_plus_three_sigma(batch, share, window):
    from jtcaug.aug import combine

    assert combine._window_size(batch, share) == window


def test_counting_sort_is_a_stable_sort_with_its_inverse():
    from jtcaug.aug import combine

    group = np.random.default_rng(3).integers(0, 4, 50).astype(np.int32)
    group[:7] = 2  # a run of one group, to see stability
    by_group = jax.jit(combine._counting_sort, static_argnums=1)(jnp.asarray(group), 5)
    order = np.argsort(group, kind="stable")
    np.testing.assert_array_equal(by_group.order, order)
    np.testing.assert_array_equal(by_group.group, group[order])
    np.testing.assert_array_equal(by_group.position[order], np.arange(50))
    np.testing.assert_array_equal(by_group.sample_group, group)
    counts = np.bincount(group, minlength=5)
    np.testing.assert_array_equal(by_group.counts, counts)
    np.testing.assert_array_equal(by_group.starts, np.cumsum(counts) - counts)
