"""Sequence family: augmentations that reorder, copy, drop or average whole packet columns.

Spec: ``shared/spec/augmentations.md`` section 6 (paper Table 3). Every per-sample function
has the signature ``fn(key, x, alpha, ctx) -> x'``:

- ``key``: a JAX PRNG key (raw ``uint32[2]`` or typed);
- ``x``: one sample ``(T, 3)`` float32, features (size, direction, iat), direction 0 = no
  packet; the valid length ``L`` is derived from ``x`` itself;
- ``alpha``: scalar magnitude in (0, 1) (may be traced);
- ``ctx``: the sample's :class:`~jtcaug.aug.stats.AugContext` (only ``packet_loss`` reads it).

They act on the valid prefix, move/copy whole columns (all three features together), drop
anything pushed past T and re-pad the tail with zeros. Shapes are static: every variable-length
edit is index arithmetic (cumulative sums, comparisons, gathers), so the functions compose with
``jit`` and ``vmap``. ``cutmix`` is the one batch-level function.

Each public function is split into a draw step (all randomness) and a deterministic private
helper that takes the draws as arguments (``_translate``, ``_wrap``, ...), so tests can check
exact outputs for hand-picked draws.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jtcaug import IAT, N_FEATURES
from jtcaug.aug import _random
from jtcaug.aug._common import (
    add_small,
    gather_columns,
    inverse_permutation,
    midpoint,
    prefix_counts,
    prefix_sum,
    randint,
    rows_to_slots,
    take_small,
    valid_length,
)
from jtcaug.aug._ranks import distinct_keys, ranks_distinct
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

# [paper] The four TCP-aware functions: each valid packet starts an event with probability
# TCP_EVENT_RATE * alpha.
TCP_EVENT_RATE = 0.1
# [rebuilt] Fast retransmit: a lost packet reappears after the next FASTRETR_K packets
# (TCP's three-duplicate-ACK rule), clamped to the end of the flow.
FASTRETR_K = 3
# [rebuilt] Retransmission timeout: an event covers a burst of l ~ U{lo..hi} packets
# (inclusive), the unacknowledged window that a timeout resends.
RTO_BURST = (2, 5)

# [chosen] Packet Loss half-window h. "percent" (default): h = (BASE + SLOPE * alpha) % of the
# flow's time span Delta, which matches the paper's example (5 of 20 packets removed);
# "seconds": h = BASE + SLOPE * alpha seconds, the paper's literal "delta +- (10 alpha + 5)".
PACKET_LOSS_BASE_PCT = 5.0
PACKET_LOSS_SLOPE_PCT = 10.0
PACKET_LOSS_BASE_S = 5.0
PACKET_LOSS_SLOPE_S = 10.0
PACKET_LOSS_UNITS = ("percent", "seconds")

# IAT normalization floor (spec section 1): iat' = (log10(clip(iat, floor, q99)) - log10(floor))
# / (log10(q99) - log10(floor)). Packet Loss inverts it to work in seconds.
IAT_FLOOR_S = 1e-7

# Wrap's per-packet choices.
_KEEP, _INTERPOLATE, _DISCARD = 0, 1, 2


# --- Shared index helpers ----------------------------------------------------------------------


def _check_sample(x: jnp.ndarray, name: str) -> None:
    """Shape/dtype checks that can run at trace time (shapes and dtypes are static)."""
    if x.ndim != 2 or x.shape[-1] != N_FEATURES:
        raise ValueError(f"{name}: x must be one sample of shape (T, 3), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name}: x must be a floating array, got dtype {x.dtype}")


def _count_at_most(thresholds: tuple[float, ...], alpha: jnp.ndarray) -> jnp.ndarray:
    """``#{a_i <= alpha}`` as int32."""
    return jnp.sum(jnp.asarray(thresholds, jnp.float32) <= alpha, dtype=jnp.int32)


def _positions(x: jnp.ndarray) -> jnp.ndarray:
    return jnp.arange(x.shape[0], dtype=jnp.int32)


# Prefix operations as log-depth associative scans (see _common.prefix_sum for why).


