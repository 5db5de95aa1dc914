"""Sequence family: augmentations that reorder, copy, drop or average whole packet columns.

Definitions: docs/augmentations.md (the paper's Table 3). Every per-sample function has the
signature ``fn(key, x, alpha, ctx) -> x'``:

- ``key``: a JAX PRNG key (typed, any implementation, or raw ``uint32[2]``);
- ``x``: one sample ``(T, 3)`` float, features (size, direction, iat), direction 0 = no
  packet; the valid length ``L`` is derived from ``x`` itself;
- ``alpha``: scalar magnitude in [0, 1] (may be traced);
- ``ctx``: the sample's :class:`~jtcaug.aug.stats.AugContext` (only ``packet_loss`` reads it).

They act on the valid prefix, move/copy whole columns (all three features together), drop
anything pushed past T and re-pad the tail with zeros. Shapes are static: each function
computes, for every output slot, the input column it shows, and gathers. ``cutmix`` is the
one batch-level function.

Each public function draws its randomness and hands the draws to a deterministic private
helper (``_translate``, ``_wrap``, ...), so tests can check exact outputs for chosen draws.

Example:
    >>> out = translation(jax.random.key(0), x, 0.5, ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jtcaug import IAT, N_FEATURES
from jtcaug.aug._common import (
    check_sample,
    gather_columns,
    midpoint,
    positions,
    uniform_int,
    valid_length,
)
from jtcaug.aug.stats import AugContext

# --- Parameters --------------------------------------------------------------------------------

# [paper] Translation: shift distance n ~ U{1..N} with N = 1 + #{a_i <= alpha}.
TRANSLATION_THRESHOLDS = (0.15, 0.3, 0.5, 0.8)

# [paper] Permutation: segment count n ~ U{2..N} with N = 2 + #{a_i <= alpha}, capped at L.
PERMUTATION_THRESHOLDS = (0.15, 0.45, 0.75, 0.9)
PERMUTATION_MIN_SEGMENTS = 2

# [paper] Wrap: per packet, interpolate with probability WRAP_INTERPOLATE_RATE * alpha and
# discard with WRAP_DISCARD_RATE * alpha; otherwise keep.
WRAP_INTERPOLATE_RATE = 0.5
WRAP_DISCARD_RATE = 0.5

# [chosen] Packet Loss half-window h. "percent" (default): h = (BASE + SLOPE * alpha) % of the
# flow's time span Delta, which matches the paper's example (5 of 20 packets removed);
# "seconds": h = BASE + SLOPE * alpha seconds, the paper's literal "delta +- (10 alpha + 5)".
PACKET_LOSS_BASE_PCT = 5.0
PACKET_LOSS_SLOPE_PCT = 10.0
PACKET_LOSS_BASE_S = 5.0
PACKET_LOSS_SLOPE_S = 10.0
PACKET_LOSS_UNITS = ("percent", "seconds")

# IAT normalization floor: iat' = (log10(clip(iat, floor, q99)) - log10(floor)) /
# (log10(q99) - log10(floor)) (docs/augmentations.md). Packet Loss inverts it to get seconds.
IAT_FLOOR_S = 1e-7

# Wrap's per-packet choices.
_KEEP, _INTERPOLATE, _DISCARD = 0, 1, 2


# --- Shared index helpers ----------------------------------------------------------------------


def _count_at_most(thresholds: tuple[float, ...], alpha: jnp.ndarray) -> jnp.ndarray:
    """``#{a_i <= alpha}`` as int32."""
    return jnp.sum(jnp.asarray(thresholds, jnp.float32) <= alpha, dtype=jnp.int32)


def _next_column(x: jnp.ndarray) -> jnp.ndarray:
    """``x[t + 1]`` at row t, a zero column after the last."""
    return jnp.concatenate([x[1:], jnp.zeros_like(x[:1])])


# --- Horizontal flip, interpolation, translation -----------------------------------------------


