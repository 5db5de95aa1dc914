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
import math
import re
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug.aug import _random, amplitude, masking, sequence
from jtcaug.aug._xla import materialize
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


class _Plan(NamedTuple):
    """A policy's per-sample random choices, drawn before anything is applied.

    ``branch (S,)`` int32: the pool member applied at each of the S steps, -1 to skip the step
    (masked_stack's step i is member i or -1). ``keys (S,)``: one key per step.
    """

    branch: jnp.ndarray
    keys: jax.Array


def _plan(spec: How, key: jax.Array) -> _Plan:
    n = len(spec.names)
    if spec.kind == "ensemble":
        k_pick, k_apply = _random.split(key)
        return _Plan(_random.randint(k_pick, (1,), 0, n), k_apply[None])
    k_choice, k_steps = _random.split(key)
    if spec.kind == "random_stack":
        return _Plan(_random.permutation(k_choice, n), _random.split(k_steps, n))
    # masked_stack: fixed order, each member skipped independently with probability p.
    skipped = _random.bernoulli(k_choice, spec.skip_p, (n,))
    return _Plan(jnp.where(skipped, -1, jnp.arange(n, dtype=jnp.int32)), _random.split(k_steps, n))


def _step_branches(spec: How, branches: list[Callable], step: int) -> list[Callable]:
    """The members step ``step`` chooses from (masked_stack's step i only ever applies i)."""
    return [branches[step]] if spec.kind == "masked_stack" else branches


def _branch_index(spec: How, branch: jnp.ndarray) -> jnp.ndarray:
    """Index into ``_step_branches`` (-1 stays -1: skip)."""
    if spec.kind == "masked_stack":
        return jnp.where(branch < 0, -1, 0)
    return branch


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
    plan = _plan(spec, key)
    for step in range(plan.branch.shape[0]):
        index = _branch_index(spec, plan.branch[step])
        options = _step_branches(spec, branches, step)
        if len(options) == 1:
            applied = options[0](plan.keys[step], x, ctx)
        else:
            applied = jax.lax.switch(jnp.maximum(index, 0), options, plan.keys[step], x, ctx)
        x = jnp.where(index < 0, x, applied)
    return x


# [chosen] How a policy runs on a batch: "sort" (below) or "select", which computes every pool
# member for every sample and keeps each sample's own (a per-sample ``lax.switch`` under vmap).
# "auto" sorts on CPU, where work per sample dominates, and selects elsewhere (a GPU pays per
# kernel and per host-side loop test rather than per sample). Both give the same values.
POLICY_DISPATCH = "auto"
POLICY_DISPATCHES = ("auto", "sort", "select")

# [chosen] Policies on a batch sort the samples by the member they apply and run each member
# on windows of consecutive sorted samples, starting at its first one. A window holds the
# member's expected share of the batch plus three standard deviations, so one window almost
# always covers it (more run when needed). An int here fixes the window size instead.
DISPATCH_WINDOW: int | None = None


def _window_size(batch: int, share: float) -> int:
    """Rows per window for an option expected to take ``share`` of a batch (static)."""
    if DISPATCH_WINDOW is not None:
        return max(1, min(DISPATCH_WINDOW, batch))
    mean = batch * share
    spread = 3.0 * math.sqrt(batch * share * (1.0 - share))
    return max(1, min(batch, 8 * math.ceil((mean + spread) / 8)))


class _Sorted(NamedTuple):
    """Samples counting-sorted by group (one step of a policy); all arrays int32.

    ``order (B,)``: sample indices in sorted order (a permutation); ``group (B,)``: the group
    of each sorted sample; ``starts``, ``counts`` ``(G,)``: where each group begins, its size;
    ``position (B,)``: each sample's place in the sorted order (the inverse of ``order``);
    ``sample_group (B,)``: each sample's group, in the original order.
    """

    order: jnp.ndarray
    group: jnp.ndarray
    starts: jnp.ndarray
    counts: jnp.ndarray
    position: jnp.ndarray
    sample_group: jnp.ndarray


def _counting_sort(group: jnp.ndarray, n_groups: int) -> _Sorted:
    """Stable counting sort of ``group (B,)`` with values in ``[0, n_groups)``.

    A sample's sorted position is the number of samples in smaller groups plus those of its
    own group before it: prefix counts, much cheaper on XLA:CPU than a comparison sort.
    """
    batch = group.shape[0]
    one_hot = (group[:, None] == jnp.arange(n_groups, dtype=group.dtype)[None, :]).astype(
        jnp.int32
    )
    running = jax.lax.associative_scan(jnp.add, one_hot, axis=0)
    counts = running[-1]
    starts = jnp.cumsum(counts) - counts
    position = jnp.sum(one_hot * (starts[None, :] + running - 1), axis=1)
    order = jnp.zeros((batch,), jnp.int32).at[position].set(
        jnp.arange(batch, dtype=jnp.int32), unique_indices=True
    )
    return _Sorted(order, group[order], starts, counts, position, group)


