"""Combinations of augmentations and the batch entry point ``augment_batch``.

A ``how`` string names what to apply to each sample, and is static under ``jit``:

- ``"none"``: identity;
- one augmentation name (the paper's 18 in ``NAMES``, or one added by ``register``);
- a combination, optionally followed by a pool in brackets (default ``DEFAULT_POOL``, the
  paper's top three, or every per-sample augmentation for ``trivial`` and ``rand``):

  - ``ensemble``: one pool member, drawn uniformly per sample;
  - ``random_stack``: every member, in an order shuffled per sample;
  - ``masked_stack`` or ``masked_stack:P``: every member in the pool's order, each skipped
    independently with probability P (default 0.5);
  - ``trivial``: one member drawn uniformly per sample, always with alpha ~ U(0, 1)
    (TrivialAugment);
  - ``rand`` or ``rand:N``: N members (default 2) drawn uniformly with replacement per
    sample, applied in sequence (RandAugment);
  - ``weighted``: one member drawn per sample with probability proportional to its weight,
    written ``name:w`` in the pool (a bare ``name`` weighs 1; weights >= 0, not all 0, no
    name twice). With alpha ~ U(0, 1) it is a weighted TrivialAugment; the G6 search
    (``experiments.g6``) finds such weights. ``augment_batch(..., weights=w)`` replaces the
    pool's weights by a traced ``(n_pool,)`` array, so runs that differ only in their
    weights share one compiled program.

  e.g. ``"ensemble[translation,wrap]"``, ``"masked_stack:0.3[translation,wrap,permutation]"``,
  ``"weighted[translation:0.6,wrap:0.3,permutation:0.1]"``.

Each applied function draws its own alpha ~ U(0, 1) unless a fixed alpha is given. A batch
applies the per-sample rule to every sample under ``vmap``; the per-sample choice of a
member is a ``lax.switch``, which ``vmap`` evaluates for every member and then selects.

Example:
    >>> xb2, yb2 = augment_batch(jax.random.key(0), xb, yb, stats, "random_stack")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug.aug import sequence
from jtcaug.aug._common import uniform_int
from jtcaug.aug.registry import NAMES, SAMPLE_FUNCTIONS, SampleFn
from jtcaug.aug.stats import AugContext, Stats

COMBINATIONS = ("ensemble", "random_stack", "masked_stack", "trivial", "rand", "weighted")
# [paper] the G4 pool: the three best single augmentations on MIRAGE-19.
DEFAULT_POOL = ("translation", "wrap", "permutation")
# [chosen] masked_stack's skip probability when "masked_stack" is given without ":P".
DEFAULT_SKIP_P = 0.5
# [chosen] augmentations per sample for "rand" without ":N" (RandAugment's usual N).
DEFAULT_RAND_N = 2

_COMBINATION_RE = re.compile(
    r"^(?P<kind>ensemble|random_stack|masked_stack|trivial|rand|weighted)"
    r"(?::(?P<arg>[^\[\]]+))?(?:\[(?P<pool>[^\]]*)\])?$"
)


class How(NamedTuple):
    """A parsed ``how`` string.

    ``kind`` is "none", "single", "cutmix" or a combination name; ``names`` the function or
    pool; ``skip_p`` masked_stack's skip probability; ``count`` rand's N. A weighted
    combination's weights come from :func:`member_weights`.
    """

    kind: str
    names: tuple[str, ...]
    skip_p: float = 0.0
    count: int = 1


def parse_how(how: str) -> How:
    """Parses and validates a ``how`` string.

    Raises:
      ValueError: one line naming the problem.

    Example:
      >>> parse_how("masked_stack:0.3[wrap,translation]")
      How(kind='masked_stack', names=('wrap', 'translation'), skip_p=0.3, count=1)
    """
    return _parse(how)[0]


def member_weights(how: str) -> tuple[float, ...]:
    """The member probabilities (summing to 1) of a ``weighted`` how, in pool order.

    Raises:
      ValueError: ``how`` is not a valid weighted combination.

    Example:
      >>> member_weights("weighted[wrap:3,translation]")
      (0.75, 0.25)
    """
    spec, weights = _parse(how)
    if spec.kind != "weighted":
        raise ValueError(f"{how!r} is not a weighted combination")
    return weights


def _parse(how: str) -> tuple[How, tuple[float, ...] | None]:
    """``(How, weights)``; weights only for a weighted combination."""
    if not isinstance(how, str):
        raise ValueError(f"augmentation must be a string, got {type(how).__name__}")
    how = how.strip()
    if how == "none":
        return How("none", ()), None
    if how == "cutmix":
        return How("cutmix", ("cutmix",)), None
    if how in SAMPLE_FUNCTIONS:
        return How("single", (how,)), None
    match = _COMBINATION_RE.match(how)
    if match is None:
        extra = sorted(set(SAMPLE_FUNCTIONS) - set(NAMES))
        known = ", ".join([*NAMES, *extra])
        raise ValueError(
            f"unknown augmentation {how!r}: expected 'none', one of {known}, or a "
            f"combination {'/'.join(COMBINATIONS)} (e.g. 'masked_stack:0.5[translation,wrap]')"
        )
    kind, arg, pool_text = match["kind"], match["arg"], match["pool"]
    skip_p, count = 0.0, 1
    if kind == "masked_stack":
        skip_p = DEFAULT_SKIP_P if arg is None else _parse_skip_p(how, arg)
    elif kind == "rand":
        count = DEFAULT_RAND_N if arg is None else _parse_count(how, arg)
    elif arg is not None:
        raise ValueError(f"{how!r}: only masked_stack:P and rand:N take an argument after ':'")
    if pool_text is None:
        pool = tuple(SAMPLE_FUNCTIONS) if kind in ("trivial", "rand") else DEFAULT_POOL
        weights = _normalized(how, [1.0] * len(pool)) if kind == "weighted" else None
        return How(kind, pool, skip_p, count), weights
    pool = tuple(n.strip() for n in pool_text.split(",") if n.strip())
    if not pool:
        raise ValueError(f"{how!r}: empty pool")
    weights = None
    if kind == "weighted":
        pool, weights = _parse_weighted_pool(how, pool)
    elif any(":" in name for name in pool):
        raise ValueError(f"{how!r}: only a weighted pool takes name:weight members")
    for name in pool:
        if name == "cutmix":
            raise ValueError(f"{how!r}: cutmix pairs whole batches and cannot join a pool")
        if name not in SAMPLE_FUNCTIONS:
            raise ValueError(f"{how!r}: unknown augmentation {name!r} in the pool")
    return How(kind, pool, skip_p, count), weights


def _parse_weighted_pool(how: str, members: tuple[str, ...]):
    """``("wrap:3", "translation")`` -> ``(("wrap", "translation"), (0.75, 0.25))``."""
    names, raw = [], []
    for member in members:
        name, colon, text = member.partition(":")
        name = name.strip()
        if colon and not text.strip():
            raise ValueError(f"{how!r}: {name!r} has a ':' but no weight")
        try:
            weight = float(text) if colon else 1.0
        except ValueError:
            raise ValueError(f"{how!r}: weight {text.strip()!r} of {name!r} is not a "
                             "number") from None
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"{how!r}: weight of {name!r} must be a finite number >= 0, "
                             f"got {text.strip()}")
        if name in names:
            raise ValueError(f"{how!r}: {name!r} appears twice in a weighted pool")
        names.append(name)
        raw.append(weight)
    return tuple(names), _normalized(how, raw)


def _normalized(how: str, raw) -> tuple[float, ...]:
    total = float(sum(raw))
    if not total > 0:
        raise ValueError(f"{how!r}: the weights sum to 0; at least one must be > 0")
    return tuple(float(w) / total for w in raw)


def weighted_how(names, weights) -> str:
    """The ``weighted[...]`` string of a pool and its weights (normalized; 6 significant
    digits, so the string round-trips through :func:`parse_how` to 1e-6)."""
    raw = [float(w) for w in weights]
    if len(raw) != len(names):
        raise ValueError(f"{len(names)} names but {len(raw)} weights")
    if not all(np.isfinite(w) and w >= 0 for w in raw):
        raise ValueError(f"weights must be finite numbers >= 0, got {raw}")
    probs = _normalized("weighted", raw)
    return "weighted[" + ",".join(f"{n}:{p:.6g}" for n, p in zip(names, probs, strict=True)) + "]"


def check_weights(weights, n_pool: int) -> np.ndarray:
    """Concrete per-pool weights as a float32 ``(..., n_pool)`` array of probabilities
    (each row normalized to sum 1).

    Raises:
      ValueError: wrong last axis, a negative or non-finite weight, or a row summing to 0.
    """
    w = np.asarray(weights, np.float64)
    if w.ndim < 1 or w.shape[-1] != n_pool:
        raise ValueError(f"weights must have shape (..., {n_pool}), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite numbers >= 0")
    total = w.sum(axis=-1, keepdims=True)
    if not (total > 0).all():
        raise ValueError("weights sum to 0; at least one per row must be > 0")
    return (w / total).astype(np.float32)


def _parse_skip_p(how: str, text: str) -> float:
    try:
        skip_p = float(text)
    except ValueError:
        raise ValueError(f"{how!r}: skip probability {text!r} is not a number") from None
    if not 0.0 <= skip_p <= 1.0:
        raise ValueError(f"{how!r}: skip probability must lie in [0, 1], got {skip_p}")
    return skip_p


def _parse_count(how: str, text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{how!r}: N must be a whole number >= 1, got {text!r}")
    return int(text)


def validate_how(how: str) -> None:
    """Raises ValueError with a clear message if ``how`` names no augmentation or combination."""
    parse_how(how)


def _draw_alpha(key: jax.Array, alpha) -> jnp.ndarray:
    """Scalar alpha: U(0, 1) when ``alpha`` is None, else the fixed value."""
    if alpha is None:
        return jax.random.uniform(key, (), jnp.float32)
    return jnp.asarray(alpha, jnp.float32)


def _apply_one(
    fn: SampleFn, key: jax.Array, x: jnp.ndarray, alpha, ctx: AugContext
) -> jnp.ndarray:
    """``fn`` with its own alpha: drawn from the key's first half unless fixed."""
    k_alpha, k_fn = jax.random.split(key)
    return fn(k_fn, x, _draw_alpha(k_alpha, alpha), ctx)


