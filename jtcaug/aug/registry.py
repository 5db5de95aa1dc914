"""The augmentations by name: the paper's 18, and any a user registers.

``SAMPLE_FUNCTIONS`` maps each per-sample name to ``fn(key, x (T, 3), alpha, ctx) -> (T, 3)``
and ``FAMILY`` each name to its family; :func:`register` adds to both, so that a registered
function works wherever a built-in does (``augment_batch``, combination pools,
``validate_how``). ``NAMES`` stays the paper's 18, in the paper's order.

Example:
    >>> def reverse_sizes(key, x, alpha, ctx):
    ...     return x.at[:, 0].set(x[::-1, 0])
    >>> register("reverse_sizes", reverse_sizes, "amplitude")  # doctest: +SKIP
    >>> augment_batch(key, xb, yb, stats, "ensemble[reverse_sizes,wrap]")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from types import ModuleType

import jax
import jax.numpy as jnp

from jtcaug import N_FEATURES, T_DEFAULT
from jtcaug.aug import amplitude, masking, sequence, tcp
from jtcaug.aug.stats import AugContext

SampleFn = Callable[[jax.Array, jnp.ndarray, jnp.ndarray, AugContext], jnp.ndarray]

FAMILIES = ("amplitude", "masking", "sequence")
_MODULES = {"amplitude": amplitude, "masking": masking, "sequence": sequence}
_TCP_AWARE = ("dup_rto", "dup_fastretr", "perm_rto", "perm_fastretr")

# The paper's order (its Tables 1-3).
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
    name: getattr(tcp if name in _TCP_AWARE else _MODULES[family], name)
    for name, family in FAMILY.items()
    if name != "cutmix"
}
# Words of the ``how`` grammar that no augmentation may take as its name.
RESERVED = frozenset(
    {"none", "ensemble", "random_stack", "masked_stack", "trivial", "rand", "weighted"}
)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def register(name: str, fn: SampleFn, family: str) -> None:
    """Makes ``fn`` usable under ``name`` wherever a built-in augmentation is.

    ``fn(key, x, alpha, ctx) -> x'`` takes a PRNG key, one flow ``x (T, 3)``, a scalar alpha
    in [0, 1] and the sample's :class:`~jtcaug.aug.stats.AugContext`, and returns a flow of
    the same shape and dtype; it must be jittable and vmappable (static shapes). It is traced
    once here on a dummy flow to check that, and its output is checked again at every trace.

    Args:
      name: lowercase identifier, not a built-in, registered or reserved name.
      fn: the per-sample function.
      family: one of ``FAMILIES``.

    Raises:
      ValueError: one line naming ``name`` and ``fn``: name clash, bad family, a signature
        that does not take (key, x, alpha, ctx), or an output of another shape or dtype.

    Example:
      >>> register("my_jitter", lambda key, x, alpha, ctx: x, "amplitude")  # doctest: +SKIP
    """
    label = f"register({name!r}, {getattr(fn, '__qualname__', repr(fn))})"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"{label}: the name must be a lowercase identifier like 'my_jitter'")
    if name in FAMILY or name in RESERVED:
        raise ValueError(f"{label}: the name {name!r} is taken; choose another")
    if family not in FAMILIES:
        raise ValueError(f"{label}: family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if not callable(fn):
        raise ValueError(f"{label}: fn is not callable")
    try:
        inspect.signature(fn).bind(None, None, None, None)
    except TypeError:
        raise ValueError(
            f"{label}: fn must take (key, x, alpha, ctx), its signature is "
            f"{inspect.signature(fn)}"
        ) from None
    except ValueError:  # a builtin without a signature: the dummy trace below decides
        pass
    checked = _checked(name, fn)
    t_len = T_DEFAULT
    dummy = (
        jax.random.key(0),
        jnp.zeros((t_len, N_FEATURES), jnp.float32),
        jnp.float32(0.5),
        AugContext(
            sigma=jnp.zeros((t_len, N_FEATURES), jnp.float32),
            sigma_global=jnp.zeros((N_FEATURES,), jnp.float32),
            iat_q99=jnp.float32(1.0),
        ),
    )
    try:
        jax.eval_shape(checked, *dummy)
    except ValueError as error:
        if str(error).startswith(f"augmentation {name!r}"):
            raise ValueError(f"{label}: {str(error).split(': ', 1)[1]}") from None
        raise ValueError(f"{label}: fails on a dummy (20, 3) flow: {_first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - any failure is the user's function's
        raise ValueError(f"{label}: fails on a dummy (20, 3) flow: {_first_line(error)}") from None
    SAMPLE_FUNCTIONS[name] = checked
    FAMILY[name] = family


def _checked(name: str, fn: SampleFn) -> SampleFn:
    """``fn`` with a trace-time check that its output has the input's shape and dtype."""

    def checked_fn(key, x, alpha, ctx):
        out = fn(key, x, alpha, ctx)
        shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
        if shape != x.shape or dtype != x.dtype:
            raise ValueError(
                f"augmentation {name!r}: {getattr(fn, '__qualname__', repr(fn))} returned "
                f"{dtype}{list(shape) if shape is not None else ''} for a {x.dtype}"
                f"{list(x.shape)} flow; it must keep the shape and dtype"
            )
        return out

    checked_fn.__name__ = checked_fn.__qualname__ = getattr(fn, "__name__", name)
    checked_fn.__doc__ = fn.__doc__
    return checked_fn


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def import_augmentation_module(module_name: str) -> ModuleType:
    """Imports a user module whose import registers augmentations (see :func:`register`).

    Args:
      module_name: a dotted module name importable from ``sys.path``, e.g. ``my_pkg.augs``.

    Returns:
      The module.

    Raises:
      ValueError: one line naming the module and the import's error.

    Example:
      >>> import_augmentation_module("my_pkg.augs")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure becomes one line
        raise ValueError(
            f"could not import augmentation module {module_name!r}: {_first_line(error)}"
        ) from None