def _dispatch(
    by_option: _Sorted,
    options: list[Callable],
    shares: list[float],
    keys: jax.Array,
    xb: jnp.ndarray,
    yb: jnp.ndarray,
    stats: Stats,
) -> jnp.ndarray:
    """``out[b] = options[g[b]](keys[b], xb[b], ctx(yb[b]))`` where ``g[b]`` is sample b's group
    in ``by_option``; groups past the options (skipped samples) keep ``xb[b]``.

    Under vmap a per-sample ``lax.switch`` computes every option for every sample. Here, with
    the samples sorted by option, each option runs (vmapped) only on windows of consecutive
    sorted samples that cover its own; ``shares[i]`` (the probability that a sample takes
    option i) sizes its window. For random_stack on 1024 samples that is one window of 392
    per member and step: 1.15 evaluations per sample instead of one per option, and few
    enough separate kernels that XLA's per-kernel overhead stays small.

    Every option's first window runs unconditionally (it almost always has work), and each
    sample then gathers its result from its own option's first window: one gather for all
    options, faster for all three policies than scattering each window back (same-process
    A/B in commit 033d01e). The rare samples past their option's first
    window are scattered in by a loop over further windows. The result is the same as the
    per-sample switch, sample by sample. (If this is itself vmapped, e.g. over training
    runs, the loops run to the longest trip count and their writes become selects.)
    This is ``POLICY_DISPATCH`` "sort"; on an H200 "select" ran the policies 2.8-3.6x faster
    (README, measured before the gather above).
    """
    batch = xb.shape[0]
    windows = [_window_size(batch, share) for share in shares]

    def window_start(option_id: int, step) -> jnp.ndarray:
        """Sorted position where window ``step`` of an option starts. A window that would
        overrun the batch is pulled back to end at its last sample; it then re-computes
        samples of the same option (the same values) or others (not used)."""
        window = windows[option_id]
        return jnp.minimum(by_option.starts[option_id] + step * window, batch - window)

    def run_window(option_id: int, first: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(rows, results) of option ``option_id`` on the sorted samples from ``first``."""
        rows = jax.lax.dynamic_slice(by_option.order, (first,), (windows[option_id],))
        ctx = jax.vmap(stats.context)(yb[rows])
        return rows, jax.vmap(options[option_id])(keys[rows], xb[rows], ctx)

    n_options = len(options)
    firsts = [window_start(option_id, 0) for option_id in range(n_options)]
    results = jnp.concatenate(
        [run_window(option_id, firsts[option_id])[1] for option_id in range(n_options)]
    )
    # Sample b lies at offset position[b] - first[g] of its option's first window, whose
    # results start at row sum(windows[:g]) of ``results``. (The offset is never negative:
    # a first window starts at or before its option's first sample.)
    option = jnp.minimum(by_option.sample_group, n_options - 1)
    offset = by_option.position - jnp.stack(firsts)[option]
    in_first_window = (by_option.sample_group < n_options) & (
        offset < jnp.asarray(windows, jnp.int32)[option]
    )
    result_row = jnp.asarray(np.cumsum([0, *windows[:-1]]), jnp.int32)[option] + offset
    # Computed once per sample, not once per gathered element (A/B in commit 1dc0c80).
    source = materialize(jnp.where(in_first_window, result_row, -1))
    out = jnp.where(source[:, None, None] >= 0, results[jnp.maximum(source, 0)], xb)
    for option_id in range(n_options):

        def run_later_window(step, out, option_id=option_id):
            first = window_start(option_id, step)
            rows, done = run_window(option_id, first)
            mine = jax.lax.dynamic_slice(by_option.group, (first,), (windows[option_id],))
            # Rows of other options are dropped from the scatter, so they keep their value.
            return out.at[jnp.where(mine == option_id, rows, batch)].set(done, mode="drop")

        n_windows = (by_option.counts[option_id] + windows[option_id] - 1) // windows[option_id]
        out = jax.lax.fori_loop(1, n_windows, run_later_window, out)
    return out


def _apply_policy(
    spec: How, keys: jax.Array, xb: jnp.ndarray, yb: jnp.ndarray, stats: Stats, alpha
) -> jnp.ndarray:
    """The batch form of ``apply_sample`` for a policy, with the same per-sample draws."""
    branches = _branches(spec.names, alpha)
    plans = jax.vmap(functools.partial(_plan, spec))(keys)
    n_steps = plans.branch.shape[1]
    n_options = 1 if spec.kind == "masked_stack" else len(branches)
    # Group per sample and step: the option's index, skipped steps (-1) last. All steps are
    # sorted at once (one scan instead of one per step).
    index = jax.vmap(functools.partial(_branch_index, spec), in_axes=1, out_axes=1)(plans.branch)
    groups = jnp.where(index < 0, n_options, index)
    by_option = jax.vmap(_counting_sort, in_axes=(1, None))(groups, n_options + 1)
    # Each step of ensemble/random_stack takes each member with probability 1/n;
    # masked_stack's step i applies its member unless skipped.
    shares = [1.0 - spec.skip_p] if spec.kind == "masked_stack" else [1.0 / n_options] * n_options
    for step in range(n_steps):
        xb = _dispatch(
            jax.tree_util.tree_map(lambda a, step=step: a[step], by_option),
            _step_branches(spec, branches, step),
            shares,
            plans.keys[:, step],
            xb,
            yb,
            stats,
        )
    return xb


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
        ctx = jax.vmap(stats.context)(yb)
        return jax.vmap(fn)(_random.split(k_samples, batch), xb, alphas, ctx), yb
    keys = _random.split(key, xb.shape[0])
    if policy_dispatch() == "select":
        ctx = jax.vmap(stats.context)(yb)
        apply = functools.partial(apply_sample, how=how, alpha=alpha)
        return jax.vmap(apply)(keys, xb, ctx), yb
    return _apply_policy(spec, keys, xb, yb, stats, alpha), yb


def policy_dispatch() -> str:
    """``POLICY_DISPATCH`` resolved for the backend in use (at trace time)."""
    if POLICY_DISPATCH not in POLICY_DISPATCHES:
        raise ValueError(
            f"POLICY_DISPATCH must be one of {', '.join(POLICY_DISPATCHES)}, "
            f"got {POLICY_DISPATCH!r}"
        )
    if POLICY_DISPATCH == "auto":
        return "sort" if jax.default_backend() == "cpu" else "select"
    return POLICY_DISPATCH


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