def _members(names: tuple[str, ...], alpha) -> list[Callable]:
    """``member(key, x, ctx) -> x'`` for each pool name, each drawing its own alpha."""

    def member(fn: SampleFn) -> Callable:
        return lambda key, x, ctx: _apply_one(fn, key, x, alpha, ctx)

    return [member(SAMPLE_FUNCTIONS[name]) for name in names]


def apply_sample(
    key: jax.Array, x: jnp.ndarray, ctx: AugContext, how: str, alpha=None, weights=None
) -> jnp.ndarray:
    """Applies ``how`` (one per-sample name or a combination) to one sample.

    Args:
      key: PRNG key.
      x: one flow ``(T, 3)``.
      ctx: the sample's class statistics (``stats.context(y)``).
      how: a ``how`` string other than "cutmix" (module docstring).
      alpha: None draws alpha ~ U(0, 1) for each applied function; a float fixes it.
      weights: weighted only: ``(n_pool,)`` member probabilities (may be traced) in place
        of the pool's own.

    Returns:
      ``(T, 3)``.

    Example:
      >>> apply_sample(jax.random.key(0), x, ctx, "ensemble")  # doctest: +SKIP
    """
    spec = parse_how(how)
    if weights is not None and spec.kind != "weighted":
        raise ValueError(f"weights apply to a weighted combination, not {how!r}")
    if spec.kind == "none":
        return x
    if spec.kind == "cutmix":
        raise ValueError("cutmix is batch-level: use augment_batch")
    if spec.kind == "single":
        return _apply_one(SAMPLE_FUNCTIONS[spec.names[0]], key, x, alpha, ctx)
    n = len(spec.names)
    members = _members(spec.names, None if spec.kind == "trivial" else alpha)
    k_choice, k_steps = jax.random.split(key)
    if spec.kind in ("ensemble", "trivial"):
        member = uniform_int(k_choice, 0, n - 1)
        return jax.lax.switch(member, members, k_steps, x, ctx)
    if spec.kind == "weighted":
        probs = jnp.asarray(member_weights(how) if weights is None else weights, jnp.float32)
        # log(0) = -inf: a member of weight 0 is never drawn.
        member = jax.random.categorical(k_choice, jnp.log(probs))
        return jax.lax.switch(member, members, k_steps, x, ctx)
    if spec.kind == "random_stack":
        order = jax.random.permutation(k_choice, n)
        for step, k_step in enumerate(jax.random.split(k_steps, n)):
            x = jax.lax.switch(order[step], members, k_step, x, ctx)
        return x
    if spec.kind == "rand":
        picks = uniform_int(k_choice, 0, n - 1, (spec.count,))
        for step, k_step in enumerate(jax.random.split(k_steps, spec.count)):
            x = jax.lax.switch(picks[step], members, k_step, x, ctx)
        return x
    # masked_stack: the pool's order, each member skipped with probability skip_p.
    skipped = jax.random.bernoulli(k_choice, spec.skip_p, (n,))
    for member, k_step, skip in zip(members, jax.random.split(k_steps, n), skipped, strict=True):
        x = jnp.where(skip, x, member(k_step, x, ctx))
    return x


