"""Combination policies (spec section 7) and the batch entry point ``augment_batch``.

A ``how`` string names what to apply, and is static under ``jit``:

- ``"none"``: identity;
- one of the 18 names in ``NAMES``;
- ``"ensemble"``, ``"random_stack"``, ``"masked_stack"`` or ``"masked_stack:P"`` (skip
  probability P in [0, 1], default 0.5), each optionally followed by a pool in brackets, e.g.
  ``"ensemble[translation,wrap]"`` or ``"masked_stack:0.3[translation,wrap,permutation]"``.
  The default pool is the paper's top three, ``DEFAULT_POOL``; masked_stack applies the
  pool in the order given.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug.aug import _random, amplitude, masking, sequence
from jtcaug.aug.stats import AugContext, Stats

SampleFn = Callable[[jax.Array, jnp.ndarray, jnp.ndarray, AugContext], jnp.ndarray]

# Spec order (families as in the paper's Tables 1-3).
NAMES: tuple[str, ...] = (
    "gaussian_noise",
    "spike_noise",
    "constant_wrapup",
    "gaussian_wrapup",
    "sine_wrapup",
    "bernoulli_mask",
    "window_mask",
    "horizontal_flip",
    "interpolation",
    "cutmix",
    "packet_loss",
    "translation",
    "wrap",
    "permutation",
    "dup_rto",
    "dup_fastretr",
    "perm_rto",
    "perm_fastretr",
)
FAMILY: dict[str, str] = {
    **{n: "amplitude" for n in NAMES[:5]},
    **{n: "masking" for n in NAMES[5:7]},
    **{n: "sequence" for n in NAMES[7:]},
}
# Per-sample functions; cutmix pairs samples, so it only exists at batch level.
SAMPLE_FUNCTIONS: dict[str, SampleFn] = {
    name: getattr({"amplitude": amplitude, "masking": masking, "sequence": sequence}[fam], name)
    for name, fam in FAMILY.items()
    if name != "cutmix"
}
POLICIES = ("ensemble", "random_stack", "masked_stack")
# [paper] the G4 pool: the three best single augmentations on MIRAGE-19.
DEFAULT_POOL = ("translation", "wrap", "permutation")
# [chosen] masked_stack's skip probability when "masked_stack" is given without ":P".
DEFAULT_SKIP_P = 0.5

_POLICY_RE = re.compile(
    r"^(?P<kind>ensemble|random_stack|masked_stack)(?::(?P<p>[^\[\]]+))?(?:\[(?P<pool>[^\]]*)\])?$"
)


class How(NamedTuple):
    """A parsed ``how`` string: ``kind`` is "none", "single", "cutmix" or a policy name."""

    kind: str
    names: tuple[str, ...]
    skip_p: float = 0.0


@functools.lru_cache(maxsize=256)
def parse_how(how: str) -> How:
    """Parses and validates a ``how`` string; raises ValueError naming the problem."""
    if not isinstance(how, str):
        raise ValueError(f"augmentation must be a string, got {type(how).__name__}")
    how = how.strip()
    if how == "none":
        return How("none", ())
    if how == "cutmix":
        return How("cutmix", ("cutmix",))
    if how in SAMPLE_FUNCTIONS:
        return How("single", (how,))
    match = _POLICY_RE.match(how)
    if match is None:
        raise ValueError(
            f"unknown augmentation {how!r}: expected 'none', one of {', '.join(NAMES)}, "
            f"or a policy {'/'.join(POLICIES)} (e.g. 'masked_stack:0.5[translation,wrap]')"
        )
    kind, p_text, pool_text = match["kind"], match["p"], match["pool"]
    if p_text is not None and kind != "masked_stack":
        raise ValueError(f"{how!r}: only masked_stack takes a skip probability ':P'")
    skip_p = DEFAULT_SKIP_P if kind == "masked_stack" else 0.0
    if p_text is not None:
        try:
            skip_p = float(p_text)
        except ValueError:
            raise ValueError(f"{how!r}: skip probability {p_text!r} is not a number") from None
        if not 0.0 <= skip_p <= 1.0:
            raise ValueError(f"{how!r}: skip probability must lie in [0, 1], got {skip_p}")
    pool = DEFAULT_POOL
    if pool_text is not None:
        pool = tuple(n.strip() for n in pool_text.split(",") if n.strip())
        if not pool:
            raise ValueError(f"{how!r}: empty pool")
        for name in pool:
            if name == "cutmix":
                raise ValueError(f"{how!r}: cutmix pairs whole batches and cannot join a pool")
            if name not in SAMPLE_FUNCTIONS:
                raise ValueError(f"{how!r}: unknown augmentation {name!r} in the pool")
    return How(kind, pool, skip_p)


def validate_how(how: str) -> None:
    """Raises ValueError with a clear message if ``how`` is not a valid augmentation spec."""
    parse_how(how)


def _draw_alpha(key: jax.Array, alpha) -> jnp.ndarray:
    """Scalar alpha: U(0, 1) when ``alpha`` is None, else the fixed value."""
    if alpha is None:
        return _random.uniform(key, (), jnp.float32)
    return jnp.asarray(alpha, jnp.float32)


def _apply_one(
    fn: SampleFn, key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext
) -> jnp.ndarray:
    k_alpha, k_fn = _random.split(key)
    return fn(k_fn, x, _draw_alpha(k_alpha, alpha), ctx)


def _branches(pool: tuple[str, ...], alpha) -> list[Callable]:
    def branch(fn: SampleFn) -> Callable:
        return lambda key, x, ctx: _apply_one(fn, key, x, alpha, ctx)

    return [branch(SAMPLE_FUNCTIONS[name]) for name in pool]


def apply_sample(
    key: jax.Array, x: jnp.ndarray, ctx: AugContext, how: str, alpha=None
) -> jnp.ndarray:
    """Applies ``how`` (a single per-sample name or a policy) to one sample ``x (T, 3)``.

    Each applied function draws its own alpha (U(0, 1)) unless ``alpha`` fixes it.
    """
    spec = parse_how(how)
    if spec.kind == "none":
        return x
    if spec.kind == "cutmix":
        raise ValueError("cutmix is batch-level: use augment_batch")
    if spec.kind == "single":
        return _apply_one(SAMPLE_FUNCTIONS[spec.names[0]], key, x, alpha, ctx)
    branches = _branches(spec.names, alpha)
    n = len(branches)
    if spec.kind == "ensemble":
        k_pick, k_apply = _random.split(key)
        pick = _random.randint(k_pick, (), 0, n)
        return jax.lax.switch(pick, branches, k_apply, x, ctx)
    if spec.kind == "random_stack":
        k_order, k_steps = _random.split(key)
        order = _random.permutation(k_order, n)
        for step, k_step in enumerate(_random.split(k_steps, n)):
            x = jax.lax.switch(order[step], branches, k_step, x, ctx)
        return x
    # masked_stack: fixed order, each member skipped independently with probability p.
    k_skip, k_steps = _random.split(key)
    skipped = _random.bernoulli(k_skip, spec.skip_p, (n,))
    for i, k_step in enumerate(_random.split(k_steps, n)):
        x = jnp.where(skipped[i], x, branches[i](k_step, x, ctx))
    return x


def augment_batch(
    key: jax.Array,
    xb: jnp.ndarray,
    yb: jnp.ndarray,
    stats: Stats,
    how: str,
    alpha: float | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Augments a batch. Jittable with ``how`` (and a float ``alpha``) static.

    Args:
      key: PRNG key; the same key gives a bitwise-identical result.
      xb: ``(B, T, 3)`` float normalized samples.
      yb: ``(B,)`` integer labels (class ids into ``stats``).
      stats: per-class statistics of the training split.
      how: ``"none"``, an augmentation name or a combination policy (module docstring).
      alpha: None draws alpha ~ U(0, 1) per sample (and per applied function); a float in
        [0, 1] fixes it.

    Returns:
      ``(xb', yb')`` with the shapes and dtypes of the inputs (cutmix: the receiving
      sample's hard label).
    """
    spec = parse_how(how)
    _check_inputs(xb, yb, stats, alpha)
    if spec.kind == "none":
        return xb, yb
    if spec.kind == "cutmix":
        return sequence.cutmix(key, xb, yb)
    ctx = jax.vmap(stats.context)(yb)
    if spec.kind == "single":
        # One batch-level alpha draw is much cheaper than a per-sample key split for it.
        k_alpha, k_samples = _random.split(key)
        batch = xb.shape[0]
        alphas = (
            _random.uniform(k_alpha, (batch,), jnp.float32)
            if alpha is None
            else jnp.full((batch,), alpha, jnp.float32)
        )
        fn = SAMPLE_FUNCTIONS[spec.names[0]]
        return jax.vmap(fn)(_random.split(k_samples, batch), xb, alphas, ctx), yb
    keys = _random.split(key, xb.shape[0])
    out = jax.vmap(functools.partial(apply_sample, how=how, alpha=alpha))(keys, xb, ctx)
    return out, yb


