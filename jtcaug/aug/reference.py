"""A literal, per-sample numpy reading of every augmentation, for tests and readers.

Each function follows its rule packet by packet with Python loops and ``numpy.random``: no
vectorization, no static shapes. The shipped JAX functions must agree with these, exactly
where no random draw is involved and in distribution otherwise (tests/aug/test_reference.py).
Per-sample functions take ``(rng, x, alpha, ctx)``: a ``numpy.random.Generator``, one flow
``x (T, 3)`` (size, direction, iat; direction 0 = no packet), alpha in [0, 1] and the class
statistics (an ``AugContext``, read with ``numpy.asarray``); they return a new ``(T, 3)``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> out = translation(rng, x, 0.5, ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from jtcaug import DIR, IAT, SIZE
from jtcaug.aug import amplitude, masking, sequence, tcp


def valid_length(x: np.ndarray) -> int:
    """Index of the last packet with a non-zero direction, plus one."""
    packets = np.flatnonzero(x[:, DIR] != 0)
    return int(packets[-1]) + 1 if packets.size else 0


def _columns(x: np.ndarray, sources: list[int]) -> np.ndarray:
    """Rows ``x[sources]`` (or given rows), truncated to T and zero-padded."""
    out = np.zeros_like(x)
    rows = [x[s] if isinstance(s, (int, np.integer)) else s for s in sources][: len(x)]
    if rows:
        out[: len(rows)] = np.stack(rows)
    return out


def _feature(rng: np.random.Generator) -> int:
    return IAT if rng.random() < 0.5 else SIZE


def _add(x: np.ndarray, d: int, delta: np.ndarray) -> np.ndarray:
    out = x.copy()
    for t in range(valid_length(x)):
        out[t, d] = min(max(x[t, d] + delta[t], 0.0), 1.0)
    return out


def _sigma(ctx, d: int) -> np.ndarray:
    return np.asarray(ctx.sigma, np.float64)[:, d]


# --- Amplitude ----------------------------------------------------------------------------------


def gaussian_noise(rng, x, alpha, ctx):
    """Feature d = size or IAT (1/2 each); every valid t gets
    ``x[t, d] + alpha * sigma[t, d] * z_t``, ``z_t ~ N(0, 1)`` iid, clipped to [0, 1]."""
    d = _feature(rng)
    z = rng.standard_normal(len(x))
    return _add(x, d, alpha * _sigma(ctx, d) * z)


def spike_noise(rng, x, alpha, ctx):
    """Feature d = size or IAT; ``m ~ U{1..max(1, ceil(alpha L / 4))}`` distinct valid
    positions get ``+-3 alpha sigma[t, d]`` (sign 1/2 each), clipped to [0, 1]."""
    d = _feature(rng)
    length = valid_length(x)
    m = int(rng.integers(1, max(1, math.ceil(alpha * length / amplitude.SPIKE_EVERY)) + 1))
    delta = np.zeros(len(x))
    for t in rng.choice(length, size=min(m, length), replace=False):
        sign = 1.0 if rng.random() < 0.5 else -1.0
        delta[t] = amplitude.SPIKE_HEIGHT * sign * alpha * _sigma(ctx, d)[t]
    return _add(x, d, delta)


def constant_wrapup(rng, x, alpha, ctx):
    """Every valid IAT gets the same ``alpha * sigma_global[IAT] * c``, ``c ~ N(0, 1)``."""
    c = rng.standard_normal()
    shift = alpha * float(np.asarray(ctx.sigma_global)[IAT]) * c
    return _add(x, IAT, np.full(len(x), shift))


def gaussian_wrapup(rng, x, alpha, ctx):
    """Feature d = size or IAT; adds ``alpha * sigma[t, d] * curve(t)``, curve the cubic
    through 4 N(0, 1) knots at t = 0, (L-1)/3, 2(L-1)/3, L-1."""
    d = _feature(rng)
    knots = rng.standard_normal(amplitude.WRAPUP_KNOTS)
    nodes = np.linspace(0.0, 1.0, amplitude.WRAPUP_KNOTS)
    u = np.arange(len(x)) / max(valid_length(x) - 1, 1)
    curve = np.polyval(np.polyfit(nodes, knots, amplitude.WRAPUP_KNOTS - 1), u)
    return _add(x, d, alpha * _sigma(ctx, d) * curve)


def sine_wrapup(rng, x, alpha, ctx):
    """Feature d = size or IAT; adds ``alpha * sigma[t, d] * sin(2 pi f t / T + phi)``,
    ``f ~ U[0.5, 3]``, ``phi ~ U[0, 2 pi)``."""
    d = _feature(rng)
    f = rng.uniform(*amplitude.SINE_FREQ_RANGE)
    phi = rng.uniform(0.0, 2.0 * math.pi)
    t = np.arange(len(x))
    return _add(x, d, alpha * _sigma(ctx, d) * np.sin(2.0 * math.pi * f * t / len(x) + phi))


# --- Masking ------------------------------------------------------------------------------------


def bernoulli_mask(rng, x, alpha, ctx):
    """Every valid packet becomes an all-zero column with probability ``0.5 alpha``."""
    out = x.copy()
    for t in range(valid_length(x)):
        if rng.random() < masking.BERNOULLI_RATE * alpha:
            out[t] = 0.0
    return out


def window_mask(rng, x, alpha, ctx):
    """``w ~ U{1..max(1, ceil(alpha L / 2))}``, ``t0 ~ U{0..L-w}``; packets t0..t0+w-1 become
    all-zero columns (those that exist)."""
    length = valid_length(x)
    w = int(rng.integers(1, max(1, math.ceil(alpha * masking.WINDOW_MAX_FRACTION * length)) + 1))
    t0 = int(rng.integers(0, max(length - w, 0) + 1))
    out = x.copy()
    out[t0 : min(t0 + w, length)] = 0.0
    return out


# --- Sequence -----------------------------------------------------------------------------------


def horizontal_flip(rng, x, alpha, ctx):
    """The valid prefix reversed: ``x'[t] = x[L-1-t]``; padding stays."""
    return _columns(x, list(range(valid_length(x)))[::-1])