def _cummax(v: jnp.ndarray) -> jnp.ndarray:
    return lax.associative_scan(jnp.maximum, v)


def _suffix_min(v: jnp.ndarray) -> jnp.ndarray:
    """``out[t] = min(v[t:])``."""
    return lax.associative_scan(jnp.minimum, v, reverse=True)


def _interleave_midpoints(x: jnp.ndarray) -> jnp.ndarray:
    """``(2T, 3)``: row ``2t`` is ``x[t]``, row ``2t+1`` the midpoint of ``x[t]`` and ``x[t+1]``.

    The midpoint after the last column averages with a zero column; callers never emit it
    past the valid prefix.
    """
    following = jnp.concatenate([x[1:], jnp.zeros_like(x[:1])])
    return jnp.stack([x, midpoint(x, following)], axis=1).reshape(2 * x.shape[0], x.shape[1])


# --- Horizontal flip, interpolation, translation -----------------------------------------------


def horizontal_flip(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Reverses the valid prefix: ``x'[t] = x[L-1-t]`` for ``t < L``. Ignores key and alpha.

    Args/returns: ``x`` and ``x'`` are ``(T, 3)``.
    """
    del key, alpha, ctx
    _check_sample(x, "horizontal_flip")
    # Reversing the whole of x moves its zero padding to the front; a window of T rows that
    # starts past it, over the zero rows appended behind, is the answer. One contiguous slice
    # per flow: on XLA:CPU faster than gathering each column with a validity mask (da7fcef).
    t_len = x.shape[0]
    reversed_then_zeros = jnp.concatenate([x[::-1], jnp.zeros_like(x)], axis=0)
    return lax.dynamic_slice(reversed_then_zeros, (t_len - valid_length(x), jnp.int32(0)), x.shape)


def _interpolate(x: jnp.ndarray, length: jnp.ndarray, start: jnp.ndarray) -> jnp.ndarray:
    """T consecutive values from ``start`` of the densified prefix (length ``2L-1``), re-padded."""
    expanded = _interleave_midpoints(x)
    src = start + _positions(x)
    return gather_columns(expanded, src, src < 2 * length - 1)


def interpolation(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Inserts the midpoint of every consecutive pair, then keeps T values from a random start.

    The start is ``s ~ U{0..max(0, 2L-1-T)}``. Direction is averaged like the other features,
    so a midpoint between opposite directions has direction 0. Ignores alpha.
    """
    del alpha, ctx
    _check_sample(x, "interpolation")
    length = valid_length(x)
    start = randint(key, 0, jnp.maximum(0, 2 * length - 1 - x.shape[0]))
    return _interpolate(x, length, start)


def _translate(
    x: jnp.ndarray, length: jnp.ndarray, n: jnp.ndarray, t: jnp.ndarray, left: jnp.ndarray
) -> jnp.ndarray:
    """Shifts the columns from ``t`` on by ``n`` places.

    Left (a drop): columns ``t..t+n-1`` disappear, ``x[t+n:L]`` moves to ``t``, the freed
    tail is zero. Right (a duplicate/retransmission): ``x[t:L]`` moves to ``t+n`` and slots
    ``t..t+n-1`` hold copies of ``x[t]``; columns pushed past T are dropped.
    """
    j = _positions(x)
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
    _check_sample(x, "translation")
    alpha = jnp.asarray(alpha, jnp.float32)
    k_n, k_dir, k_t = _random.split(key, 3)
    length = valid_length(x)
    n = randint(k_n, 1, 1 + _count_at_most(TRANSLATION_THRESHOLDS, alpha))
    left = _random.bernoulli(k_dir)
    t = randint(k_t, 0, jnp.maximum(length - 1, 0))
    return _translate(x, length, n, t, left)


# --- Wrap, permutation -------------------------------------------------------------------------


def _wrap(x: jnp.ndarray, length: jnp.ndarray, choice: jnp.ndarray) -> jnp.ndarray:
    """Applies per-packet choices ``(T,)`` (0 keep, 1 interpolate, 2 discard) to the prefix.

    Keep emits ``x[t]``; interpolate emits ``x[t]`` then the midpoint of ``x[t], x[t+1]``
    (only ``x[t]`` at ``t = L-1``); discard emits nothing. Emissions past T are dropped.
    """
    t_len = x.shape[0]
    t = _positions(x)
    emit_packet = (t < length) & (choice != _DISCARD)
    emit_midpoint = (t < length - 1) & (choice == _INTERPOLATE)
    # Slots from a T-long prefix sum of per-packet emission counts (1.3x faster than
    # compacting the 2T interleaved candidates with a 2T-long scan), then rows_to_slots.
    per_packet = emit_packet.astype(jnp.int32) + emit_midpoint.astype(jnp.int32)
    first_slot = prefix_sum(per_packet) - per_packet
    packet_slot = jnp.where(emit_packet, first_slot, t_len)
    midpoint_slot = jnp.where(emit_midpoint, first_slot + emit_packet.astype(jnp.int32), t_len)
    following = jnp.concatenate([x[1:], jnp.zeros_like(x[:1])])
    return rows_to_slots(
        ((x, (packet_slot,)), (midpoint(x, following), (midpoint_slot,))), t_len
    )


def wrap(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Time warp: each packet is interpolated (prob. alpha/2), discarded (alpha/2) or kept."""
    del ctx
    _check_sample(x, "wrap")
    alpha = jnp.asarray(alpha, jnp.float32)
    u = _random.uniform(key, (x.shape[0],), jnp.float32)
    p_interpolate = WRAP_INTERPOLATE_RATE * alpha
    choice = jnp.where(
        u < p_interpolate,
        _INTERPOLATE,
        jnp.where(u < p_interpolate + WRAP_DISCARD_RATE * alpha, _DISCARD, _KEEP),
    )
    return _wrap(x, valid_length(x), choice)


def _permute_segments(
    x: jnp.ndarray, length: jnp.ndarray, cut: jnp.ndarray, words: jnp.ndarray
) -> jnp.ndarray:
    """Cuts the valid prefix into segments and concatenates them in a random order.

    Args:
      x: ``(T, 3)``.
      length: valid length L.
      cut: ``(T,)`` bool, True where a new segment starts (only positions ``1..L-1`` count).
      words: ``(T,)`` uint32 random words; a segment's word is the one at its first position,
        and segments are placed in increasing order of their words' high bits (ties, rare,
        by position): a uniformly random order.
    """
    t_len = x.shape[0]
    position_bits = max(1, (t_len - 1).bit_length())
    random_bits = 30 - 2 * position_bits  # 20 for T <= 32; bit 30 marks padding
    t = _positions(x)
    valid = t < length
    first = (cut & valid) | (t == 0)
    # Packed as (first position, random bits), a running maximum hands every packet its
    # segment's first position and random bits at once (later starts compare larger).
    random_high = (words >> (32 - random_bits)).astype(jnp.int32)
    segment = _running_max(jnp.where(first, (t << random_bits) | random_high, 0))
    segment_random = segment & ((1 << random_bits) - 1)
    segment_first = segment >> random_bits
    # Output order: by segment key, then position. Ranking these distinct keys gives every
    # packet's new position without materializing segment lengths; padding ranks last.
    order_key = jnp.where(
        valid,
        (((segment_random << position_bits) | segment_first) << position_bits) | t,
        (1 << 30) | t,
    )
    # Valid packets rank first, so output slot j < L takes the packet ranked j.
    source = inverse_permutation(ranks_distinct(order_key))
    return jnp.where(valid[:, None], x[source], jnp.zeros((), x.dtype))


def _running_max(v: jnp.ndarray) -> jnp.ndarray:
    """``out[t] = max(v[:t+1])`` for non-negative int32 ``v``, as one masked reduction.

    Here (a few cheap producers) this measured as fast as the log-depth scan followed by a
    forced materialization, and it is a single fusion.
    """
    t = jnp.arange(v.shape[0])
    return jnp.max(jnp.where(t[None, :] <= t[:, None], v[None, :], 0), axis=1)


def permutation(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Cuts the prefix into ``n ~ U{2..N}`` segments (capped at L) and shuffles them.

    ``N = 2 + #{a_i <= alpha}`` over :data:`PERMUTATION_THRESHOLDS`; the n-1 cut points are
    distinct and uniform among ``1..L-1``; the segment order is a uniform permutation.
    """
    del ctx
    _check_sample(x, "permutation")
    alpha = jnp.asarray(alpha, jnp.float32)
    t_len = x.shape[0]
    # Row 0: cut keys (position 0 is never a cut candidate, so its word draws n); row 1: the
    # segments' order.
    words = _random.bits(key, (2, t_len))
    length = valid_length(x)
    t = _positions(x)
    n_max = PERMUTATION_MIN_SEGMENTS + _count_at_most(PERMUTATION_THRESHOLDS, alpha)
    n_draw = PERMUTATION_MIN_SEGMENTS + _below(words[0, 0], n_max - PERMUTATION_MIN_SEGMENTS + 1)
    n = jnp.minimum(n_draw, length)
    # n-1 distinct cut points: the candidates with the smallest random keys. Ranks (not a
    # threshold on the draws) keep the count exact.
    candidate = (t >= 1) & (t < length)
    cut = candidate & (ranks_distinct(distinct_keys(words[0], last=~candidate)) < n - 1)
    return _permute_segments(x, length, cut, words[1])


def _below(word: jnp.ndarray, span: jnp.ndarray) -> jnp.ndarray:
    """Uniform int32 in ``[0, span)`` from one random word (multiply-shift on 16 bits)."""
    return (((word >> 16) * span.astype(jnp.uint32)) >> 16).astype(jnp.int32)


# --- TCP-aware: dup/perm x RTO/FastRetr --------------------------------------------------------


def _emit_with_delays(
    x: jnp.ndarray,
    length: jnp.ndarray,
    delayed: jnp.ndarray,
    anchor: jnp.ndarray,
    keep_original: jnp.ndarray,
) -> jnp.ndarray:
    """Re-emits the prefix with some packets (re)sent after a later one.

    The output is, for each slot ``a = 0..L-1`` in turn: ``x[a]`` if ``keep_original[a]``,
    then every delayed packet ``i`` with ``anchor[i] == a`` in increasing ``i``. Truncated to T.

    Args:
      x: ``(T, 3)``.
      length: valid length L.
      delayed: ``(T,)`` bool, packets emitted (again) after their anchor.
      anchor: ``(T,)`` int32 in ``[0, L-1]``, non-decreasing over the delayed packets (true for
        "after the next k packets" and "after the next packet outside a burst"); this lets
        positions come from prefix counts instead of a sort.
      keep_original: ``(T,)`` bool, packets that also stay in their own slot (a duplicate)
        rather than only appearing after the anchor (a delay).
    """
    t_len = x.shape[0]
    t = _positions(x)
    valid = t < length
    delayed = delayed & valid
    keep_original = keep_original & valid
    anchor = jnp.clip(anchor, 0, t_len - 1)
    kept = keep_original.astype(jnp.int32)
    late = delayed.astype(jnp.int32)
    late_per_slot = add_small(anchor, late, t_len)
    # One scan for the three prefix counts (columns: originals + delayed per slot, originals,
    # delayed packets), packed into one word; each column sums to at most 2T.
    inclusive, exclusive = prefix_counts((kept + late_per_slot, kept, late), max_total=2 * t_len)
    original_pos = exclusive[:, 0]
    # Before delayed packet i: kept originals up to its anchor slot, and (by monotone anchors)
    # exactly the delayed packets with a smaller index.
    delayed_pos = take_small(inclusive[:, 1], anchor) + exclusive[:, 2]
    original_slot = jnp.where(keep_original, original_pos, t_len)
    delayed_slot = jnp.where(delayed, delayed_pos, t_len)
    return rows_to_slots(((x, (original_slot, delayed_slot)),), t_len)


def _fastretr_anchor(x: jnp.ndarray, length: jnp.ndarray) -> jnp.ndarray:
    """Slot after which a packet lost at t reappears: ``min(t + FASTRETR_K, L-1)``."""
    return jnp.minimum(_positions(x) + FASTRETR_K, length - 1)


def _rto_bursts(
    x: jnp.ndarray, length: jnp.ndarray, events: jnp.ndarray, burst_len: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Burst membership and resend slot for retransmission-timeout events.

    An event at i covers packets ``i..i+burst_len[i]-1`` (within the prefix); overlapping or
    adjacent ("chained") bursts merge, each packet is resent at most once. A burst packet is
    resent after the next packet outside every burst, or at the end (slot L-1) if none follows.

    Returns:
      ``(in_burst (T,) bool, anchor (T,) int32)``.
    """
    t_len = x.shape[0]
    t = _positions(x)
    valid = t < length
    reach = _cummax(jnp.where(events & valid, t + burst_len, 0))
    in_burst = valid & (t < reach)
    free_at_or_after = _suffix_min(jnp.where(valid & ~in_burst, t, t_len))
    free_after = jnp.concatenate([free_at_or_after[1:], jnp.full((1,), t_len, jnp.int32)])
    return in_burst, jnp.minimum(free_after, length - 1)


def _tcp_events(key: jax.Array, x: jnp.ndarray, alpha) -> jnp.ndarray:
    """``(T,)`` bool: each position starts an event with probability TCP_EVENT_RATE * alpha."""
    p = TCP_EVENT_RATE * jnp.asarray(alpha, jnp.float32)
    return _random.bernoulli(key, p, (x.shape[0],))


def _rto_draws(key: jax.Array, x: jnp.ndarray, alpha) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Events ``(T,)`` bool and burst lengths ``(T,)`` int32 from one random word per position.

    Random bits dominate the cost of these small functions: the upper 24 bits give the event's
    uniform draw, the lower 8 the burst length (exactly uniform as the span, 4, divides 256).
    """
    bits = _random.bits(key, (x.shape[0],))
    uniform = (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))
    events = uniform < TCP_EVENT_RATE * jnp.asarray(alpha, jnp.float32)
    span = RTO_BURST[1] - RTO_BURST[0] + 1
    burst_len = RTO_BURST[0] + (((bits & 0xFF) * span) >> 8).astype(jnp.int32)
    return events, burst_len


def _dup_rto(x, length, events, burst_len):
    in_burst, anchor = _rto_bursts(x, length, events, burst_len)
    return _emit_with_delays(x, length, in_burst, anchor, keep_original=jnp.ones_like(in_burst))


def _perm_rto(x, length, events, burst_len):
    in_burst, anchor = _rto_bursts(x, length, events, burst_len)
    return _emit_with_delays(x, length, in_burst, anchor, keep_original=~in_burst)


def _dup_fastretr(x, length, lost):
    anchor = _fastretr_anchor(x, length)
    return _emit_with_delays(x, length, lost, anchor, keep_original=jnp.ones_like(lost))


def _perm_fastretr(x, length, lost):
    return _emit_with_delays(x, length, lost, _fastretr_anchor(x, length), keep_original=~lost)


def dup_rto(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Retransmission after a timeout: a burst stays in place and is resent once more.

    Each valid packet starts an event with probability ``TCP_EVENT_RATE * alpha``; an event
    covers a burst of ``l ~ U{RTO_BURST}`` packets; the burst's copy follows the next packet
    outside every burst (chained bursts accumulate; leftovers go at the end). Truncated to T.
    """
    del ctx
    _check_sample(x, "dup_rto")
    return _dup_rto(x, valid_length(x), *_rto_draws(key, x, alpha))


def perm_rto(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """As :func:`dup_rto`, but the burst is delayed (moved after the next delivered packet)."""
    del ctx
    _check_sample(x, "perm_rto")
    return _perm_rto(x, valid_length(x), *_rto_draws(key, x, alpha))


def dup_fastretr(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Fast retransmit: a packet lost with probability ``TCP_EVENT_RATE * alpha`` stays in place
    and a copy follows the next :data:`FASTRETR_K` packets (clamped to the end)."""
    del ctx
    _check_sample(x, "dup_fastretr")
    return _dup_fastretr(x, valid_length(x), _tcp_events(key, x, alpha))


def perm_fastretr(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """As :func:`dup_fastretr`, but the lost packet is moved, not copied."""
    del ctx
    _check_sample(x, "perm_fastretr")
    return _perm_fastretr(x, valid_length(x), _tcp_events(key, x, alpha))


# --- Packet loss -------------------------------------------------------------------------------


def _iat_seconds(iat_norm: jnp.ndarray, iat_q99: jnp.ndarray) -> jnp.ndarray:
    """Inverts the IAT normalization (spec section 1): normalized values -> seconds."""
    log_floor = jnp.log10(jnp.asarray(IAT_FLOOR_S, jnp.float32))
    log_span = jnp.log10(iat_q99) - log_floor
    return jnp.power(jnp.asarray(10.0, jnp.float32), iat_norm * log_span + log_floor)


def _iat_normalized(seconds: jnp.ndarray, iat_q99: jnp.ndarray) -> jnp.ndarray:
    """The IAT normalization of spec section 1: seconds -> [0, 1]."""
    log_floor = jnp.log10(jnp.asarray(IAT_FLOOR_S, jnp.float32))
    clipped = jnp.clip(seconds, IAT_FLOOR_S, iat_q99)
    normalized = (jnp.log10(clipped) - log_floor) / (jnp.log10(iat_q99) - log_floor)
    # Compiled log10 and the folded constant can disagree in the last bit: keep [0, 1] exact.
    return jnp.clip(normalized, 0.0, 1.0)


def _arrival_seconds(x: jnp.ndarray, length: jnp.ndarray, iat_q99: jnp.ndarray) -> jnp.ndarray:
    """``(T,)`` arrival time of each packet relative to packet 0 (the first IAT is not a gap
    inside the flow); constant past the prefix."""
    t = _positions(x)
    gaps = jnp.where((t > 0) & (t < length), _iat_seconds(x[:, IAT], iat_q99), 0.0)
    return prefix_sum(gaps)


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
    the flow's first packets are removed the new first packet gets IAT 0, the same rule as
    the dataset curation (datasets.md 1.3). Other IATs are left bit-for-bit unchanged.
    """
    t = _positions(x)
    valid = t < length
    arrival = _arrival_seconds(x, length, iat_q99)
    # Arrival times never decrease, so the removed packets are one run of positions
    # [first, after): counting beats a scan for the previous kept packet and a scatter.
    first = jnp.sum(valid & (arrival < low), dtype=jnp.int32)
    after = jnp.maximum(jnp.sum(valid & (arrival <= high), dtype=jnp.int32), first)
    n_removed = after - first

    def arrival_at(i):
        return jnp.sum(jnp.where(t == i, arrival, 0.0))

    merged_gap = arrival_at(after) - arrival_at(first - 1)
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
    _check_sample(x, "packet_loss")
    if window_units not in PACKET_LOSS_UNITS:
        raise ValueError(
            f"packet_loss: window_units must be one of {PACKET_LOSS_UNITS}, got {window_units!r}"
        )
    alpha = jnp.asarray(alpha, jnp.float32)
    iat_q99 = jnp.asarray(ctx.iat_q99, jnp.float32)
    length = valid_length(x)
    span = _arrival_seconds(x, length, iat_q99)[-1]
    center = _random.uniform(key, (), jnp.float32, 0.0, span)
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
    k_perm, k_width, k_start = _random.split(key, 3)
    shuffled = _random.permutation(k_perm, batch_size).astype(jnp.int32)
    slot = jnp.arange(batch_size, dtype=jnp.int32)
    # Pairs are consecutive entries of the shuffled order: (0, 1), (2, 3), ...
    mate_slot = slot ^ 1
    mate_slot = jnp.where(mate_slot < batch_size, mate_slot, slot)
    partner = jnp.zeros_like(slot).at[shuffled].set(shuffled[mate_slot])
    pair_of = jnp.zeros_like(slot).at[shuffled].set(slot // 2)
    n_pairs = (batch_size + 1) // 2
    width = _random.randint(k_width, (n_pairs,), 0, t_len)
    start = _random.randint(k_start, (n_pairs,), 0, t_len - width)
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