def horizontal_flip(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Reverses the valid prefix: ``x'[t] = x[L-1-t]`` for ``t < L``. Ignores key and alpha.

    Args:
      key, alpha, ctx: unused (the common signature).
      x: one flow ``(T, 3)``.

    Returns:
      ``(T, 3)``.
    """
    del key, alpha, ctx
    check_sample(x, "horizontal_flip")
    t = positions(x)
    length = valid_length(x)
    return gather_columns(x, length - 1 - t, t < length)


def _interpolate(x: jnp.ndarray, length: jnp.ndarray, start: jnp.ndarray) -> jnp.ndarray:
    """T consecutive rows from ``start`` of the densified prefix (``2L-1`` rows), re-padded.

    The densified prefix is ``x[0], mid(x[0], x[1]), x[1], ..., x[L-1]``.
    """
    dense = jnp.stack([x, midpoint(x, _next_column(x))], axis=1).reshape(-1, x.shape[1])
    src = start + positions(x)
    return gather_columns(dense, src, src < 2 * length - 1)


def interpolation(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Inserts the midpoint of every consecutive pair, then keeps T rows from a random start.

    The start is ``s ~ U{0..max(0, 2L-1-T)}``. Direction is averaged like the other features,
    so a midpoint between opposite directions has direction 0. Ignores alpha.
    """
    del alpha, ctx
    check_sample(x, "interpolation")
    length = valid_length(x)
    start = uniform_int(key, 0, 2 * length - 1 - x.shape[0])
    return _interpolate(x, length, start)


def _translate(
    x: jnp.ndarray, length: jnp.ndarray, n: jnp.ndarray, t: jnp.ndarray, left: jnp.ndarray
) -> jnp.ndarray:
    """Shifts the columns from ``t`` on by ``n`` places.

    Left (a drop): columns ``t..t+n-1`` disappear, ``x[t+n:L]`` moves to ``t``, the freed
    tail is zero. Right (a duplicate/retransmission): ``x[t:L]`` moves to ``t+n`` and slots
    ``t..t+n-1`` hold copies of ``x[t]``; columns pushed past T are dropped.
    """
    j = positions(x)
    src_left = jnp.where(j < t, j, j + n)
    src_right = jnp.where(j < t, j, jnp.where(j < t + n, t, j - n))
    src = jnp.where(left, src_left, src_right)
    return gather_columns(x, src, src < length)


def translation(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Moves a segment left (packet drop) or right (duplication) by ``n ~ U{1..N}`` places.

    ``N = 1 + #{a_i <= alpha}`` over :data:`TRANSLATION_THRESHOLDS`; direction left/right with
    probability 1/2; start ``t ~ U{0..L-1}``. See :func:`_translate` for the exact moves.
    """
    del ctx
    check_sample(x, "translation")
    alpha = jnp.asarray(alpha, jnp.float32)
    k_n, k_side, k_t = jax.random.split(key, 3)
    length = valid_length(x)
    n = uniform_int(k_n, 1, 1 + _count_at_most(TRANSLATION_THRESHOLDS, alpha))
    left = jax.random.bernoulli(k_side)
    t = uniform_int(k_t, 0, length - 1)
    return _translate(x, length, n, t, left)


# --- Wrap, permutation -------------------------------------------------------------------------


def _wrap(x: jnp.ndarray, length: jnp.ndarray, choice: jnp.ndarray) -> jnp.ndarray:
    """Applies per-packet choices ``(T,)`` (0 keep, 1 interpolate, 2 discard) to the prefix.

    Keep emits ``x[t]``; interpolate emits ``x[t]`` then the midpoint of ``x[t], x[t+1]``
    (only ``x[t]`` at ``t = L-1``); discard emits nothing. Emissions past T are dropped.
    """
    t_len = x.shape[0]
    t = positions(x)
    emit_packet = (t < length) & (choice != _DISCARD)
    emit_midpoint = (t < length - 1) & (choice == _INTERPOLATE)
    # Packet t's emissions start after everything emitted before it.
    per_packet = emit_packet.astype(jnp.int32) + emit_midpoint.astype(jnp.int32)
    first_slot = jnp.cumsum(per_packet) - per_packet
    packet_slot = jnp.where(emit_packet, first_slot, t_len)
    midpoint_slot = jnp.where(emit_midpoint, first_slot + emit_packet.astype(jnp.int32), t_len)
    out = jnp.zeros_like(x).at[packet_slot].set(x, mode="drop")
    return out.at[midpoint_slot].set(midpoint(x, _next_column(x)), mode="drop")


def wrap(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Time warp: each packet is interpolated (prob. alpha/2), discarded (alpha/2) or kept."""
    del ctx
    check_sample(x, "wrap")
    alpha = jnp.asarray(alpha, jnp.float32)
    u = jax.random.uniform(key, (x.shape[0],))
    p_interpolate = WRAP_INTERPOLATE_RATE * alpha
    choice = jnp.where(
        u < p_interpolate,
        _INTERPOLATE,
        jnp.where(u < p_interpolate + WRAP_DISCARD_RATE * alpha, _DISCARD, _KEEP),
    )
    return _wrap(x, valid_length(x), choice)


def _permute_segments(
    x: jnp.ndarray, length: jnp.ndarray, cut: jnp.ndarray, score: jnp.ndarray
) -> jnp.ndarray:
    """Cuts the valid prefix into segments and concatenates them in the order of ``score``.

    Args:
      x: ``(T, 3)``.
      length: valid length L.
      cut: ``(T,)`` bool, True where a new segment starts (only positions ``1..L-1`` count).
      score: ``(T,)`` float; a segment's score is the one at its first position, and
        segments are placed in increasing score (i.i.d. scores: a uniformly random order).

    Returns:
      ``(T, 3)``.
    """
    t = positions(x)
    valid = t < length
    first = (cut & valid) | (t == 0)
    segment_start = lax.cummax(jnp.where(first, t, 0))
    # Stable: packets of one segment keep their order; padding (inf) stays last.
    source = jnp.argsort(jnp.where(valid, score[segment_start], jnp.inf), stable=True)
    return gather_columns(x, source, valid)


def permutation(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Cuts the prefix into ``n ~ U{2..N}`` segments (capped at L) and shuffles them.

    ``N = 2 + #{a_i <= alpha}`` over :data:`PERMUTATION_THRESHOLDS`; the n-1 cut points are
    distinct and uniform among ``1..L-1``; the segment order is a uniform permutation.
    """
    del ctx
    check_sample(x, "permutation")
    alpha = jnp.asarray(alpha, jnp.float32)
    k_n, k_cuts, k_order = jax.random.split(key, 3)
    length = valid_length(x)
    t = positions(x)
    n_max = PERMUTATION_MIN_SEGMENTS + _count_at_most(PERMUTATION_THRESHOLDS, alpha)
    n = jnp.minimum(uniform_int(k_n, PERMUTATION_MIN_SEGMENTS, n_max), length)
    # n-1 distinct cut points: the candidates with the smallest random scores.
    candidate = (t >= 1) & (t < length)
    cut_score = jnp.where(candidate, jax.random.uniform(k_cuts, t.shape), 2.0)
    cut = candidate & (jnp.argsort(jnp.argsort(cut_score)) < n - 1)
    return _permute_segments(x, length, cut, jax.random.uniform(k_order, t.shape))


# --- Packet loss -------------------------------------------------------------------------------


def _iat_seconds(iat_norm: jnp.ndarray, iat_q99: jnp.ndarray) -> jnp.ndarray:
    """Inverts the IAT normalization (docs/augmentations.md): normalized values -> seconds."""
    log_floor = jnp.log10(jnp.asarray(IAT_FLOOR_S, jnp.float32))
    log_span = jnp.log10(iat_q99) - log_floor
    return jnp.power(jnp.asarray(10.0, jnp.float32), iat_norm * log_span + log_floor)


def _iat_normalized(seconds: jnp.ndarray, iat_q99: jnp.ndarray) -> jnp.ndarray:
    """The IAT normalization of docs/augmentations.md: seconds -> [0, 1]."""
    log_floor = jnp.log10(jnp.asarray(IAT_FLOOR_S, jnp.float32))
    clipped = jnp.clip(seconds, IAT_FLOOR_S, iat_q99)
    normalized = (jnp.log10(clipped) - log_floor) / (jnp.log10(iat_q99) - log_floor)
    # Compiled log10 and the folded constant can disagree in the last bit: keep [0, 1] exact.
    return jnp.clip(normalized, 0.0, 1.0)


def _arrival_seconds(x: jnp.ndarray, length: jnp.ndarray, iat_q99: jnp.ndarray) -> jnp.ndarray:
    """``(T,)`` arrival time of each packet relative to packet 0 (the first IAT is not a gap
    inside the flow); constant past the prefix."""
    t = positions(x)
    gaps = jnp.where((t > 0) & (t < length), _iat_seconds(x[:, IAT], iat_q99), 0.0)
    return jnp.cumsum(gaps)


def _drop_time_window(
    x: jnp.ndarray,
    length: jnp.ndarray,
    iat_q99: jnp.ndarray,
    low: jnp.ndarray,
    high: jnp.ndarray,
) -> jnp.ndarray:
    """Removes the packets whose arrival time (s, from packet 0) lies in ``[low, high]``.

    Later packets shift left. A kept packet right after removed ones gets the IAT since the
    previous kept packet (its own plus the removed ones'), re-normalized with ``iat_q99``; if
    the flow's first packets are removed the new first packet gets IAT 0, as a flow's first
    packet has in the datasets. Other IATs are left bit-for-bit unchanged.
    """
    t = positions(x)
    valid = t < length
    arrival = _arrival_seconds(x, length, iat_q99)
    # Arrival times never decrease, so the removed packets are one run of positions
    # [first, after).
    first = jnp.sum(valid & (arrival < low), dtype=jnp.int32)
    after = jnp.maximum(jnp.sum(valid & (arrival <= high), dtype=jnp.int32), first)
    n_removed = after - first

    merged_gap = arrival[jnp.minimum(after, t.shape[0] - 1)] - arrival[jnp.maximum(first - 1, 0)]
    new_iat = jnp.where(first > 0, _iat_normalized(merged_gap, iat_q99), 0.0)
    patched = (t == after) & (n_removed > 0) & (after < length)
    iat = jnp.where(patched, new_iat.astype(x.dtype), x[:, IAT])
    src = t + jnp.where(t >= first, n_removed, 0)
    return gather_columns(x.at[:, IAT].set(iat), src, src < length)


def packet_loss(
    key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext, *, window_units: str = "percent"
) -> jnp.ndarray:
    """Removes the packets that arrive within ``delta +- h`` (as if lost), with recomputed IATs.

    ``Delta`` is the arrival time of packet L-1 relative to packet 0 (IATs de-normalized with
    ``ctx.iat_q99``), ``delta ~ U[0, Delta]``, and the half-window ``h`` is
    ``(PACKET_LOSS_BASE_PCT + PACKET_LOSS_SLOPE_PCT * alpha) %`` of Delta, or with
    ``window_units="seconds"`` that many seconds with the ``_S`` constants. See
    :func:`_drop_time_window` for the IAT bookkeeping.
    """
    check_sample(x, "packet_loss")
    if window_units not in PACKET_LOSS_UNITS:
        raise ValueError(
            f"packet_loss: window_units must be one of {PACKET_LOSS_UNITS}, got {window_units!r}"
        )
    alpha = jnp.asarray(alpha, jnp.float32)
    iat_q99 = jnp.asarray(ctx.iat_q99, jnp.float32)
    length = valid_length(x)
    span = _arrival_seconds(x, length, iat_q99)[-1]
    center = jax.random.uniform(key, (), jnp.float32, 0.0, span)
    if window_units == "percent":
        half = (PACKET_LOSS_BASE_PCT + PACKET_LOSS_SLOPE_PCT * alpha) / 100.0 * span
    else:
        half = PACKET_LOSS_BASE_S + PACKET_LOSS_SLOPE_S * alpha
    return _drop_time_window(x, length, iat_q99, center - half, center + half)


# --- CutMix (batch level) ----------------------------------------------------------------------


def _cutmix_plan(
    key: jax.Array, batch_size: int, t_len: int
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Random pairing and one window per pair.

    Returns:
      ``partner (B,)``: an involution (``partner[partner[i]] == i``); with an odd B one sample
      is its own partner (it stays unchanged). ``start (B,)`` and ``width (B,)``: the pair's
      window ``[start, start + width)``, equal for both partners; ``width ~ U{0..T-1}``,
      ``start ~ U{0..T-1-width}``.
    """
    k_perm, k_width, k_start = jax.random.split(key, 3)
    shuffled = jax.random.permutation(k_perm, batch_size).astype(jnp.int32)
    slot = jnp.arange(batch_size, dtype=jnp.int32)
    # Pairs are consecutive entries of the shuffled order: (0, 1), (2, 3), ...
    mate_slot = slot ^ 1
    mate_slot = jnp.where(mate_slot < batch_size, mate_slot, slot)
    partner = jnp.zeros_like(slot).at[shuffled].set(shuffled[mate_slot])
    pair_of = jnp.zeros_like(slot).at[shuffled].set(slot // 2)
    n_pairs = (batch_size + 1) // 2
    width = uniform_int(k_width, 0, t_len - 1, (n_pairs,))
    start = uniform_int(k_start, 0, t_len - 1 - width, (n_pairs,))
    return partner, start[pair_of].astype(jnp.int32), width[pair_of].astype(jnp.int32)


def _swap_windows(
    xb: jnp.ndarray, partner: jnp.ndarray, start: jnp.ndarray, width: jnp.ndarray
) -> jnp.ndarray:
    """``xb'[i, t] = xb[partner[i], t]`` inside sample i's window, ``xb[i, t]`` outside."""
    t = jnp.arange(xb.shape[1], dtype=jnp.int32)
    inside = (t >= start[:, None]) & (t < (start + width)[:, None])
    return jnp.where(inside[..., None], xb[partner], xb)


def cutmix(
    key: jax.Array, xb: jnp.ndarray, yb: jnp.ndarray, *, n_classes: int | None = None
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Swaps a random window of columns between randomly paired samples of a batch.

    Pairs come from a random permutation (without replacement; with an odd batch one sample
    stays unchanged); each pair draws ``w ~ U{0..T-1}``, ``t0 ~ U{0..T-1-w}`` and swaps
    columns ``t0..t0+w-1`` (absolute positions, padding included). Ignores alpha.

    Args:
      key: PRNG key.
      xb: ``(B, T, 3)`` float.
      yb: ``(B,)`` int labels.
      n_classes: None (default) for hard labels: each sample keeps its own (the receiving
        sample's) label, ``yb' == yb``, ``(B,)`` int. An int C for soft labels ``(B, C)``
        float32: ``(T-w)/T`` on the own class and ``w/T`` on the partner's class.

    Returns:
      ``(xb', yb')``.
    """
    if xb.ndim != 3 or xb.shape[-1] != N_FEATURES:
        raise ValueError(f"cutmix: xb must be a batch of shape (B, T, 3), got {xb.shape}")
    if not jnp.issubdtype(xb.dtype, jnp.floating):
        raise ValueError(f"cutmix: xb must be a floating array, got dtype {xb.dtype}")
    if yb.shape != xb.shape[:1] or not jnp.issubdtype(yb.dtype, jnp.integer):
        raise ValueError(
            f"cutmix: yb must be integer labels of shape ({xb.shape[0]},), "
            f"got {yb.dtype}{list(yb.shape)}"
        )
    if n_classes is not None and (
        isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1
    ):
        raise ValueError(f"cutmix: n_classes must be a positive int or None, got {n_classes!r}")
    batch_size, t_len = xb.shape[:2]
    partner, start, width = _cutmix_plan(key, batch_size, t_len)
    mixed = _swap_windows(xb, partner, start, width)
    if n_classes is None:
        return mixed, yb
    received = (width.astype(jnp.float32) / t_len)[:, None]
    own = jax.nn.one_hot(yb, n_classes, dtype=jnp.float32)
    return mixed, own * (1.0 - received) + own[partner] * received