def augment_batch(
    key: jax.Array,
    xb: jnp.ndarray,
    yb: jnp.ndarray,
    stats: Stats,
    how: str,
    alpha: float | None = None,
    weights: jnp.ndarray | None = None,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Augments every sample of a batch. Jittable with ``how`` (and a float ``alpha``) static.

    Args:
      key: PRNG key (typed, any implementation, or raw ``uint32[2]``); the same key gives a
        bitwise-identical result. Another implementation, e.g.
        ``jax.random.key(seed, impl="rbg")``, may give cheaper bits than the default
        threefry on an accelerator; on XLA:CPU it was not cheaper (benchmarks/README.md).
      xb: ``(B, T, 3)`` float normalized samples.
      yb: ``(B,)`` integer labels (class ids into ``stats``).
      stats: per-class statistics of the training split.
      how: ``"none"``, an augmentation name or a combination (module docstring).
      alpha: None draws alpha ~ U(0, 1) per sample (and per applied function); a float in
        [0, 1] fixes it.
      weights: only with a ``weighted`` how: ``(n_pool,)`` member probabilities, summing to
        1, that replace the pool's own; may be traced (one program for many weightings).
        Concrete weights are checked (``check_weights``); traced ones are the caller's to
        check.

    Returns:
      ``(xb', yb')`` with the shapes and dtypes of the inputs (cutmix: the receiving
      sample's hard label).

    Example:
      >>> xb2, yb2 = augment_batch(jax.random.key(0), xb, yb, stats, "wrap")  # doctest: +SKIP
    """
    spec = parse_how(how)
    _check_inputs(xb, yb, stats, alpha)
    if weights is not None:
        if spec.kind != "weighted":
            raise ValueError(f"weights apply to a weighted combination, not {how!r}")
        if isinstance(weights, jax.core.Tracer):
            if weights.shape != (len(spec.names),):
                raise ValueError(f"weights must have shape ({len(spec.names)},), got "
                                 f"{weights.shape}")
        else:
            weights = check_weights(weights, len(spec.names))
            if weights.ndim != 1:
                raise ValueError(f"weights must have shape ({len(spec.names)},), got "
                                 f"{weights.shape}")
    if spec.kind == "none":
        return xb, yb
    if spec.kind == "cutmix":
        return sequence.cutmix(key, xb, yb)
    ctx = jax.vmap(stats.context)(yb)
    batch = xb.shape[0]
    if spec.kind == "single":
        # One batch-level alpha draw rather than a key split per sample for it.
        k_alpha, k_samples = jax.random.split(key)
        alphas = (
            jax.random.uniform(k_alpha, (batch,), jnp.float32)
            if alpha is None
            else jnp.full((batch,), alpha, jnp.float32)
        )
        fn = SAMPLE_FUNCTIONS[spec.names[0]]
        return jax.vmap(fn)(jax.random.split(k_samples, batch), xb, alphas, ctx), yb
    apply = functools.partial(apply_sample, how=how, alpha=alpha, weights=weights)
    return jax.vmap(apply)(jax.random.split(key, batch), xb, ctx), yb


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
