"""Sequence family, TCP-aware functions included: exact semantics on hand-built flows.

Test flows have pairwise distinct columns, so every output column can be traced back to the
input column it came from (or recognized as a midpoint / padding).
"""

from __future__ import annotations

import functools
import itertools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug import DIR, IAT, SIZE
from jtcaug.aug import reference, tcp
from jtcaug.aug import sequence as seq
from jtcaug.aug.stats import AugContext

T = 20
PER_SAMPLE = (
    "horizontal_flip",
    "interpolation",
    "packet_loss",
    "translation",
    "wrap",
    "permutation",
    "dup_rto",
    "dup_fastretr",
    "perm_rto",
    "perm_fastretr",
)
TCP_AWARE = ("dup_rto", "dup_fastretr", "perm_rto", "perm_fastretr")


# --- Builders ----------------------------------------------------------------------------------


def make_flow(length: int, t_len: int = T) -> np.ndarray:
    """``(t_len, 3)`` float32 flow with distinct columns on ``[0, length)``, zeros after."""
    t = np.arange(t_len)
    x = np.stack([(t + 1) / 32.0, np.where(t % 3 == 1, -1.0, 1.0), (t + 1) / 64.0], axis=1).astype(
        np.float32
    )
    x[length:] = 0.0
    return x


def make_ctx(iat_q99: float = 1.0, t_len: int = T) -> AugContext:
    return AugContext(
        sigma=jnp.zeros((t_len, 3), jnp.float32),
        sigma_global=jnp.zeros((3,), jnp.float32),
        iat_q99=jnp.asarray(iat_q99, jnp.float32),
    )


def columns(x: np.ndarray, idx: list[int], t_len: int = T) -> np.ndarray:
    """The expected output: ``x[idx]`` truncated to ``t_len`` and zero-padded."""
    out = np.zeros((t_len, 3), np.float32)
    idx = idx[:t_len]
    out[: len(idx)] = x[idx]
    return out


def source_index(out, x) -> list[int]:
    """Per output column: index of the equal input column, -1 for padding, -2 for neither."""
    out, x = np.asarray(out), np.asarray(x)
    result = []
    for col in out:
        if not col.any():
            result.append(-1)
            continue
        hits = np.flatnonzero((x == col).all(axis=1))
        result.append(int(hits[0]) if len(hits) else -2)
    return result


def emitted(out) -> list[int]:
    """Source indices without the padding tail."""
    return [i for i in out if i != -1]


def _fn(name: str):
    """A public function or private helper of the sequence or TCP-aware module."""
    return getattr(tcp if hasattr(tcp, name) else seq, name)


# Every vmapped call uses this batch size, so each function compiles once per test session.
N_KEYS = 256


@functools.cache
def batched(name: str, **kwargs):
    """``jit(vmap(fn))`` over all four arguments."""
    return jax.jit(jax.vmap(functools.partial(_fn(name), **kwargs)))


@functools.cache
def jitted(name: str, static_argnums: tuple[int, ...] = ()):
    """``jit`` of a public function or private helper of the module, compiled once."""
    return jax.jit(_fn(name), static_argnums=static_argnums)


def keys(n: int, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.PRNGKey(seed), n)


def run_over_keys(name: str, x: np.ndarray, alpha: float, ctx=None, **kwargs) -> np.ndarray:
    """``(N_KEYS, T, 3)``: ``name`` applied to one flow with N_KEYS different keys."""
    ctx = make_ctx() if ctx is None else ctx
    xs = jnp.broadcast_to(jnp.asarray(x), (N_KEYS, *x.shape))
    alphas = jnp.full((N_KEYS,), alpha, jnp.float32)
    ctxs = jax.tree.map(lambda a: jnp.broadcast_to(a, (N_KEYS, *a.shape)), ctx)
    return np.asarray(batched(name, **kwargs)(keys(N_KEYS), xs, alphas, ctxs))


