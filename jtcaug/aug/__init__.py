"""The 18 traffic augmentations of Wang et al. (PAM 2024) as pure JAX functions.

Per-sample functions ``fn(key, x, alpha, ctx) -> x'`` act on one flow ``x (T, 3)``
(features size, direction, iat; definitions in docs/augmentations.md); ``cutmix(key, xb,
yb)`` acts on a batch. ``augment_batch`` applies a name or a combination of augmentations to
a batch ``(B, T, 3)``, vmapped and jittable. ``Stats`` carries the per-class sigma tables;
``register`` adds a user's function under a name of its own; ``reference`` holds a literal
numpy reading of every rule, for tests and readers.

Example:
    >>> from jtcaug import aug
    >>> key = jax.random.key(0)
    >>> xb2, yb2 = aug.augment_batch(key, xb, yb, stats, "translation")  # doctest: +SKIP
"""

from jtcaug.aug.amplitude import (
    constant_wrapup,
    gaussian_noise,
    gaussian_wrapup,
    sine_wrapup,
    spike_noise,
)
from jtcaug.aug.combine import (
    COMBINATIONS,
    DEFAULT_POOL,
    apply_sample,
    augment_batch,
    check_weights,
    member_weights,
    parse_how,
    validate_how,
    weighted_how,
)
from jtcaug.aug.masking import bernoulli_mask, window_mask
from jtcaug.aug.registry import (
    FAMILIES,
    FAMILY,
    NAMES,
    SAMPLE_FUNCTIONS,
    import_augmentation_module,
    register,
)
from jtcaug.aug.sequence import (
    cutmix,
    horizontal_flip,
    interpolation,
    packet_loss,
    permutation,
    translation,
    wrap,
)
from jtcaug.aug.stats import AugContext, Stats
from jtcaug.aug.tcp import dup_fastretr, dup_rto, perm_fastretr, perm_rto

__all__ = [
    "AugContext",
    "COMBINATIONS",
    "DEFAULT_POOL",
    "FAMILIES",
    "FAMILY",
    "NAMES",
    "SAMPLE_FUNCTIONS",
    "Stats",
    "apply_sample",
    "augment_batch",
    "check_weights",
    "import_augmentation_module",
    "member_weights",
    "parse_how",
    "register",
    "validate_how",
    "weighted_how",
    "bernoulli_mask",
    "constant_wrapup",
    "cutmix",
    "dup_fastretr",
    "dup_rto",
    "gaussian_noise",
    "gaussian_wrapup",
    "horizontal_flip",
    "interpolation",
    "packet_loss",
    "perm_fastretr",
    "perm_rto",
    "permutation",
    "sine_wrapup",
    "spike_noise",
    "translation",
    "window_mask",
    "wrap",
]
