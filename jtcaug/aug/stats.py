"""Per-class statistics that parametrize the amplitude family (docs/augmentations.md).

``Stats`` is computed once per fold on the normalized training split, host-side with numpy,
and then travels into jitted code as a pytree.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from jtcaug import DIR

# A (class, position, feature) cell needs at least this many valid values for its own sigma;
# below it the class/feature sigma pooled over positions is used instead.
MIN_VALUES_PER_CELL = 2


@struct.dataclass
class AugContext:
    """What one sample's augmentation may know about its class.

    Attributes:
      sigma: ``(T, 3)`` per-position std of the sample's class (normalized units).
      sigma_global: ``(3,)`` per-feature std of the class pooled over positions.
      iat_q99: scalar, 99th percentile of raw IAT (seconds) on the training split; inverts
        the IAT normalization for Packet Loss.
    """

    sigma: jnp.ndarray
    sigma_global: jnp.ndarray
    iat_q99: jnp.ndarray


@struct.dataclass
class Stats:
    """Per-class statistics of a normalized training split.

    Attributes:
      sigma: ``(C, T, 3)`` float32.
      sigma_global: ``(C, 3)`` float32.
      iat_q99: scalar float32 (seconds).
    """

    sigma: jnp.ndarray
    sigma_global: jnp.ndarray
    iat_q99: jnp.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.sigma.shape[0])

    @classmethod
    def from_training(
        cls, x: np.ndarray, y: np.ndarray, n_classes: int, iat_q99: float
    ) -> Stats:
        """Computes the statistics from a normalized training set.

        Args:
          x: ``(N, T, 3)`` normalized samples; a position is valid where direction != 0.
          y: ``(N,)`` integer labels in ``[0, n_classes)``.
          n_classes: size of the class table (classes absent from ``y`` get sigma 0).
          iat_q99: the training split's IAT 99th percentile in seconds (> 0).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 3 or x.shape[-1] != 3:
            raise ValueError(f"Stats.from_training: x must be (N, T, 3), got {x.shape}")
        if y.shape != x.shape[:1]:
            raise ValueError(f"Stats.from_training: y must be ({x.shape[0]},), got {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(
                f"Stats.from_training: labels must lie in [0, {n_classes}), "
                f"got [{y.min()}, {y.max()}]"
            )
        if not np.isfinite(iat_q99) or iat_q99 <= 0:
            raise ValueError(f"Stats.from_training: iat_q99 must be finite and > 0, got {iat_q99}")
        if not np.isfinite(x).all():
            raise ValueError("Stats.from_training: x contains NaN or infinite values")
        t_len = x.shape[1]
        valid = (x[..., DIR] != 0).astype(np.float64)  # (N, T)
        onehot = np.eye(n_classes)[y]  # (N, C)
        w = valid[..., None] * np.ones((1, 1, 3))  # (N, T, 3)
        # Sums per (class, position, feature) by matrix products: no per-class Python loop.
        cnt = np.einsum("nc,ntd->ctd", onehot, w)
        s1 = np.einsum("nc,ntd->ctd", onehot, w * x)
        s2 = np.einsum("nc,ntd->ctd", onehot, w * x * x)
        sigma = _std_from_sums(cnt, s1, s2)
        g_cnt, g_s1, g_s2 = cnt.sum(1), s1.sum(1), s2.sum(1)
        sigma_global = _std_from_sums(g_cnt, g_s1, g_s2)
        sigma = np.where(
            cnt >= MIN_VALUES_PER_CELL,
            sigma,
            np.broadcast_to(sigma_global[:, None, :], (n_classes, t_len, 3)),
        )
        return cls(
            sigma=jnp.asarray(sigma, jnp.float32),
            sigma_global=jnp.asarray(sigma_global, jnp.float32),
            iat_q99=jnp.asarray(iat_q99, jnp.float32),
        )

    def context(self, y: jnp.ndarray) -> AugContext:
        """The augmentation context of one sample of class ``y`` (scalar int, traceable).

        Class ids are checked host-side by ``augment_batch``; inside jit an out-of-range id
        is clamped by JAX's gather semantics, so validate before tracing.
        """
        return AugContext(
            sigma=self.sigma[y], sigma_global=self.sigma_global[y], iat_q99=self.iat_q99
        )


def _std_from_sums(cnt: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Population std from counts and sums; 0 where fewer than two values exist."""
    safe = np.maximum(cnt, 1)
    mean = s1 / safe
    var = np.maximum(s2 / safe - mean * mean, 0.0)
    return np.where(cnt >= MIN_VALUES_PER_CELL, np.sqrt(var), 0.0)
