"""Batching policies and the epoch sampler: sizes, composition, frequencies."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.aug import augment_batch
from jtcaug.train import Policy
from jtcaug.train.batching import (
    build_batch,
    epoch_indices,
    preaugment,
    sampling_probabilities,
    steps_per_epoch,
)

from .conftest import N_CLASSES, make_tiny_fold


@pytest.fixture(scope="module")
def rows():
    fold = make_tiny_fold(n_train=64, seed=5)
    return jnp.asarray(fold.x_train), jnp.asarray(fold.y_train), fold.stats


def _build(key, xb, yb, stats, policy, aug):
    fn = jax.jit(functools.partial(build_batch, policy=policy, aug=aug, alpha=None))
    return fn(key, xb, yb, stats)


def test_none_keeps_the_drawn_rows(rows):
    xb, yb, stats = rows
    x, y = _build(jax.random.PRNGKey(0), xb, yb, stats, Policy("none"), "none")
    np.testing.assert_array_equal(x, xb)
    np.testing.assert_array_equal(y, yb)


def test_inject_1_is_half_originals_half_their_augmentations(rows):
    xb, yb, stats = rows
    key = jax.random.PRNGKey(1)

    @jax.jit
    def batch_and_reference(key, xb, yb):
        built = build_batch(key, xb, yb, stats, Policy("inject", 1), "translation", None)
        return built, augment_batch(key, xb, yb, stats, "translation")

    (x, y), (expected, _) = batch_and_reference(key, xb, yb)
    b = xb.shape[0]
    assert x.shape == (2 * b, 20, 3) and y.shape == (2 * b,)
    assert x.dtype == jnp.float32 and y.dtype == jnp.int32
    np.testing.assert_array_equal(x[:b], xb)
    np.testing.assert_array_equal(y, np.tile(yb, 2))
    np.testing.assert_array_equal(x[b:], expected)
    assert not np.array_equal(x[b:], xb)  # the copies really are augmented


@pytest.mark.parametrize(("copies", "batch"), [(2, 1024), (8, 1024), (4, 64)])
def test_inject_n_batch_layout(copies, batch):
    policy = Policy("inject", copies)
    b = policy.originals_per_step(batch)
    assert b == batch // (1 + copies)
    xb = jax.ShapeDtypeStruct((b, 20, 3), jnp.float32)
    yb = jax.ShapeDtypeStruct((b,), jnp.int32)
    stats = make_tiny_fold(n_train=8).stats
    x, y = jax.eval_shape(
        lambda k, x, y: build_batch(k, x, y, stats, policy, "wrap", None),
        jax.random.PRNGKey(0),
        xb,
        yb,
    )
    assert x.shape == (b * (1 + copies), 20, 3) and y.shape == (b * (1 + copies),)
    assert x.shape[0] == policy.step_batch_size(batch) <= batch


def test_replace_swaps_each_row_with_probability_p():
    p = 0.3
    fold = make_tiny_fold(n_train=2000, seed=6)
    xb, yb = jnp.asarray(fold.x_train), jnp.asarray(fold.y_train)
    key = jax.random.PRNGKey(3)

    @jax.jit
    def batch_and_reference(key, xb, yb):
        built = build_batch(key, xb, yb, fold.stats, Policy("replace", p), "horizontal_flip", None)
        _, aug_key = jax.random.split(key)
        return built, augment_batch(aug_key, xb, yb, fold.stats, "horizontal_flip")

    (x, y), (flipped, _) = batch_and_reference(key, xb, yb)
    assert x.shape == xb.shape
    np.testing.assert_array_equal(y, yb)
    is_original = np.all(np.asarray(x) == np.asarray(xb), axis=(1, 2))
    is_flipped = np.all(np.asarray(x) == np.asarray(flipped), axis=(1, 2))
    assert np.all(is_original | is_flipped)
    changed = np.any(np.asarray(flipped) != np.asarray(xb), axis=(1, 2))
    share = np.mean(is_flipped[changed] & ~is_original[changed])
    assert abs(share - p) < 0.04


def test_preaugment_appends_m_copies_of_the_training_set(rows):
    xb, yb, stats = rows
    fn = jax.jit(functools.partial(preaugment, copies=3, aug="horizontal_flip", alpha=None))
    x, y = fn(jax.random.PRNGKey(4), xb, yb, stats)
    n = xb.shape[0]
    assert x.shape == (4 * n, 20, 3)
    np.testing.assert_array_equal(x[:n], xb)
    np.testing.assert_array_equal(y, np.tile(yb, 4))
    # horizontal_flip is deterministic: every copy is the flipped training set
    np.testing.assert_array_equal(x[n : 2 * n], x[3 * n :])
    np.testing.assert_array_equal(x[n : 2 * n, :, 1], _flip_valid(np.asarray(xb))[:, :, 1])


_indices = jax.jit(epoch_indices, static_argnums=(2, 3, 4, 5))


def test_steps_per_epoch_rounds_up():
    assert steps_per_epoch(1024, 1024) == 1
    assert steps_per_epoch(1025, 1024) == 2
    assert steps_per_epoch(10, 1024) == 1
    assert steps_per_epoch(70_000, 512) == 137


def test_uniform_epoch_sees_every_row_and_wraps_the_last_batch():
    y = jnp.asarray(np.arange(150) % 3, jnp.int32)
    idx = np.asarray(_indices(jax.random.PRNGKey(0), y, 3, 3, 64, False))
    assert idx.shape == (3, 64) and idx.dtype == np.int32
    flat = idx.reshape(-1)
    np.testing.assert_array_equal(np.sort(flat[:150]), np.arange(150))
    np.testing.assert_array_equal(flat[150:], flat[: 192 - 150])
    other = np.asarray(_indices(jax.random.PRNGKey(1), y, 3, 3, 64, False))
    assert not np.array_equal(idx, other)


def test_class_weighted_sampler_balances_classes():
    counts = np.array([700, 200, 80, 20])
    y = jnp.asarray(np.repeat(np.arange(N_CLASSES), counts), jnp.int32)
    p = np.asarray(sampling_probabilities(y, N_CLASSES))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.bincount(np.asarray(y), weights=p), 0.25, rtol=1e-5)
    idx = np.asarray(_indices(jax.random.PRNGKey(0), y, N_CLASSES, 40, 500, True))
    drawn = np.bincount(np.asarray(y)[idx.reshape(-1)], minlength=N_CLASSES) / idx.size
    np.testing.assert_allclose(drawn, 0.25, atol=0.01)
    # with replacement: the rare class's 20 rows are each drawn many times
    assert np.unique(idx[np.asarray(y)[idx] == 3]).size == 20


def _flip_valid(x: np.ndarray) -> np.ndarray:
    """Reference horizontal flip of each sample's valid prefix (numpy)."""
    out = np.zeros_like(x)
    for i, sample in enumerate(x):
        length = int(np.max(np.nonzero(sample[:, 1])[0], initial=-1)) + 1
        out[i, :length] = sample[:length][::-1]
    return out


@pytest.mark.parametrize("class_weighted", [False, True])
def test_padding_rows_change_no_draw(class_weighted):
    # A padded pool (real rows first) draws exactly the rows the unpadded pool draws.
    y = jnp.asarray(np.arange(150) % 3, jnp.int32)
    padded = jnp.concatenate([y, jnp.zeros(106, jnp.int32)])
    key = jax.random.PRNGKey(5)
    alone = _indices(key, y, 3, 3, 64, class_weighted)
    inside = epoch_indices(key, padded, 3, 4, 64, class_weighted, n_valid=jnp.int32(150))
    np.testing.assert_array_equal(inside[:3], alone)
    assert int(inside.max()) < 150
