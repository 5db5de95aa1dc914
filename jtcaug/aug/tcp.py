"""The four TCP-aware augmentations of the sequence family (docs/augmentations.md).

Duplicates and delays of whole packet columns as TCP's retransmission timeout (RTO) and fast
retransmit produce them: ``dup_*`` keeps the original in place and sends a copy later,
``perm_*`` only sends it later. The paper points to an unpublished appendix for the exact
algorithms; the rules here are rebuilt from TCP's behaviour (docs/fidelity.md). Every
function takes one sample ``x (T, 3)`` and returns ``(T, 3)``; IATs are not recomputed.

Example:
    >>> out = dup_fastretr(jax.random.key(0), x, 0.5, ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jtcaug.aug._common import check_sample, gather_columns, positions, uniform_int, valid_length
from jtcaug.aug.stats import AugContext

# [paper] The four TCP-aware functions: each valid packet starts an event with probability
# TCP_EVENT_RATE * alpha.
TCP_EVENT_RATE = 0.1
# [rebuilt] Fast retransmit: a lost packet reappears after the next FASTRETR_K packets
# (TCP's three-duplicate-ACK rule), clamped to the end of the flow.
FASTRETR_K = 3
# [rebuilt] Retransmission timeout: an event covers a burst of l ~ U{lo..hi} packets
# (inclusive), the unacknowledged window that a timeout resends.
RTO_BURST = (2, 5)


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
      anchor: ``(T,)`` int32 in ``[0, L-1]``, the slot a delayed packet follows.
      keep_original: ``(T,)`` bool, packets that also stay in their own slot (a duplicate)
        rather than only appearing after the anchor (a delay).

    Returns:
      ``(T, 3)``.
    """
    t_len = x.shape[0]
    t = positions(x)
    valid = t < length
    # Every emission gets the sort key (slot, 0) for an original or (anchor, 1 + i) for
    # delayed packet i; emissions that do not happen sort last.
    never = (t_len + 1) * t_len
    original_key = jnp.where(keep_original & valid, t * (t_len + 1), never)
    delayed_key = jnp.where(delayed & valid, anchor * (t_len + 1) + 1 + t, never)
    keys = jnp.concatenate([original_key, delayed_key])
    order = jnp.argsort(keys)[:t_len]
    source = jnp.concatenate([t, t])[order]
    return gather_columns(x, source, keys[order] < never)


def _fastretr_anchor(x: jnp.ndarray, length: jnp.ndarray) -> jnp.ndarray:
    """Slot after which a packet lost at t reappears: ``min(t + FASTRETR_K, L-1)``."""
    return jnp.minimum(positions(x) + FASTRETR_K, length - 1)


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
    t = positions(x)
    valid = t < length
    reach = lax.cummax(jnp.where(events & valid, t + burst_len, 0))
    in_burst = valid & (t < reach)
    free_at_or_after = lax.cummin(jnp.where(valid & ~in_burst, t, t_len), reverse=True)
    free_after = jnp.concatenate([free_at_or_after[1:], jnp.full((1,), t_len, jnp.int32)])
    return in_burst, jnp.minimum(free_after, length - 1)


def _tcp_events(key: jax.Array, x: jnp.ndarray, alpha) -> jnp.ndarray:
    """``(T,)`` bool: each position starts an event with probability TCP_EVENT_RATE * alpha."""
    p = TCP_EVENT_RATE * jnp.asarray(alpha, jnp.float32)
    return jax.random.bernoulli(key, p, (x.shape[0],))


def _rto_draws(key: jax.Array, x: jnp.ndarray, alpha) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Events ``(T,)`` bool and burst lengths ``(T,)`` int32, ``l ~ U{RTO_BURST}``."""
    k_events, k_burst = jax.random.split(key)
    burst_len = uniform_int(k_burst, RTO_BURST[0], RTO_BURST[1], (x.shape[0],))
    return _tcp_events(k_events, x, alpha), burst_len


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
    check_sample(x, "dup_rto")
    return _dup_rto(x, valid_length(x), *_rto_draws(key, x, alpha))


def perm_rto(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """As :func:`dup_rto`, but the burst is delayed (moved after the next delivered packet)."""
    del ctx
    check_sample(x, "perm_rto")
    return _perm_rto(x, valid_length(x), *_rto_draws(key, x, alpha))


def dup_fastretr(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Fast retransmit: a packet lost with probability ``TCP_EVENT_RATE * alpha`` stays in place
    and a copy follows the next :data:`FASTRETR_K` packets (clamped to the end)."""
    del ctx
    check_sample(x, "dup_fastretr")
    return _dup_fastretr(x, valid_length(x), _tcp_events(key, x, alpha))


def perm_fastretr(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """As :func:`dup_fastretr`, but the lost packet is moved, not copied."""
    del ctx
    check_sample(x, "perm_fastretr")
    return _perm_fastretr(x, valid_length(x), _tcp_events(key, x, alpha))
