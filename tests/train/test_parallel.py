"""Multi-device training on 2 forced CPU devices matches one device (both mesh axes)."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.train import fold_arrays, make_mesh, run, train_runs

from .conftest import (
    assert_runs_equal_each_run_alone,
    full_batch_and_data_parallel_steps,
)

pytestmark = pytest.mark.skipif(jax.device_count() < 2, reason="needs 2 devices")

# Layouts differ in float reduction order only; a few epochs keep the drift tiny.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def test_data_parallel_step_equals_the_full_batch_step(tiny_config):
    single_state, single_loss, multi_state, multi_loss = full_batch_and_data_parallel_steps(
        tiny_config)
    np.testing.assert_allclose(multi_loss, single_loss, **TOLERANCE)
    # synchronized BatchNorm: running stats equal the full-batch ones
    chex.assert_trees_all_close(multi_state.batch_stats, single_state.batch_stats, **TOLERANCE)
    # Adam's first step is nearly sign(grad) * lr: where a gradient is ~0, reduction-order
    # noise moves that weight by up to a fraction of lr = 1e-3.
    chex.assert_trees_all_close(multi_state.params, single_state.params, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_data_axis_run_matches_one_device(reference, tiny_fold, tiny_config):
    result = run(tiny_fold, tiny_config, mesh=make_mesh(data=2), progress=False, return_state=True)
    np.testing.assert_allclose(
        result.history["train_loss"], reference.history["train_loss"], **TOLERANCE
    )
    np.testing.assert_allclose(result.history["val_acc"], reference.history["val_acc"], atol=0.02)
    chex.assert_trees_all_close(jax.device_get(result.state), reference.state, rtol=1e-3, atol=1e-4)
    assert np.mean(result.test_pred == reference.test_pred) >= 0.98


@pytest.mark.slow
def test_runs_axis_matches_one_device_per_run(reference, tiny_fold, tiny_config):
    keys = jnp.stack([jax.random.PRNGKey(tiny_config.seed), jax.random.PRNGKey(7)])
    out = train_runs(keys, fold_arrays(tiny_fold), tiny_config, make_mesh(runs=2))
    chex.assert_tree_shape_prefix(out.best, (2,))
    other = run(tiny_fold, tiny_config, key=keys[1], progress=False, return_state=True)
    assert_runs_equal_each_run_alone(out, [reference, other])


def test_mesh_and_batch_checks(tiny_config):
    with pytest.raises(ValueError, match="needs 4 devices"):
        make_mesh(runs=2, data=2, devices=jax.devices()[:2])
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match="split evenly"):
        train_runs(keys, None, tiny_config, make_mesh(runs=2))