def _check_inputs(xb, yb, stats: Stats, alpha) -> None:
    """Shape/dtype/range checks that run before tracing (or at trace time under jit)."""
    if getattr(xb, "ndim", None) != 3 or xb.shape[-1] != 3:
        raise ValueError(f"xb must have shape (B, T, 3), got {getattr(xb, 'shape', None)}")
    if not jnp.issubdtype(xb.dtype, jnp.floating):
        raise ValueError(f"xb must be a float array, got dtype {xb.dtype}")
    if getattr(yb, "shape", None) != xb.shape[:1]:
        raise ValueError(f"yb must have shape ({xb.shape[0]},), got {getattr(yb, 'shape', None)}")
    if not jnp.issubdtype(yb.dtype, jnp.integer):
        raise ValueError(f"yb must hold integer class ids, got dtype {yb.dtype}")
    if xb.shape[1] != stats.sigma.shape[1]:
        raise ValueError(
            f"xb has T={xb.shape[1]} positions but the stats table has T={stats.sigma.shape[1]}"
        )
    if alpha is not None:
        if isinstance(alpha, jax.core.Tracer):
            raise ValueError("alpha must be static (a Python float) or None")
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0 or np.isnan(alpha):
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if not isinstance(yb, jax.core.Tracer) and yb.shape[0]:
        labels = np.asarray(yb)
        if labels.min() < 0 or labels.max() >= stats.n_classes:
            raise ValueError(
                f"class ids must lie in [0, {stats.n_classes}) (the stats table), "
                f"got [{labels.min()}, {labels.max()}]"
            )
