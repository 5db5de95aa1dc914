"""Runs trained together (stacked, padded folds over 2 devices) equal the same runs alone."""

import jax
import numpy as np
import pytest

from jtcaug.train import TrainConfig, TrainingDiverged, run
from jtcaug.train.parallel import padded_size, stack_folds
from jtcaug.train.runner import fold_arrays
from jtcaug.train.stacked import run_stacked

from .conftest import make_tiny_fold

pytestmark = pytest.mark.skipif(jax.device_count() < 2, reason="needs 2 devices")


def test_stack_folds_pads_each_split_and_records_real_sizes():
    folds = [jax.device_get(fold_arrays(make_tiny_fold(n, seed=n))) for n in (300, 290, 20)]
    stacked = stack_folds(folds, multiple=64)
    assert stacked.x_train.shape == (3, 320, 20, 3)
    np.testing.assert_array_equal(stacked.n_train, [300, 290, 20])
    np.testing.assert_array_equal(stacked.n_val, [100, 100, 100])
    np.testing.assert_array_equal(stacked.x_train[1, :290], folds[1].x_train)
    assert not stacked.x_train[1, 290:].any() and not stacked.y_train[2, 20:].any()
    np.testing.assert_array_equal(stacked.stats.sigma[2], folds[2].stats.sigma)
    assert padded_size(257) == 512 and padded_size(256) == 256
    with pytest.raises(ValueError, match="unpadded"):
        stack_folds([stacked])


# Early stopping can trigger (patience 2, no min_delta) and inject:1 draws augmentations.
CONFIG = TrainConfig(aug="translation", policy="inject:1", batch_size=64, max_epochs=4,
                     patience=2, min_delta=0.0)
SIZES = (300, 233)


# Two folds put one run on each device (trained without vmap); three put two on each
# (vmapped, the third device slot filled with a repeat of the last run).
@pytest.mark.parametrize("sizes", [SIZES, (*SIZES, 150)], ids=["one_per_device", "vmapped"])
def test_a_run_inside_a_unit_equals_the_same_run_alone(sizes):
    folds = [make_tiny_fold(n, seed=10 + n) for n in sizes]
    keys = [jax.random.PRNGKey(100 + i) for i in range(len(folds))]
    together = run_stacked(folds, CONFIG, keys)
    for fold, key, unit_run in zip(folds, keys, together, strict=True):
        alone = run(fold, CONFIG, key=key, progress=False)
        assert unit_run.epochs_run == alone.epochs_run
        assert unit_run.stop_reason == alone.stop_reason
        assert unit_run.best_epoch == alone.best_epoch
        assert unit_run.test_pred.shape == alone.test_pred.shape
        if len(sizes) == 2:
            # Unvmapped, a padded run computes what it computes alone: bitwise with jax 0.10
            # on CPU, to a float rounding with jax 0.12 (its whole-run program fuses
            # differently from the per-epoch one).
            np.testing.assert_allclose(unit_run.history["train_loss"],
                                       alone.history["train_loss"], rtol=1e-5)
            np.testing.assert_allclose(unit_run.metrics["weighted_f1"],
                                       alone.metrics["weighted_f1"], atol=0.005)
            assert np.mean(unit_run.test_pred == alone.test_pred) >= 0.99
            continue
        # vmapped products round differently: losses agree to float tolerance, the
        # schedule exactly, predictions almost everywhere.
        np.testing.assert_allclose(unit_run.history["train_loss"], alone.history["train_loss"],
                                   rtol=2e-3)
        np.testing.assert_allclose(unit_run.history["lr"], alone.history["lr"], rtol=1e-6)
        np.testing.assert_allclose(unit_run.metrics["weighted_f1"],
                                   alone.metrics["weighted_f1"], atol=0.02)
        assert np.mean(unit_run.test_pred == alone.test_pred) >= 0.98


def test_diverged_runs_are_reported_as_such():
    folds = [make_tiny_fold(n, seed=10 + n) for n in SIZES]
    config = TrainConfig(batch_size=64, max_epochs=1, learning_rate=1e30)
    out = run_stacked(folds, config, [jax.random.PRNGKey(100), jax.random.PRNGKey(101)])
    assert all(isinstance(o, TrainingDiverged) for o in out)
    assert "epoch 1" in str(out[0])