def assert_no_holes(out: np.ndarray) -> None:
    """Real columns form a prefix: nothing non-zero after the first all-zero column."""
    nonzero = np.asarray(out).any(axis=-1)
    first_zero = np.argmin(nonzero) if not nonzero.all() else len(nonzero)
    assert not nonzero[first_zero:].any(), f"hole in output columns: {nonzero.astype(int)}"


# --- Horizontal flip -------------------------------------------------------------------------


def test_horizontal_flip_reverses_the_valid_prefix_only():
    x = make_flow(7)
    out = seq.horizontal_flip(jax.random.PRNGKey(0), jnp.asarray(x), 0.5, make_ctx())
    chex.assert_trees_all_equal(np.asarray(out), columns(x, [6, 5, 4, 3, 2, 1, 0]))


@pytest.mark.parametrize("length", [0, 1, 2, 13, T])
def test_horizontal_flip_twice_is_identity(length):
    x = jnp.asarray(make_flow(length))
    key, ctx = jax.random.PRNGKey(1), make_ctx()
    twice = seq.horizontal_flip(key, seq.horizontal_flip(key, x, 0.3, ctx), 0.7, ctx)
    chex.assert_trees_all_equal(twice, x)


# --- Interpolation ---------------------------------------------------------------------------


def densified(x: np.ndarray, length: int) -> np.ndarray:
    """Reference: x[0], mid(0,1), x[1], ..., x[L-1] (2L-1 rows)."""
    rows = []
    for t in range(length):
        rows.append(x[t])
        if t < length - 1:
            rows.append((x[t] + x[t + 1]) / 2)
    return np.array(rows, np.float32).reshape(-1, 3)


def test_interpolation_window_of_the_densified_flow():
    x = make_flow(12)
    out = np.asarray(jitted("_interpolate")(jnp.asarray(x), 12, 3))
    np.testing.assert_array_equal(out, densified(x, 12)[3 : 3 + T])
    # Row 0 is the midpoint of x[1] (dir -1) and x[2] (dir +1): direction averages to 0.
    np.testing.assert_array_equal(out[0], [(2 + 3) / 64.0, 0.0, (2 + 3) / 128.0])
    np.testing.assert_array_equal(out[1], x[2])


def test_interpolation_short_flow_is_densified_and_repadded():
    x = make_flow(5)
    expected = np.zeros((T, 3), np.float32)
    expected[:9] = densified(x, 5)
    # 2L-1 = 9 <= T: the start is always 0, whatever the key.
    out = run_over_keys("interpolation", x, 0.5)
    np.testing.assert_array_equal(out, np.broadcast_to(expected, out.shape))


def test_interpolation_start_covers_its_range():
    x = make_flow(15)  # 2L-1 = 29 values, so s ~ U{0..9}
    dense = densified(x, 15)
    out = run_over_keys("interpolation", x, 0.5)
    starts = set()
    for sample in out:
        hits = [s for s in range(10) if np.array_equal(sample, columns(dense, list(range(s, 29))))]
        assert len(hits) == 1
        starts.add(hits[0])
    assert starts == set(range(10))


# --- Translation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "n", "t", "left", "expected"),
    [
        (10, 2, 3, True, [0, 1, 2, 5, 6, 7, 8, 9]),  # drop x[3], x[4]
        (10, 3, 9, True, [0, 1, 2, 3, 4, 5, 6, 7, 8]),  # only x[9] exists to drop
        (10, 2, 3, False, [0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9]),  # two copies of x[3]
        (T, 3, 18, False, list(range(18)) + [18, 18]),  # pushed past T: x[19] and copies dropped
        (T, 1, 0, False, [0] + list(range(T - 1))),
    ],
)
def test_translate_moves_columns(length, n, t, left, expected):
    x = make_flow(length)
    out = jitted("_translate")(jnp.asarray(x), length, n, t, left)
    chex.assert_trees_all_equal(np.asarray(out), columns(x, expected))


