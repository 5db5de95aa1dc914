"""Shipped augmentations against the literal numpy reading in jtcaug.aug.reference.

Exact where no draw is involved (horizontal_flip) or where the draws are handed over (the
TCP-aware helpers); elsewhere in distribution: the shipped function under many keys and the
reference under many numpy draws must give the same support and the same marginals (a
chi-square test on discrete summaries of each output, a KS test on continuous ones).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from jtcaug import DIR, IAT, SIZE
from jtcaug.aug import reference, tcp
from jtcaug.aug.registry import SAMPLE_FUNCTIONS
from tests.aug.helpers import T, random_flows, toy_stats

STATS, _, _ = toy_stats()
CTX = STATS.context(jnp.asarray(1))
N_DRAWS = 1500
P_MIN = 1e-3  # per test; a correct pair fails one in a thousand


def _flows() -> dict[str, np.ndarray]:
    """A mid-length and a full-length flow with distinct columns and real timing."""
    mid = random_flows(1, 31, min_len=13, max_len=13)[0]
    full = random_flows(1, 32, min_len=T)[0]
    return {"L13": mid, "L20": full}


@functools.cache
def _shipped(name: str, alpha: float, flow_id: str) -> np.ndarray:
    x = jnp.asarray(_flows()[flow_id])
    keys = jax.random.split(jax.random.key(1234), N_DRAWS)
    fn = jax.jit(jax.vmap(SAMPLE_FUNCTIONS[name], in_axes=(0, None, None, None)))
    return np.asarray(fn(keys, x, jnp.float32(alpha), CTX))


def _reference(name: str, alpha: float, flow_id: str) -> np.ndarray:
    x = _flows()[flow_id]
    rng = np.random.default_rng(99)
    fn = reference.SAMPLE_FUNCTIONS[name]
    return np.stack([fn(rng, x, alpha, CTX) for _ in range(N_DRAWS)]).astype(np.float32)


def _discrete_summaries(out: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample discrete summaries ``(N,)`` of outputs ``(N, T, 3)`` of one flow ``x``."""
    changed = ~np.isclose(out, x[None], atol=1e-6).all(axis=2)
    first = np.where(changed.any(axis=1), changed.argmax(axis=1), T)
    return {
        "valid length": (out[:, :, DIR] != 0).sum(axis=1),
        "changed columns": changed.sum(axis=1),
        "first changed column": first,
        "changed feature": np.where(
            ~np.isclose(out[..., SIZE], x[None, :, SIZE], atol=1e-6).any(axis=1), 0, 1
        )
        + 2 * ~np.isclose(out[..., IAT], x[None, :, IAT], atol=1e-6).any(axis=1),
    }


def _continuous_summaries(out: np.ndarray) -> dict[str, np.ndarray]:
    return {"size sum": out[..., SIZE].sum(axis=1), "iat sum": out[..., IAT].sum(axis=1)}


def _assert_same_discrete(label: str, a: np.ndarray, b: np.ndarray) -> None:
    values = np.union1d(a, b)
    counts = np.stack([(a[:, None] == values).sum(0), (b[:, None] == values).sum(0)])
    # Same support: an outcome only one side produced must be rare there.
    only_one = (counts == 0).any(axis=0)
    assert counts[:, only_one].max(initial=0) <= 6, f"{label}: support differs: {values}, {counts}"
    common = counts[:, counts.sum(axis=0) >= 20]
    if common.shape[1] >= 2:
        p = scipy_stats.chi2_contingency(common).pvalue
        assert p > P_MIN, f"{label}: chi-square p={p:.2g}, counts {common.tolist()}"


CASES = [
    (name, alpha, flow_id)
    for name in sorted(reference.SAMPLE_FUNCTIONS)
    for alpha, flow_id in ((0.8, "L13"), (0.35, "L20"))
]


