"""Training the Transformer backbone: a whole run, determinism, resume, runs vmapped over a
mesh, data parallelism, and the saved-run comparison of the model field."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.train import TrainConfig, embed, fold_arrays, make_mesh, predict, run, train_runs
from jtcaug.train.checkpoint import Checkpointer
from jtcaug.train.runner import run_differences

from .conftest import (
    assert_runs_equal_each_run_alone,
    full_batch_and_data_parallel_steps,
)

CONFIG = TrainConfig(model="transformer", batch_size=64, max_epochs=4, patience=4,
                     checkpoint_every=2)
# Layouts differ in float reduction order only; a few epochs keep the drift tiny.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def transformer_run(tiny_fold):
    return run(tiny_fold, CONFIG, progress=False, return_state=True, return_latents=True)


@pytest.mark.slow
def test_a_whole_run_learns_the_toy_problem(transformer_run, tiny_fold):
    r = transformer_run
    assert r.epochs_run == CONFIG.max_epochs and r.config["model"] == "transformer"
    assert r.n_params == 46_036 - 16 * 129  # 4 classes instead of 20
    assert r.state["batch_stats"] == {}
    assert r.history["train_loss"][-1] < r.history["train_loss"][0]
    assert r.metrics["accuracy"] > 0.6  # 4 balanced classes: chance is 0.25
    chex.assert_shape(r.test_latent, (len(tiny_fold.y_test), 128))
    # predict / embed read the model from the variables' parameter names
    np.testing.assert_array_equal(predict(r.state, tiny_fold.x_test, batch_size=33), r.test_pred)
    np.testing.assert_allclose(embed(r.state, tiny_fold.x_test), r.test_latent, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.slow
def test_same_key_is_bitwise_equal_and_another_key_differs(transformer_run, tiny_fold):
    again = run(tiny_fold, CONFIG, progress=False, return_state=True)
    assert again.history == transformer_run.history
    chex.assert_trees_all_equal(again.state, transformer_run.state)
    other = run(tiny_fold, CONFIG, key=jax.random.PRNGKey(7), progress=False)
    assert other.history["train_loss"] != transformer_run.history["train_loss"]


@pytest.mark.slow
def test_resume_with_no_batch_statistics_equals_the_uninterrupted_run(
    transformer_run, tiny_fold, tmp_path
):
    def stop_after_3(report):
        if report.epoch == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tiny_fold, CONFIG, checkpoint_dir=tmp_path, progress=False, on_epoch=stop_after_3)
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_epoch() == 3
    resumed = run(tiny_fold, CONFIG, checkpoint_dir=tmp_path, resume=True, progress=False,
                  return_state=True, return_latents=True)
    assert resumed.history == transformer_run.history
    chex.assert_trees_all_equal(resumed.state, transformer_run.state)
    np.testing.assert_array_equal(resumed.test_latent, transformer_run.test_latent)
    # the ResNet cannot resume the Transformer's checkpoint: the model is named
    resnet = dataclasses.replace(CONFIG, model="resnet1d")
    with pytest.raises(ValueError, match="model: 'transformer' saved, 'resnet1d' given"):
        run(tiny_fold, resnet, checkpoint_dir=tmp_path, resume=True, progress=False)


@pytest.mark.slow
@pytest.mark.skipif(jax.device_count() < 2, reason="needs 2 devices")
def test_runs_vmapped_over_a_mesh_equal_each_run_alone(transformer_run, tiny_fold):
    keys = jnp.stack([jax.random.PRNGKey(CONFIG.seed), jax.random.PRNGKey(7)])
    out = train_runs(keys, fold_arrays(tiny_fold), CONFIG, make_mesh(runs=2))
    other = run(tiny_fold, CONFIG, key=keys[1], progress=False, return_state=True)
    assert_runs_equal_each_run_alone(out, [transformer_run, other])


@pytest.mark.skipif(jax.device_count() < 2, reason="needs 2 devices")
def test_data_parallel_step_equals_the_full_batch_step():
    single_state, single_loss, multi_state, multi_loss = full_batch_and_data_parallel_steps(
        CONFIG)
    np.testing.assert_allclose(multi_loss, single_loss, **TOLERANCE)
    assert multi_state.batch_stats == {}
    # Adam's first step is nearly sign(grad) * lr: where a gradient is ~0, reduction-order
    # noise moves that weight by up to a fraction of lr = 1e-3. The attention key bias has a
    # gradient of exactly 0 in exact arithmetic (softmax ignores a shift shared by all keys),
    # so its step is all noise: it is compared to lr.
    multi, single = multi_state.params, single_state.params
    np.testing.assert_allclose(_key_bias(multi), _key_bias(single), atol=CONFIG.learning_rate)
    chex.assert_trees_all_close(_without_key_bias(multi), _without_key_bias(single),
                                rtol=1e-4, atol=1e-4)


def _key_bias(params):
    return params["layer0"]["attention"]["key"]["bias"]


def _without_key_bias(params):
    attention = dict(params["layer0"]["attention"])
    del attention["key"]
    return {**params, "layer0": {**params["layer0"], "attention": attention}}


def test_a_run_saved_before_the_model_field_is_a_resnet_run():
    saved = {"config": {k: v for k, v in TrainConfig().to_dict().items() if k != "model"}}
    assert run_differences(saved, {"config": TrainConfig().to_dict()}) == []
    transformer = {"config": TrainConfig(model="transformer").to_dict()}
    assert run_differences(saved, transformer) == ["model: 'resnet1d' saved, 'transformer' given"]