def _densified(x: np.ndarray, length: int) -> list:
    rows = []
    for t in range(length):
        rows.append(x[t])
        if t < length - 1:
            rows.append((x[t] + x[t + 1]) / 2)
    return rows


def interpolation(rng, x, alpha, ctx):
    """Midpoints inserted between neighbours (2L-1 columns); T of them kept from
    ``s ~ U{0..max(0, 2L-1-T)}``."""
    dense = _densified(x, valid_length(x))
    s = int(rng.integers(0, max(0, len(dense) - len(x)) + 1))
    return _columns(x, dense[s:])


def translation(rng, x, alpha, ctx):
    """``n ~ U{1..1 + #{a_i <= alpha}}`` with a = (0.15, 0.3, 0.5, 0.8), side 1/2 each,
    ``t ~ U{0..L-1}``. Left: columns t..t+n-1 vanish. Right: n copies of column t are
    inserted before it. Truncated to T."""
    length = valid_length(x)
    big_n = 1 + sum(a <= alpha for a in sequence.TRANSLATION_THRESHOLDS)
    n = int(rng.integers(1, big_n + 1))
    left = rng.random() < 0.5
    t = int(rng.integers(0, max(length - 1, 0) + 1))
    cols = list(range(length))
    if left:
        return _columns(x, cols[:t] + cols[t + n :])
    return _columns(x, cols[:t] + [t] * n + cols[t:]) if length else x.copy()


def wrap(rng, x, alpha, ctx):
    """Per valid packet t: with probability alpha/2 emit x[t] and the midpoint of x[t], x[t+1]
    (x[t] alone at t = L-1); with alpha/2 emit nothing; else emit x[t]. Truncated to T."""
    length = valid_length(x)
    rows = []
    for t in range(length):
        u = rng.random()
        if u < sequence.WRAP_INTERPOLATE_RATE * alpha:
            rows.append(x[t])
            if t < length - 1:
                rows.append((x[t] + x[t + 1]) / 2)
        elif u >= (sequence.WRAP_INTERPOLATE_RATE + sequence.WRAP_DISCARD_RATE) * alpha:
            rows.append(x[t])
    return _columns(x, rows)


def permutation(rng, x, alpha, ctx):
    """``n = min(U{2..2 + #{a_i <= alpha}}, L)`` with a = (0.15, 0.45, 0.75, 0.9); n-1
    distinct cut points among 1..L-1; the n segments concatenated in a uniform random order."""
    length = valid_length(x)
    big_n = 2 + sum(a <= alpha for a in sequence.PERMUTATION_THRESHOLDS)
    n = min(int(rng.integers(2, big_n + 1)), length)
    if n <= 1:
        return x.copy()
    cuts = sorted(rng.choice(np.arange(1, length), size=n - 1, replace=False))
    bounds = [0, *cuts, length]
    segments = [list(range(bounds[i], bounds[i + 1])) for i in range(n)]
    return _columns(x, [t for i in rng.permutation(n) for t in segments[i]])