@functools.cache
def every_translation(length: int) -> dict[tuple[int, bool], list[bytes]]:
    """All outputs of ``_translate`` on ``make_flow(length)`` by (n, left), n up to 5."""
    combos = [(n, t, left) for n in range(1, 6) for t in range(length) for left in (True, False)]
    n_arr, t_arr, left_arr = (jnp.asarray(c) for c in zip(*combos, strict=True))
    every = jax.jit(jax.vmap(seq._translate, in_axes=(None, None, 0, 0, 0)))
    outs = np.asarray(every(jnp.asarray(make_flow(length)), length, n_arr, t_arr, left_arr))
    by_draw = {}
    for (n, _, left), out in zip(combos, outs, strict=True):
        by_draw.setdefault((n, left), []).append(out.tobytes())
    return by_draw


@pytest.mark.parametrize(("alpha", "n_max"), [(0.1, 1), (0.2, 2), (0.5, 4), (0.95, 5)])
def test_translation_draws_stay_in_the_spec_ranges(alpha, n_max):
    length = 12
    x = make_flow(length)
    allowed = {}
    for (n, left), outputs in every_translation(length).items():
        if n <= n_max:
            for out in outputs:
                allowed.setdefault(out, set()).add((n, left))
    seen = set()
    for sample in run_over_keys("translation", x, alpha):
        assert sample.tobytes() in allowed, "output is no translation with allowed (n, t, side)"
        seen |= allowed[sample.tobytes()]
    assert {n for n, _ in seen} == set(range(1, n_max + 1))
    assert {left for _, left in seen} == {True, False}


# --- Wrap --------------------------------------------------------------------------------------


def test_wrap_applies_keep_interpolate_discard():
    x = make_flow(6)
    keep, interp, discard = seq._KEEP, seq._INTERPOLATE, seq._DISCARD
    choice = jnp.array([keep, interp, discard, keep, interp, interp] + [interp] * 14, jnp.int32)
    out = np.asarray(jitted("_wrap")(jnp.asarray(x), 6, choice))
    # Interpolating the last packet (t = L-1) emits it alone; positions >= L emit nothing.
    rows = [x[0], x[1], (x[1] + x[2]) / 2, x[3], x[4], (x[4] + x[5]) / 2, x[5]]
    expected = np.zeros((T, 3), np.float32)
    expected[:7] = rows
    np.testing.assert_array_equal(out, expected)


def test_wrap_stops_at_t_columns():
    x = make_flow(T)
    out = np.asarray(
        jitted("_wrap")(jnp.asarray(x), T, jnp.full((T,), seq._INTERPOLATE, jnp.int32))
    )
    np.testing.assert_array_equal(out, densified(x, T)[:T])


# --- Permutation ------------------------------------------------------------------------------


def test_permute_segments_matches_the_paper_example():
    x = make_flow(T)
    cut = np.zeros(T, bool)
    cut[[7, 14]] = True
    # A segment's place comes from the score at its first position.
    score = np.zeros(T, np.float32)
    score[[0, 7, 14]] = [0.5, 0.25, 0.75]
    out = jitted("_permute_segments")(jnp.asarray(x), T, jnp.asarray(cut), jnp.asarray(score))
    expected = list(range(7, 14)) + list(range(0, 7)) + list(range(14, 20))
    chex.assert_trees_all_equal(np.asarray(out), columns(x, expected))


def test_permute_segments_ignores_cuts_outside_the_prefix():
    x = make_flow(8)
    cut = np.zeros(T, bool)
    cut[[0, 5, 12]] = True  # 0 and 12 are no cut points: two segments [0:5], [5:8]
    score = np.full(T, 0.5, np.float32)
    score[5] = 0.0  # segment [5:8] before segment [0:5]
    score[12] = 0.0  # 12 lies past the prefix: a score there must change nothing
    out = jitted("_permute_segments")(jnp.asarray(x), 8, jnp.asarray(cut), jnp.asarray(score))
    chex.assert_trees_all_equal(np.asarray(out), columns(x, [5, 6, 7, 0, 1, 2, 3, 4]))


