"""Amplitude family: additive, class-scaled patterns on size or IAT (docs/augmentations.md).

Template, for the chosen feature d and every valid position t::

    x'[t, d] = clip(x[t, d] + alpha * s * c(t), 0, 1)

``s`` is the class sigma (per position, or pooled over positions for constant_wrapup) and
``c`` a random pattern. Direction and padding are never touched. Every function takes one
sample ``x (T, 3)`` and returns ``(T, 3)`` of the same dtype.

Example:
    >>> out = gaussian_noise(jax.random.key(0), x, 0.5, stats.context(y))  # doctest: +SKIP
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug import IAT, SIZE
from jtcaug.aug._common import uniform_int, valid_length
from jtcaug.aug.stats import AugContext

# [chosen] spike_noise: spikes are +-SPIKE_HEIGHT class sigmas; the number of spikes grows
# with alpha up to one spike per SPIKE_EVERY valid packets.
SPIKE_HEIGHT = 3.0
SPIKE_EVERY = 4
# [chosen] gaussian_wrapup: the smooth curve is the cubic through this many equally spaced
# knots over the valid prefix (4 knots -> exactly one cubic polynomial).
WRAPUP_KNOTS = 4
# [paper] sine_wrapup: frequency range (cycles over T); the phase is U[0, 2 pi).
SINE_FREQ_RANGE = (0.5, 3.0)


def _pick_feature(key: jax.Array) -> jnp.ndarray:
    """Size or IAT, with probability 1/2 each."""
    return jnp.where(jax.random.bernoulli(key), IAT, SIZE)


def _add_pattern(x: jnp.ndarray, feature: jnp.ndarray, delta: jnp.ndarray) -> jnp.ndarray:
    """Adds ``delta (T,)`` to column ``feature`` at valid positions and clips to [0, 1]."""
    valid = jnp.arange(x.shape[0]) < valid_length(x)
    touched = valid[:, None] & (jnp.arange(x.shape[1]) == feature)[None, :]
    moved = jnp.clip(x + delta[:, None].astype(x.dtype), 0.0, 1.0)
    return jnp.where(touched, moved, x)


def _class_sigma(ctx: AugContext, feature: jnp.ndarray) -> jnp.ndarray:
    """``(T,)`` per-position sigma of the sample's class for ``feature``."""
    return jnp.take(ctx.sigma, feature, axis=1)


def gaussian_noise(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Adds ``alpha * sigma[t] * z[t]``, ``z[t] ~ N(0, 1)`` iid, to size or IAT (1/2 each).

    Args:
      key: PRNG key.
      x: one flow ``(T, 3)``.
      alpha: magnitude in [0, 1].
      ctx: the sample's class statistics.

    Returns:
      ``(T, 3)``, same dtype as ``x``.
    """
    k_feature, k_noise = jax.random.split(key)
    feature = _pick_feature(k_feature)
    noise = jax.random.normal(k_noise, (x.shape[0],), jnp.float32)
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * noise)


def spike_noise(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Adds ``m`` spikes of ``+-SPIKE_HEIGHT * alpha * sigma[t]`` at distinct valid positions.

    ``m ~ U{1..max(1, ceil(alpha * L / SPIKE_EVERY))}``, signs uniform, on size or IAT (1/2
    each). Args and returns as :func:`gaussian_noise`.
    """
    k_feature, k_count, k_where, k_sign = jax.random.split(key, 4)
    t_len = x.shape[0]
    feature = _pick_feature(k_feature)
    length = valid_length(x)
    max_spikes = jnp.ceil(alpha * length.astype(jnp.float32) / SPIKE_EVERY).astype(jnp.int32)
    n_spikes = uniform_int(k_count, 1, jnp.maximum(1, max_spikes))
    # m positions without replacement: the m valid positions with the smallest random scores.
    valid = jnp.arange(t_len) < length
    score = jnp.where(valid, jax.random.uniform(k_where, (t_len,)), 2.0)
    is_spike = valid & (jnp.argsort(jnp.argsort(score)) < n_spikes)
    sign = jnp.where(jax.random.bernoulli(k_sign, shape=(t_len,)), 1.0, -1.0)
    pattern = jnp.where(is_spike, SPIKE_HEIGHT * sign, 0.0)
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * pattern)


def constant_wrapup(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Adds one offset ``alpha * sigma_global[IAT] * c``, ``c ~ N(0, 1)``, to every valid IAT.

    Args and returns as :func:`gaussian_noise`.
    """
    c = jax.random.normal(key, (), jnp.float32)
    shift = alpha * ctx.sigma_global[IAT] * c
    return _add_pattern(x, jnp.asarray(IAT), jnp.full((x.shape[0],), shift, jnp.float32))


def gaussian_wrapup(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Magnitude warp: adds ``alpha * sigma[t] * curve(t)`` to size or IAT (1/2 each).

    ``curve`` is the cubic through ``WRAPUP_KNOTS`` N(0, 1) knots spread evenly over the
    valid prefix ``[0, L-1]``. Args and returns as :func:`gaussian_noise`.
    """
    k_feature, k_knots = jax.random.split(key)
    feature = _pick_feature(k_feature)
    knot_values = jax.random.normal(k_knots, (WRAPUP_KNOTS,), jnp.float32)
    span = jnp.maximum(valid_length(x) - 1, 1).astype(jnp.float32)
    u = jnp.arange(x.shape[0], dtype=jnp.float32) / span
    curve = _lagrange_basis(u) @ knot_values
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * curve)


def _lagrange_basis(u: jnp.ndarray) -> jnp.ndarray:
    """``(T, WRAPUP_KNOTS)`` Lagrange basis at ``u`` for knots equally spaced on [0, 1]."""
    nodes = np.linspace(0.0, 1.0, WRAPUP_KNOTS)
    columns = []
    for i in range(WRAPUP_KNOTS):
        others = np.delete(nodes, i).astype(np.float32)
        denominator = float(np.prod(nodes[i] - np.delete(nodes, i)))
        columns.append(jnp.prod(u[:, None] - others[None, :], axis=1) / denominator)
    return jnp.stack(columns, axis=1)


def sine_wrapup(key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext) -> jnp.ndarray:
    """Adds ``alpha * sigma[t] * sin(2 pi f t / T + phi)`` to size or IAT (1/2 each).

    ``f ~ U[SINE_FREQ_RANGE]``, ``phi ~ U[0, 2 pi)``. Args and returns as
    :func:`gaussian_noise`.
    """
    k_feature, k_freq, k_phase = jax.random.split(key, 3)
    t_len = x.shape[0]
    feature = _pick_feature(k_feature)
    freq = jax.random.uniform(k_freq, (), jnp.float32, *SINE_FREQ_RANGE)
    phase = jax.random.uniform(k_phase, (), jnp.float32, 0.0, 2.0 * math.pi)
    t = jnp.arange(t_len, dtype=jnp.float32)
    wave = jnp.sin(2.0 * math.pi * freq * t / t_len + phase)
    return _add_pattern(x, feature, alpha * _class_sigma(ctx, feature) * wave)
