"""The 18 traffic augmentations of Wang et al. (PAM 2024) as pure JAX functions.

Per-sample functions ``fn(key, x, alpha, ctx) -> x'`` act on one flow ``x (T, 3)``
(features size, direction, iat; see ``../shared/spec/augmentations.md``); ``cutmix(key, xb,
yb)`` acts on a batch. ``augment_batch`` applies a name or a combination policy to a batch
``(B, T, 3)``, vmapped and jittable. ``Stats`` carries the per-class sigma tables.
"""

from jtcaug.aug.amplitude import (
    constant_wrapup,
    gaussian_noise,
    gaussian_wrapup,
    sine_wrapup,
    spike_noise,
)
from jtcaug.aug.combine import (
    DEFAULT_POOL,
    FAMILY,
    NAMES,
    POLICIES,
    SAMPLE_FUNCTIONS,
    apply_sample,
    augment_batch,
    parse_how,
    validate_how,
)
from jtcaug.aug.masking import bernoulli_mask, window_mask
from jtcaug.aug.sequence import (
    cutmix,
    dup_fastretr,
    dup_rto,
    horizontal_flip,
    interpolation,
    packet_loss,
    perm_fastretr,
    perm_rto,
    permutation,
    translation,
    wrap,
)
from jtcaug.aug.stats import AugContext, Stats

__all__ = [
    "AugContext",
    "DEFAULT_POOL",
    "FAMILY",
    "NAMES",
    "POLICIES",
    "SAMPLE_FUNCTIONS",
    "Stats",
    "apply_sample",
    "augment_batch",
    "parse_how",
    "validate_how",
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