def test_permute_segments_orders_three_segments_uniformly():
    from scipy import stats as scipy_stats

    x = make_flow(T)
    cut = np.zeros(T, bool)
    cut[[7, 14]] = True  # segments [0:7], [7:14], [14:20]
    scores = jax.random.uniform(jax.random.key(3), (3000, T))
    permute = jax.jit(jax.vmap(lambda w: seq._permute_segments(jnp.asarray(x), T, cut, w)))
    counts: dict[tuple[int, ...], int] = {}
    for sample in np.asarray(permute(scores)):
        segment_of_slot = [i // 7 for i in source_index(sample, x)]
        order = tuple(dict.fromkeys(segment_of_slot))
        counts[order] = counts.get(order, 0) + 1
    assert sorted(counts) == sorted(itertools.permutations(range(3)))
    assert scipy_stats.chisquare(list(counts.values())).pvalue > 1e-3


def segment_count(idx: list[int]) -> int:
    return 1 + sum(b != a + 1 for a, b in zip(idx, idx[1:], strict=False))


@pytest.mark.parametrize(("alpha", "n_max"), [(0.1, 2), (0.5, 4), (0.95, 6)])
def test_permutation_reorders_at_most_n_segments(alpha, n_max):
    length = 15
    x = make_flow(length)
    counts = set()
    for sample in run_over_keys("permutation", x, alpha):
        idx = source_index(sample, x)
        assert sorted(emitted(idx)) == list(range(length)) and idx[length:] == [-1] * (T - length)
        counts.add(segment_count(idx[:length]))
    # Adjacent segments may stay adjacent after shuffling, so fewer visible segments are fine.
    assert max(counts) == n_max


def test_permutation_of_a_single_packet_is_identity():
    x = make_flow(1)
    out = run_over_keys("permutation", x, 0.99)
    np.testing.assert_array_equal(out, np.broadcast_to(x, out.shape))


# --- TCP-aware ---------------------------------------------------------------------------------


def rto_draws(length: int, starts: dict[int, int]):
    events = np.zeros(T, bool)
    burst_len = np.full(T, 2, np.int32)
    for i, b in starts.items():
        events[i], burst_len[i] = True, b
    return jnp.asarray(events), jnp.asarray(burst_len)


@pytest.mark.parametrize(
    ("fn", "length", "starts", "expected"),
    [
        # Burst {2,3} resent after packet 4.
        ("_dup_rto", 10, {2: 2}, [0, 1, 2, 3, 4, 2, 3, 5, 6, 7, 8, 9]),
        ("_perm_rto", 10, {2: 2}, [0, 1, 4, 2, 3, 5, 6, 7, 8, 9]),
        # Chained bursts {2,3} and {4,5,6}: both copies wait for packet 7.
        ("_dup_rto", 10, {2: 2, 4: 3}, [0, 1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 8, 9]),
        ("_perm_rto", 10, {2: 2, 4: 3}, [0, 1, 7, 2, 3, 4, 5, 6, 8, 9]),
        # Overlapping bursts merge; a packet is resent once.
        ("_dup_rto", 10, {2: 4, 3: 2}, [0, 1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 7, 8, 9]),
        # No packet outside a burst follows: leftovers at the end (clipped to the prefix).
        ("_dup_rto", 10, {8: 5}, list(range(10)) + [8, 9]),
        ("_perm_rto", 10, {8: 5}, list(range(10))),
        # Truncation to T.
        ("_dup_rto", T, {0: 5}, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4] + list(range(6, 15))),
    ],
)
def test_rto_examples(fn, length, starts, expected):
    x = make_flow(length)
    out = jitted(fn)(jnp.asarray(x), length, *rto_draws(length, starts))
    chex.assert_trees_all_equal(np.asarray(out), columns(x, expected))