def packet_loss(rng, x, alpha, ctx):
    """Arrival times a_t from the de-normalized IATs (a_0 = 0); ``delta ~ U[0, a_{L-1}]``,
    ``h = (5 + 10 alpha)%`` of a_{L-1}; packets with ``|a_t - delta| <= h`` are removed; the
    next kept packet's IAT becomes the gap to the previous kept one (0 if none is left)."""
    length = valid_length(x)
    q99 = float(np.asarray(ctx.iat_q99))
    floor = sequence.IAT_FLOOR_S
    span_log = math.log10(q99) - math.log10(floor)
    seconds = [10.0 ** (float(v) * span_log + math.log10(floor)) for v in x[:length, IAT]]
    arrival = [0.0]
    for t in range(1, length):
        arrival.append(arrival[-1] + seconds[t])
    total = arrival[-1] if length else 0.0
    delta = rng.uniform(0.0, total) if total > 0 else 0.0
    h = (sequence.PACKET_LOSS_BASE_PCT + sequence.PACKET_LOSS_SLOPE_PCT * alpha) / 100 * total
    rows, previous, removed_since = [], None, False
    for t in range(length):
        if delta - h <= arrival[t] <= delta + h:
            removed_since = True
            continue
        row = x[t].copy()
        if removed_since:
            if previous is None:
                row[IAT] = 0.0
            else:
                gap = min(max(arrival[t] - arrival[previous], floor), q99)
                row[IAT] = (math.log10(gap) - math.log10(floor)) / span_log
        rows.append(row)
        previous, removed_since = t, False
    return _columns(x, rows)


def rto_order(length: int, events, burst_len, dup: bool) -> list[int]:
    """Source columns of dup_rto (``dup``) / perm_rto for given draws.

    An event at i marks packets i..i+burst_len[i]-1 as one burst (overlaps merge); each burst
    packet waits for the next packet outside every burst and is sent right after it (after
    the last packet if none follows); dup_rto also keeps it in place.
    """
    in_burst = [False] * length
    for i in range(length):
        if events[i]:
            for j in range(i, min(i + int(burst_len[i]), length)):
                in_burst[j] = True
    out, waiting = [], []
    for j in range(length):
        if in_burst[j]:
            if dup:
                out.append(j)
            waiting.append(j)
        else:
            out.append(j)
            out.extend(waiting)
            waiting = []
    return out + waiting


def fastretr_order(length: int, lost, dup: bool) -> list[int]:
    """Source columns of dup_fastretr (``dup``) / perm_fastretr for given losses: a lost
    packet is sent again once K = 3 more packets have gone by (at the end if the flow ends
    first); dup_fastretr also keeps it in place."""
    k = tcp.FASTRETR_K
    out = []
    for j in range(length):
        if dup or not lost[j]:
            out.append(j)
        out.extend(i for i in range(length) if lost[i] and i + k == j)
    out.extend(i for i in range(length) if lost[i] and i + k >= length)
    return out


def _rto(rng, x, alpha, dup: bool):
    length = valid_length(x)
    events = [rng.random() < tcp.TCP_EVENT_RATE * alpha for _ in range(length)]
    burst = [int(rng.integers(tcp.RTO_BURST[0], tcp.RTO_BURST[1] + 1)) for _ in range(length)]
    return _columns(x, rto_order(length, events, burst, dup))


def _fastretr(rng, x, alpha, dup: bool):
    length = valid_length(x)
    lost = [rng.random() < tcp.TCP_EVENT_RATE * alpha for _ in range(length)]
    return _columns(x, fastretr_order(length, lost, dup))


def dup_rto(rng, x, alpha, ctx):
    """Each valid packet starts an event with probability 0.1 alpha, a burst of
    ``l ~ U{2..5}`` packets, resent after the next packet outside bursts (see rto_order)."""
    return _rto(rng, x, alpha, dup=True)


def perm_rto(rng, x, alpha, ctx):
    """As dup_rto, but the burst is only delayed, not kept in place."""
    return _rto(rng, x, alpha, dup=False)


def dup_fastretr(rng, x, alpha, ctx):
    """Each valid packet is lost with probability 0.1 alpha and sent again after the next 3
    packets, also staying in place (see fastretr_order)."""
    return _fastretr(rng, x, alpha, dup=True)


def perm_fastretr(rng, x, alpha, ctx):
    """As dup_fastretr, but the lost packet is only moved."""
    return _fastretr(rng, x, alpha, dup=False)


def cutmix(rng, xb, yb):
    """Batch-level: samples paired by a random permutation ((p0, p1), (p2, p3), ...; with an
    odd batch the last is alone); per pair ``w ~ U{0..T-1}``, ``t0 ~ U{0..T-1-w}``; columns
    t0..t0+w-1 swapped between partners. Labels unchanged (the receiving sample's)."""
    out = xb.copy()
    order = rng.permutation(len(xb))
    t_len = xb.shape[1]
    for a, b in zip(order[0::2], order[1::2], strict=False):
        w = int(rng.integers(0, t_len))
        t0 = int(rng.integers(0, t_len - w))
        out[a, t0 : t0 + w], out[b, t0 : t0 + w] = xb[b, t0 : t0 + w], xb[a, t0 : t0 + w]
    return out, yb.copy()


SAMPLE_FUNCTIONS = {
    name: globals()[name]
    for name in (
        "gaussian_noise", "spike_noise", "constant_wrapup", "gaussian_wrapup", "sine_wrapup",
        "bernoulli_mask", "window_mask", "horizontal_flip", "interpolation", "packet_loss",
        "translation", "wrap", "permutation", "dup_rto", "dup_fastretr", "perm_rto",
        "perm_fastretr",
    )
}
