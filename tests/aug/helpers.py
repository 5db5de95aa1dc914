"""Small hand-made flows and stats shared by the augmentation tests."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jtcaug.aug.stats import Stats

T = 20
N_CLASSES = 3


def random_flows(n: int, seed: int = 0, min_len: int = 5, max_len: int = T) -> np.ndarray:
    """``(n, T, 3)`` float32 normalized flows with random valid lengths and zero padding."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, T, 3), np.float32)
    lengths = rng.integers(min_len, max_len + 1, n)
    for i, length in enumerate(lengths):
        x[i, :length, 0] = rng.uniform(0.05, 0.95, length)
        x[i, :length, 1] = rng.choice([-1.0, 1.0], length)
        x[i, :length, 2] = rng.uniform(0.05, 0.95, length)
    return x


def full_flow(seed: int = 1) -> jnp.ndarray:
    """One non-trivial flow of full length T with distinct values in every column."""
    return jnp.asarray(random_flows(1, seed, min_len=T)[0])


def toy_stats(seed: int = 0) -> tuple[Stats, np.ndarray, np.ndarray]:
    x = random_flows(60, seed)
    y = (np.arange(60) % N_CLASSES).astype(np.int32)
    return Stats.from_training(x, y, N_CLASSES, iat_q99=0.8), x, y