@pytest.mark.parametrize(
    ("fn", "length", "lost_at", "expected"),
    [
        ("_dup_fastretr", 10, [2], [0, 1, 2, 3, 4, 5, 2, 6, 7, 8, 9]),
        ("_perm_fastretr", 10, [2], [0, 1, 3, 4, 5, 2, 6, 7, 8, 9]),
        ("_perm_fastretr", 10, [2, 3], [0, 1, 4, 5, 2, 6, 3, 7, 8, 9]),
        # Clamped to the end of the flow; several copies after the last packet keep their order.
        ("_dup_fastretr", 10, [7, 8], list(range(10)) + [7, 8]),
        # 9 is lost too: it is resent at the end, after 6 (anchored to the slot of 9).
        ("_perm_fastretr", 10, [6, 9], [0, 1, 2, 3, 4, 5, 7, 8, 6, 9]),
        ("_dup_fastretr", T, [0], [0, 1, 2, 3, 0] + list(range(4, 19))),
    ],
)
def test_fastretr_examples(fn, length, lost_at, expected):
    x = make_flow(length)
    lost = np.zeros(T, bool)
    lost[lost_at] = True
    out = jitted(fn)(jnp.asarray(x), length, jnp.asarray(lost))
    chex.assert_trees_all_equal(np.asarray(out), columns(x, expected))


def random_tcp_cases(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, T + 1, n)
    xs = np.stack([make_flow(int(length)) for length in lengths])
    events = rng.random((n, T)) < 0.25
    burst_len = rng.integers(tcp.RTO_BURST[0], tcp.RTO_BURST[1] + 1, (n, T)).astype(np.int32)
    return lengths, xs, events, burst_len


@pytest.mark.parametrize("dup", [True, False])
def test_rto_matches_the_literal_reference(dup):
    lengths, xs, events, burst_len = random_tcp_cases(150, seed=1)
    helper = jax.jit(jax.vmap(tcp._dup_rto if dup else tcp._perm_rto))
    out = np.asarray(helper(jnp.asarray(xs), jnp.asarray(lengths, jnp.int32), events, burst_len))
    for i, length in enumerate(lengths):
        expected = reference.rto_order(int(length), events[i], burst_len[i], dup)
        np.testing.assert_array_equal(out[i], columns(xs[i], expected), err_msg=f"case {i}")


@pytest.mark.parametrize("dup", [True, False])
def test_fastretr_matches_the_literal_reference(dup):
    lengths, xs, lost, _ = random_tcp_cases(150, seed=2)
    helper = jax.jit(jax.vmap(tcp._dup_fastretr if dup else tcp._perm_fastretr))
    out = np.asarray(helper(jnp.asarray(xs), jnp.asarray(lengths, jnp.int32), lost))
    for i, length in enumerate(lengths):
        expected = reference.fastretr_order(int(length), lost[i], dup)
        np.testing.assert_array_equal(out[i], columns(xs[i], expected), err_msg=f"case {i}")


@pytest.mark.parametrize("name", TCP_AWARE)
def test_tcp_dup_copies_and_perm_moves(name):
    length = 12  # a dup can add at most T - L = 8 columns without truncation hiding anything
    x = make_flow(length)
    changed = 0
    for sample in run_over_keys(name, x, 1.0)[:200]:
        idx = emitted(source_index(sample, x))
        assert -2 not in idx
        if name.startswith("perm"):
            assert sorted(idx) == list(range(length))
        else:
            # Originals stay in order; only a full output may have lost its tail to truncation.
            first_seen = list(dict.fromkeys(idx))
            assert first_seen == list(range(len(first_seen)))
            assert len(first_seen) == length or len(idx) == T
            assert max(idx.count(i) for i in idx) <= 2  # each packet is copied at most once
        changed += idx != list(range(length))
    assert changed > 20  # alpha = 1: events are common


@pytest.mark.parametrize("name", ("wrap", *TCP_AWARE))
def test_tiny_alpha_is_almost_always_identity(name):
    x = make_flow(T)
    out = run_over_keys(name, x, 1e-6)
    identical = sum(np.array_equal(sample, x) for sample in out)
    assert identical >= N_KEYS - 2


# --- Packet loss -------------------------------------------------------------------------------


def timed_flow(gaps_s: list[float], iat_q99: float) -> np.ndarray:
    """Flow whose IAT column is the normalization of ``gaps_s`` (first gap: 0)."""
    x = make_flow(len(gaps_s))
    norm = jitted("_iat_normalized")(jnp.asarray(gaps_s, jnp.float32), jnp.float32(iat_q99))
    x[: len(gaps_s), IAT] = np.asarray(norm)
    return x


