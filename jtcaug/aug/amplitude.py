"""Amplitude family (spec section 4): additive, class-scaled patterns on size or IAT.

Template, for the chosen feature d and every valid position t::

    x'[t, d] = clip(x[t, d] + alpha * s * c(t), 0, 1)

``s`` is the class sigma (per position, or pooled for constant_wrapup) and ``c`` a random
pattern. Direction is never touched, and neither is padding. Every function takes one sample
``x (T, 3)`` and returns ``(T, 3)`` of the same dtype.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug import IAT, SIZE
from jtcaug.aug import _random
from jtcaug.aug._common import valid_length
from jtcaug.aug._ranks import distinct_keys, ranks_distinct
from jtcaug.aug._xla import materialize
from jtcaug.aug.stats import AugContext

# [chosen] spike_noise: spikes are +-SPIKE_HEIGHT class sigmas; the number of spikes grows
# with alpha up to one spike per SPIKE_EVERY valid packets.
SPIKE_HEIGHT = 3.0
SPIKE_EVERY = 4
# [chosen] gaussian_wrapup: the smooth curve is the cubic through this many equally spaced
# knots over the valid prefix (4 knots -> exactly one cubic polynomial).
WRAPUP_KNOTS = 4
# [paper] sine_wrapup: frequency (cycles over T) and phase ranges.
SINE_FREQ_RANGE = (0.5, 3.0)


def _pick_feature(key: jax.Array) -> jnp.ndarray:
    """Size or IAT, with probability 1/2 each (the spec's "feature ◐")."""
    return jnp.where(_random.bernoulli(key), IAT, SIZE)


def _add_pattern(
    x: jnp.ndarray, feature: jnp.ndarray, delta: jnp.ndarray
) -> jnp.ndarray:
    """Adds ``delta (T,)`` to column ``feature`` at valid positions and clips to [0, 1]."""
    t_len = x.shape[0]
    valid = jnp.arange(t_len) < valid_length(x)
    is_feature = jnp.arange(x.shape[1]) == feature
    touched = valid[:, None] & is_feature[None, :]
    moved = jnp.clip(x + delta[:, None].astype(x.dtype), 0.0, 1.0)
    return jnp.where(touched, moved, x)


def _class_sigma(ctx: AugContext, feature: jnp.ndarray) -> jnp.ndarray:
    """``(T,)`` per-position sigma of the sample's class for ``feature``."""
    return jnp.take(ctx.sigma, feature, axis=1)


def gaussian_noise(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Independent N(0, 1) noise per position, scaled by alpha and the class sigma."""
    k_feat, k_noise = _random.split(key)
    feature = _pick_feature(k_feat)
    # erf_inv is two polynomials and a select: left to fuse into the (T, 3) output, XLA
    # evaluated it once per feature. Computed once: 1.28-1.38x per call, 1.30-1.45x in a
    # jitted loop (A/B in commit e375390). constant_wrapup's one draw per flow is better left
    # fused (0.75x in a loop).
    noise = materialize(_random.normal(k_noise, (x.shape[0],), x.dtype))
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * noise)


def spike_noise(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """A few +-3 sigma spikes at distinct valid positions; more spikes with larger alpha."""
    t_len = x.shape[0]
    words = _random.bits(key, (3, t_len))
    feature = jnp.where((words[2, 0] >> 31) == 1, IAT, SIZE)
    length = valid_length(x)
    max_spikes = jnp.maximum(
        1, jnp.ceil(alpha * length.astype(jnp.float32) / SPIKE_EVERY).astype(jnp.int32)
    )
    # n_spikes ~ U{1..max_spikes}: multiply-shift on 16 random bits.
    n_spikes = 1 + (((words[2, 1] >> 16) * max_spikes.astype(jnp.uint32)) >> 16).astype(jnp.int32)
    # Distinct positions without replacement: rank random keys, invalid positions last.
    t = jnp.arange(t_len)
    is_spike = ranks_distinct(distinct_keys(words[0], last=t >= length)) < n_spikes
    sign = jnp.where((words[1] >> 31) == 1, 1.0, -1.0).astype(x.dtype)
    pattern = jnp.where(is_spike, SPIKE_HEIGHT * sign, 0.0).astype(x.dtype)
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * pattern)


def constant_wrapup(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """One constant N(0,1) offset on IAT for the whole flow, scaled by the pooled class sigma."""
    c = _random.normal(key, (), x.dtype)
    shift = alpha * ctx.sigma_global[IAT] * c
    return _add_pattern(x, jnp.asarray(IAT), jnp.full((x.shape[0],), shift, x.dtype))


def gaussian_wrapup(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Magnitude warp: a smooth random curve (cubic through N(0,1) knots) times class sigma."""
    k_feat, k_knots = _random.split(key)
    t_len = x.shape[0]
    feature = _pick_feature(k_feat)
    knot_values = _random.normal(k_knots, (WRAPUP_KNOTS,), jnp.float32)
    # Knots span the valid prefix [0, L-1], so short flows get the whole curve too.
    span = jnp.maximum(valid_length(x) - 1, 1).astype(jnp.float32)
    u = jnp.arange(t_len, dtype=jnp.float32) / span
    curve = _lagrange_basis(u) @ knot_values
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * curve.astype(x.dtype))


def _lagrange_basis(u: jnp.ndarray) -> jnp.ndarray:
    """``(T, WRAPUP_KNOTS)`` Lagrange basis at ``u`` for knots equally spaced on [0, 1]."""
    nodes = np.linspace(0.0, 1.0, WRAPUP_KNOTS)
    columns = []
    for i in range(WRAPUP_KNOTS):
        others = np.delete(nodes, i)
        denominator = float(np.prod(nodes[i] - others))
        columns.append(jnp.prod(u[:, None] - others[None, :].astype(np.float32), axis=1)
                       / denominator)
    return jnp.stack(columns, axis=1)


def sine_wrapup(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """A sine of random frequency and phase along the flow, scaled by alpha and class sigma."""
    k_feat, k_freq, k_phase = _random.split(key, 3)
    t_len = x.shape[0]
    feature = _pick_feature(k_feat)
    freq = _random.uniform(
        k_freq, (), jnp.float32, SINE_FREQ_RANGE[0], SINE_FREQ_RANGE[1]
    )
    phase = _random.uniform(k_phase, (), jnp.float32, 0.0, 2.0 * math.pi)
    t = jnp.arange(t_len, dtype=jnp.float32)
    wave = jnp.sin(2.0 * math.pi * freq * t / t_len + phase).astype(x.dtype)
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * wave)
