"""The host run: determinism, resume, results, inference helpers, bad input."""

import dataclasses

import chex
import jax
import numpy as np
import pytest

from jtcaug.train import TrainConfig, TrainingDiverged, embed, predict, run
from jtcaug.train.checkpoint import Checkpointer

from .conftest import CLASS_NAMES, make_tiny_fold


class Interrupt(Exception):
    pass


def test_result_fields(reference, tiny_fold, tiny_config):
    r = reference
    assert r.epochs_run == tiny_config.max_epochs and r.stop_reason == "max_epochs"
    assert 1 <= r.best_epoch <= r.epochs_run
    assert r.best_val_acc == max(r.history["val_acc"])
    assert all(len(v) == r.epochs_run for v in r.history.values())
    assert r.history["lr"][0] == pytest.approx(tiny_config.learning_rate)
    assert np.all(np.diff(r.history["lr"]) < 0)  # cosine decay
    assert r.n_params == 115_028 - 16 * 129  # 4 classes instead of 20
    assert r.config == tiny_config.to_dict()
    assert set(r.metrics["per_class"]) == set(CLASS_NAMES)
    assert np.sum(r.metrics["confusion"]) == len(tiny_fold.y_test)
    assert r.metrics["accuracy"] == pytest.approx(np.mean(r.test_pred == tiny_fold.y_test))
    assert r.wall_time_s > 0
    assert set(r.to_dict()) >= {"metrics", "history", "config", "epochs_run", "best_epoch"}


def test_the_toy_problem_is_learned(reference):
    assert reference.history["train_loss"][-1] < reference.history["train_loss"][0]
    assert reference.metrics["accuracy"] > 0.6  # 4 balanced classes: chance is 0.25


def test_two_identical_runs_are_bitwise_equal(reference, tiny_fold, tiny_config):
    again = run(tiny_fold, tiny_config, progress=False, return_state=True, return_latents=True)
    assert again.metrics == reference.metrics
    assert again.history == reference.history
    np.testing.assert_array_equal(again.test_pred, reference.test_pred)
    chex.assert_trees_all_equal(again.state, reference.state)


def test_a_different_key_gives_a_different_run(reference, tiny_fold, tiny_config):
    other = run(tiny_fold, tiny_config, key=jax.random.PRNGKey(7), progress=False)
    assert other.history["train_loss"] != reference.history["train_loss"]


def test_resume_after_an_interruption_equals_the_uninterrupted_run(
    reference, tiny_fold, tiny_config, tmp_path
):
    def stop_after_3(report):
        if report.epoch == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tiny_fold, tiny_config, checkpoint_dir=tmp_path, progress=False, on_epoch=stop_after_3)
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_epoch() == 3  # saved on interruption (checkpoint_every=2)
    resumed = run(
        tiny_fold,
        tiny_config,
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
        return_state=True,
        return_latents=True,
    )
    assert resumed.metrics == reference.metrics
    assert resumed.history == reference.history
    assert resumed.best_epoch == reference.best_epoch
    np.testing.assert_array_equal(resumed.test_pred, reference.test_pred)
    chex.assert_trees_all_equal(resumed.state, reference.state)
    np.testing.assert_array_equal(resumed.test_latent, reference.test_latent)


def test_existing_checkpoints_need_resume_and_the_same_run(tiny_fold, tiny_config, tmp_path):
    def stop_at_once(report):
        raise Interrupt

    with pytest.raises(Interrupt):
        run(tiny_fold, tiny_config, checkpoint_dir=tmp_path, progress=False, on_epoch=stop_at_once)
    with pytest.raises(FileExistsError, match="resume"):
        run(tiny_fold, tiny_config, checkpoint_dir=tmp_path, progress=False)
    other = dataclasses.replace(tiny_config, seed=3)
    with pytest.raises(ValueError, match="another run"):
        run(tiny_fold, other, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_predict_and_embed_reproduce_the_run(reference, tiny_fold):
    chex.assert_shape(reference.test_latent, (len(tiny_fold.y_test), 128))
    np.testing.assert_array_equal(
        predict(reference.state, tiny_fold.x_test, batch_size=33), reference.test_pred
    )
    np.testing.assert_allclose(
        embed(reference.state, tiny_fold.x_test), reference.test_latent, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="shape"):
        predict(reference.state, tiny_fold.x_test[..., :2])


@pytest.mark.filterwarnings("ignore:batch_size 512 draws:RuntimeWarning")
def test_nan_loss_stops_with_the_epoch_and_keeps_the_last_good_checkpoint(tiny_fold, tmp_path):
    # One step per epoch; a huge learning rate blows the weights up after epoch 1.
    config = TrainConfig(batch_size=512, max_epochs=5, learning_rate=1e38, checkpoint_every=1)
    with pytest.raises(TrainingDiverged, match="at epoch 2.*last good checkpoint: epoch 1"):
        run(tiny_fold, config, checkpoint_dir=tmp_path, progress=False)
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_epoch() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: {"n_classes": 1, "class_names": ("a",)}, "at least 2"),
        (lambda f: {"y_train": np.zeros_like(f.y_train)}, "single class"),
        (lambda f: {"x_val": np.where(f.x_val == 1.0, np.nan, f.x_val)}, "NaN"),
        (lambda f: {"x_test": f.x_test[:, :10]}, "T=10"),
        (lambda f: {"y_val": f.y_val + 4}, "labels must lie"),
        (lambda f: {"x_train": f.x_train[:0], "y_train": f.y_train[:0]}, "empty"),
    ],
)
def test_bad_folds_are_rejected_with_a_clear_message(tiny_fold, tiny_config, change, message):
    bad = dataclasses.replace(tiny_fold, **change(tiny_fold))
    with pytest.raises(ValueError, match=message):
        run(bad, tiny_config, progress=False)


def test_an_invalid_config_is_rejected_before_training(tiny_fold):
    with pytest.raises(ValueError, match="unknown policy"):
        run(tiny_fold, TrainConfig(aug="wrap", policy="stack:2"), progress=False)


def test_make_tiny_fold_is_deterministic():
    a, b = make_tiny_fold(seed=1), make_tiny_fold(seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