def test_drop_time_window_accumulates_removed_iats():
    x = timed_flow([0.0] + [0.1] * 7, iat_q99=1.0)  # arrivals 0, .1, ..., .7
    out = np.asarray(jitted("_drop_time_window")(jnp.asarray(x), 8, jnp.float32(1.0), 0.25, 0.45))
    kept = [0, 1, 2, 5, 6, 7]  # packets 3 and 4 (arrivals .3 and .4) are lost
    np.testing.assert_array_equal(out[:, [SIZE, DIR]], columns(x, kept)[:, [SIZE, DIR]])
    unchanged = [0, 1, 2, 4, 5]  # output positions whose IAT is untouched
    np.testing.assert_array_equal(out[unchanged, IAT], x[[0, 1, 2, 6, 7], IAT])
    merged = float(jitted("_iat_seconds")(jnp.asarray(out[3, IAT]), jnp.float32(1.0)))
    assert merged == pytest.approx(0.3, rel=1e-4)  # its own 0.1 plus the two lost ones
    assert not out[6:].any()


def test_drop_time_window_at_the_start_gives_the_new_first_packet_iat_zero():
    x = timed_flow([0.0] + [0.1] * 7, iat_q99=1.0)
    out = np.asarray(jitted("_drop_time_window")(jnp.asarray(x), 8, jnp.float32(1.0), -0.05, 0.15))
    np.testing.assert_array_equal(out[:6, SIZE], x[2:8, SIZE])
    assert out[0, IAT] == 0.0
    np.testing.assert_array_equal(out[1:6, IAT], x[3:8, IAT])


def test_packet_loss_window_in_seconds_removes_exactly_one_of_evenly_spaced_packets():
    # Packets 10 s apart; alpha = 0 gives h = 5 s: [delta-5, delta+5] always holds one arrival.
    x = timed_flow([0.0] + [10.0] * 7, iat_q99=100.0)
    out = run_over_keys("packet_loss", x, 0.0, ctx=make_ctx(100.0), window_units="seconds")
    for sample in out:
        assert sum(i != -1 for i in source_index(sample, x)) == 7
        assert_no_holes(sample)


def test_packet_loss_percent_window_grows_with_alpha():
    x = timed_flow([0.0] + [10.0] * 19, iat_q99=100.0)  # span 190 s
    ctx = make_ctx(100.0)
    # Half-window (5 + 10 alpha) % of 190 s: 9.5 s at alpha = 0, so the 19-s window holds 1 or 2
    # of the 10-s-spaced packets; 28.5 s at alpha = 1: 3 (window at the flow's edge) to 6.
    lost_low = [
        T - len(emitted(source_index(s, x))) for s in run_over_keys("packet_loss", x, 0.0, ctx=ctx)
    ]
    lost_high = [
        T - len(emitted(source_index(s, x))) for s in run_over_keys("packet_loss", x, 1.0, ctx=ctx)
    ]
    assert set(lost_low) == {1, 2}
    assert set(lost_high) <= {3, 4, 5, 6} and max(lost_high) == 6


def test_packet_loss_rejects_unknown_units():
    with pytest.raises(ValueError, match="window_units"):
        seq.packet_loss(
            jax.random.PRNGKey(0), jnp.asarray(make_flow(5)), 0.5, make_ctx(), window_units="ms"
        )


