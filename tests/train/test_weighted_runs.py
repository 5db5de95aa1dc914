"""Runs of a weighted augmentation whose weights are data: one program, each run its own."""

import dataclasses

import jax
import numpy as np
import pytest

from jtcaug.aug import weighted_how
from jtcaug.train import TrainConfig
from jtcaug.train.stacked import run_stacked

from .conftest import make_tiny_fold

POOL = ("translation", "wrap", "gaussian_noise")
SHARED = TrainConfig(aug=f"weighted[{','.join(POOL)}]", policy="inject:1", batch_size=64,
                     max_epochs=2, patience=2, min_delta=0.0)


def test_weights_as_data_equal_the_weights_in_the_config():
    fold = make_tiny_fold(200, seed=3)
    keys = [jax.random.PRNGKey(9)] * 2
    rows = np.array([[1.0, 0.0, 0.0], [0.1, 0.2, 0.7]])
    together = run_stacked([fold, fold], SHARED, keys, aug_weights=rows)
    for row, got in zip(rows, together, strict=True):
        config = dataclasses.replace(SHARED, aug=weighted_how(POOL, row))
        want = run_stacked([fold], config, keys[:1])[0]
        np.testing.assert_allclose(got.history["train_loss"], want.history["train_loss"],
                                   rtol=2e-3)
        assert np.mean(got.test_pred == want.test_pred) > 0.95
    # Same fold, same key: only the weights tell the two runs apart.
    assert together[0].history["train_loss"] != together[1].history["train_loss"]


def test_bad_aug_weights_are_refused():
    fold = make_tiny_fold(100, seed=1)
    key = [jax.random.PRNGKey(0)]
    with pytest.raises(ValueError, match="need a weighted augmentation"):
        run_stacked([fold], dataclasses.replace(SHARED, aug="translation"), key,
                    aug_weights=np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"must have shape \(1, 3\)"):
        run_stacked([fold], SHARED, key, aug_weights=np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        run_stacked([fold], SHARED, key, aug_weights=np.array([[1.0, -0.5, 0.0]]))
