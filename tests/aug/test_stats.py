"""Per-class sigma tables (spec section 3)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.aug.stats import Stats


def test_sigma_excludes_padding_and_falls_back_to_the_class_sigma():
    # Class 0: three flows of length 3; positions >= 3 are padding only.
    x = np.zeros((4, 5, 3), np.float32)
    x[:3, :3, 0] = [[0.1, 0.2, 0.3], [0.3, 0.2, 0.5], [0.5, 0.2, 0.7]]
    x[:3, :3, 1] = 1.0
    x[:3, :3, 2] = 0.5
    # Class 1: a single flow, so every cell has fewer than two values.
    x[3, :2] = [[0.4, -1.0, 0.1], [0.6, 1.0, 0.3]]
    y = np.array([0, 0, 0, 1], np.int32)
    stats = Stats.from_training(x, y, 3, iat_q99=2.0)
    sigma = np.asarray(stats.sigma)
    np.testing.assert_allclose(sigma[0, 0, 0], np.std([0.1, 0.3, 0.5]), rtol=1e-6)
    np.testing.assert_allclose(sigma[0, 1, 0], 0.0, atol=1e-7)
    pooled = np.std([0.1, 0.2, 0.3, 0.3, 0.2, 0.5, 0.5, 0.2, 0.7])
    np.testing.assert_allclose(np.asarray(stats.sigma_global)[0, 0], pooled, rtol=1e-6)
    # Padded positions would drag the std towards 0; they fall back to the pooled sigma.
    np.testing.assert_allclose(sigma[0, 3:, 0], pooled, rtol=1e-6)
    np.testing.assert_allclose(sigma[1, :, 0], np.std([0.4, 0.6]), rtol=1e-6)
    assert (sigma[2] == 0).all()  # absent class
    assert float(stats.iat_q99) == 2.0
    ctx = stats.context(jnp.asarray(1))
    assert ctx.sigma.shape == (5, 3) and ctx.sigma_global.shape == (3,)


@pytest.mark.parametrize(
    "x_shape, y, q99, message",
    [
        ((4, 5), [0, 0, 0, 0], 1.0, "x must be (N, T, 3)"),
        ((4, 5, 3), [0, 0, 0], 1.0, "y must be (4,)"),
        ((4, 5, 3), [0, 0, 0, 7], 1.0, "labels must lie in [0, 3)"),
        ((4, 5, 3), [0, 0, 0, 0], 0.0, "iat_q99 must be finite and > 0"),
    ],
)
def test_bad_input(x_shape, y, q99, message):
    with pytest.raises(ValueError) as err:
        Stats.from_training(np.zeros(x_shape, np.float32), np.array(y), 3, q99)
    assert message in str(err.value)


def test_nan_is_rejected():
    x = np.zeros((2, 5, 3), np.float32)
    x[0, 0] = [np.nan, 1.0, 0.1]
    with pytest.raises(ValueError, match="NaN"):
        Stats.from_training(x, np.array([0, 1]), 2, 1.0)