def test_drop_time_window_accumulates_real_timestamps(shared_data):
    records = json.loads((shared_data / "tiissrc23" / "valid.json").read_text())[:40]
    gaps = [np.diff(np.asarray(r["timestamp"][:T], np.float64), prepend=0.0) for r in records]
    iat_q99 = float(np.quantile(np.concatenate(gaps), 0.99))
    q99 = jnp.float32(iat_q99)
    for record, gap in zip(records, gaps, strict=True):
        length = len(gap)
        signed = np.asarray(record["direction_length"][:T], np.float64)
        x = np.zeros((T, 3), np.float32)
        x[:length, SIZE] = np.clip(np.abs(signed), 0, 1460) / 1460
        x[:length, DIR] = np.sign(signed)
        x[:length, IAT] = np.asarray(jitted("_iat_normalized")(jnp.asarray(gap, jnp.float32), q99))
        # Reference in float64 from the real timestamps (each gap clipped as normalized).
        clipped = np.clip(gap, seq.IAT_FLOOR_S, iat_q99)
        arrival = np.cumsum(np.r_[0.0, clipped[1:]])
        low, high = 0.3 * arrival[-1], 0.5 * arrival[-1]
        kept = np.flatnonzero((arrival < low) | (arrival > high))
        out = np.asarray(jitted("_drop_time_window")(jnp.asarray(x), length, q99, low, high))
        np.testing.assert_array_equal(out[: len(kept), :IAT], x[kept, :IAT])
        assert not out[len(kept) :].any()
        merged = np.r_[0.0, np.minimum(np.diff(arrival[kept]), iat_q99)]
        if kept[0] == 0:
            merged[0] = gap[0]
        expected = np.asarray(jitted("_iat_normalized")(jnp.asarray(merged, jnp.float32), q99))
        np.testing.assert_allclose(out[: len(kept), IAT], expected, atol=1e-4)


# --- CutMix ------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [6, 7])
def test_cutmix_plan_pairs_samples(batch_size):
    partner, start, width = (
        np.asarray(a) for a in jitted("_cutmix_plan", (1, 2))(jax.random.PRNGKey(3), batch_size, T)
    )
    assert sorted(partner) == list(range(batch_size))  # a permutation
    np.testing.assert_array_equal(partner[partner], np.arange(batch_size))  # pairs
    assert np.sum(partner == np.arange(batch_size)) == batch_size % 2
    np.testing.assert_array_equal(start[partner], start)  # one window per pair
    np.testing.assert_array_equal(width[partner], width)
    assert (width >= 0).all() and (width <= T - 1).all() and (start >= 0).all()
    assert (start + width <= T - 1).all()


def test_cutmix_window_ranges_cover_the_spec():
    plan = jitted("_cutmix_plan", (1, 2))
    draws = [plan(jax.random.PRNGKey(seed), 8, T) for seed in range(150)]
    start = np.concatenate([np.asarray(d[1]) for d in draws])
    width = np.concatenate([np.asarray(d[2]) for d in draws])
    assert set(width) == set(range(T))
    assert start.max() == T - 1 and (start + width).max() == T - 1


def test_cutmix_swaps_the_same_window_in_both_directions():
    rng = np.random.default_rng(0)
    xb = rng.random((8, T, 3)).astype(np.float32)
    yb = jnp.arange(8, dtype=jnp.int32)
    key = jax.random.PRNGKey(5)
    out, labels = jitted("cutmix")(key, jnp.asarray(xb), yb)
    out = np.asarray(out)
    partner, start, width = (np.asarray(a) for a in jitted("_cutmix_plan", (1, 2))(key, 8, T))
    for i in range(8):
        inside = np.zeros(T, bool)
        inside[start[i] : start[i] + width[i]] = True
        np.testing.assert_array_equal(out[i, inside], xb[partner[i], inside])
        np.testing.assert_array_equal(out[partner[i], inside], xb[i, inside])
        np.testing.assert_array_equal(out[i, ~inside], xb[i, ~inside])
    chex.assert_trees_all_equal(labels, yb)  # hard labels: the receiving sample's