@pytest.mark.parametrize(("name", "alpha", "flow_id"), CASES)
def test_shipped_matches_the_reference_in_distribution(name, alpha, flow_id):
    x = _flows()[flow_id]
    shipped, ref = _shipped(name, alpha, flow_id), _reference(name, alpha, flow_id)
    ours, theirs = _discrete_summaries(shipped, x), _discrete_summaries(ref, x)
    for label in ours:
        _assert_same_discrete(f"{name} {label}", ours[label], theirs[label])
    ours, theirs = _continuous_summaries(shipped), _continuous_summaries(ref)
    for label in ours:
        if np.ptp(ours[label]) > 1e-5 or np.ptp(theirs[label]) > 1e-5:
            p = scipy_stats.ks_2samp(ours[label], theirs[label]).pvalue
            assert p > P_MIN, f"{name} {label}: KS p={p:.2g}"
        else:
            np.testing.assert_allclose(ours[label], theirs[label], atol=1e-4)


def test_horizontal_flip_equals_the_reference_exactly():
    flows = random_flows(50, 40, min_len=0)
    flip = jax.jit(jax.vmap(SAMPLE_FUNCTIONS["horizontal_flip"], in_axes=(None, 0, None, None)))
    out = np.asarray(flip(jax.random.key(0), jnp.asarray(flows), jnp.float32(0.5), CTX))
    for i, x in enumerate(flows):
        np.testing.assert_array_equal(out[i], reference.horizontal_flip(None, x, 0.5, CTX))


@pytest.mark.parametrize("dup", [True, False])
def test_tcp_helpers_equal_the_reference_for_the_same_draws(dup):
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, T + 1, 100)
    xs = np.stack([random_flows(1, 100 + i, min_len=T)[0] for i in range(100)])
    t = np.arange(T)
    xs = np.where((t[None, :] < lengths[:, None])[..., None], xs, 0.0).astype(np.float32)
    events = rng.random((100, T)) < 0.25
    burst = rng.integers(tcp.RTO_BURST[0], tcp.RTO_BURST[1] + 1, (100, T)).astype(np.int32)
    rto = jax.jit(jax.vmap(tcp._dup_rto if dup else tcp._perm_rto))
    fast = jax.jit(jax.vmap(tcp._dup_fastretr if dup else tcp._perm_fastretr))
    n = jnp.asarray(lengths, jnp.int32)
    out_rto = np.asarray(rto(jnp.asarray(xs), n, jnp.asarray(events), jnp.asarray(burst)))
    out_fast = np.asarray(fast(jnp.asarray(xs), n, jnp.asarray(events)))
    for i, length in enumerate(lengths):
        expected = reference._columns(xs[i], reference.rto_order(length, events[i], burst[i], dup))
        np.testing.assert_array_equal(out_rto[i], expected, err_msg=f"rto case {i}")
        expected = reference._columns(xs[i], reference.fastretr_order(length, events[i], dup))
        np.testing.assert_array_equal(out_fast[i], expected, err_msg=f"fastretr case {i}")


def test_cutmix_matches_the_reference_in_distribution():
    from jtcaug.aug import sequence

    xb = random_flows(7, 50, min_len=T)
    yb = np.arange(7, dtype=np.int32)
    keys = jax.random.split(jax.random.key(3), 600)
    ours = np.asarray(
        jax.jit(jax.vmap(lambda k: sequence.cutmix(k, jnp.asarray(xb), jnp.asarray(yb))[0]))(keys)
    )
    rng = np.random.default_rng(4)
    theirs = np.stack([reference.cutmix(rng, xb, yb)[0] for _ in range(600)])
    for label, fn in {
        "swapped columns": lambda o: (o != xb[None]).any(axis=3).sum(axis=(1, 2)),
        "untouched samples": lambda o: (o == xb[None]).all(axis=(2, 3)).sum(axis=1),
    }.items():
        _assert_same_discrete(f"cutmix {label}", fn(ours), fn(theirs))


def test_a_wrong_reading_is_caught():
    # The distribution test must be able to fail: translation against window_mask's rule.
    x = _flows()["L13"]
    shipped = _shipped("translation", 0.8, "L13")
    rng = np.random.default_rng(0)
    wrong = np.stack([reference.window_mask(rng, x, 0.8, CTX) for _ in range(N_DRAWS)])
    with pytest.raises(AssertionError):
        ours, theirs = _discrete_summaries(shipped, x), _discrete_summaries(wrong, x)
        for label in ours:
            _assert_same_discrete(label, ours[label], theirs[label])