def test_cutmix_soft_labels_weight_by_kept_columns():
    xb = jnp.asarray(np.random.default_rng(1).random((8, T, 3)), jnp.float32)
    yb = jnp.asarray([0, 1, 2, 0, 1, 2, 3, 3], jnp.int32)
    key = jax.random.PRNGKey(6)
    _, soft = jax.jit(functools.partial(seq.cutmix, n_classes=4))(key, xb, yb)
    partner, _, width = (np.asarray(a) for a in jitted("_cutmix_plan", (1, 2))(key, 8, T))
    soft = np.asarray(soft)
    chex.assert_shape(soft, (8, 4))
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    expected = np.zeros((8, 4), np.float32)
    for i in range(8):
        expected[i, yb[i]] += 1 - width[i] / T
        expected[i, yb[partner[i]]] += width[i] / T
    np.testing.assert_allclose(soft, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("xb", "yb", "kwargs", "match"),
    [
        (np.zeros((4, T), np.float32), np.zeros(4, np.int32), {}, "xb must be"),
        (np.zeros((4, T, 3), np.int32), np.zeros(4, np.int32), {}, "floating"),
        (np.zeros((4, T, 3), np.float32), np.zeros(3, np.int32), {}, "yb must be"),
        (np.zeros((4, T, 3), np.float32), np.zeros(4, np.float32), {}, "yb must be"),
        (np.zeros((4, T, 3), np.float32), np.zeros(4, np.int32), {"n_classes": 0}, "n_classes"),
    ],
)
def test_cutmix_rejects_bad_input(xb, yb, kwargs, match):
    with pytest.raises(ValueError, match=match):
        seq.cutmix(jax.random.PRNGKey(0), jnp.asarray(xb), jnp.asarray(yb), **kwargs)


def test_cutmix_jit_equals_eager():
    xb = jnp.asarray(np.random.default_rng(2).random((8, T, 3)), jnp.float32)
    yb = jnp.asarray([0, 1, 2, 3, 4, 0, 1, 2], jnp.int32)
    key = jax.random.PRNGKey(7)
    jitted = jax.jit(functools.partial(seq.cutmix, n_classes=5))
    chex.assert_trees_all_equal(jitted(key, xb, yb), seq.cutmix(key, xb, yb, n_classes=5))


# --- Every per-sample function -----------------------------------------------------------------


def random_batch(n: int, seed: int):
    """Random flows with random lengths; the first three are empty, one packet and full."""
    rng = np.random.default_rng(seed)
    lengths = np.r_[0, 1, T, rng.integers(2, T, n - 3)]
    xs = np.zeros((n, T, 3), np.float32)
    for i, length in enumerate(lengths):
        xs[i, :length, SIZE] = rng.random(length)
        xs[i, :length, DIR] = rng.choice([-1.0, 1.0], length)
        xs[i, :length, IAT] = rng.random(length)
    alphas = rng.random(n).astype(np.float32)
    ctxs = AugContext(
        sigma=jnp.zeros((n, T, 3), jnp.float32),
        sigma_global=jnp.zeros((n, 3), jnp.float32),
        iat_q99=jnp.asarray(rng.uniform(0.1, 10.0, n), jnp.float32),
    )
    return keys(n, seed), jnp.asarray(xs), jnp.asarray(alphas), ctxs


def ctx0(ctxs: AugContext) -> AugContext:
    return jax.tree.map(lambda a: a[0], ctxs)


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_jit_vmap_equals_an_eager_loop(name):
    ks, xs, alphas, ctxs = random_batch(N_KEYS, seed=3)
    out = np.asarray(batched(name)(ks, xs, alphas, ctxs))
    chex.assert_shape(out, xs.shape)
    assert out.dtype == np.float32
    for x, sample in zip(np.asarray(xs), out, strict=True):
        assert_no_holes(sample)
        if not x.any():
            assert not sample.any()  # an empty flow stays empty
    for i in range(5):
        ctx = jax.tree.map(lambda a, i=i: a[i], ctxs)
        eager = _fn(name)(ks[i], xs[i], alphas[i], ctx)
        chex.assert_trees_all_close(out[i], eager, rtol=1e-6)
    # A typed key with the same bits draws the same augmentation.
    typed = _fn(name)(jax.random.wrap_key_data(ks[0]), xs[0], alphas[0], ctx0(ctxs))
    chex.assert_trees_all_equal(typed, out[0])


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_same_key_same_output_different_keys_differ(name):
    first, again = (run_over_keys(name, make_flow(16), 0.9)[:20] for _ in range(2))
    chex.assert_trees_all_equal(first, again)
    if name != "horizontal_flip":
        assert len({o.tobytes() for o in first}) > 1


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_rejects_a_batch_where_a_sample_is_expected(name):
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        _fn(name)(jax.random.PRNGKey(0), jnp.zeros((2, T, 3)), 0.5, make_ctx())
