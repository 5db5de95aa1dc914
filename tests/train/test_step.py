"""The pure pieces of training: train step, eval forward, early stopping, NaN handling."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtcaug.train import TrainConfig
from jtcaug.train.loop import EarlyStopping
from jtcaug.train.state import create_train_state, eval_forward, train_step

from .conftest import N_CLASSES, make_tiny_fold

CONFIG = TrainConfig(batch_size=64, max_epochs=4, patience=4)


@pytest.fixture(scope="module")
def batch():
    fold = make_tiny_fold(n_train=64, seed=3)
    return jnp.asarray(fold.x_train), jnp.asarray(fold.y_train)


def _state(seed=0):
    return jax.jit(create_train_state, static_argnums=(1, 2, 3, 4))(
        jax.random.PRNGKey(seed), N_CLASSES, 20, CONFIG, 100
    )


def test_train_step_decreases_the_loss_on_a_fixed_batch(batch):
    xb, yb = batch

    @jax.jit
    def twenty_steps(state):
        step = functools.partial(train_step, n_classes=N_CLASSES, config=CONFIG, total_steps=100)
        return jax.lax.scan(lambda s, _: step(s, xb, yb), state, None, length=20)

    state, losses = twenty_steps(_state())
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert int(state.step) == 20
    # BatchNorm running statistics moved off their initial values
    assert not np.allclose(state.batch_stats["stem"]["BatchNorm_0"]["mean"], 0.0)


def test_eval_forward_is_independent_of_the_chunk_size(batch):
    xb, _ = batch
    variables = _state().variables
    forward = jax.jit(eval_forward, static_argnums=(2, 3))
    logits_a, latent_a = forward(variables, xb, N_CLASSES, 7)  # 10 chunks, last padded
    logits_b, latent_b = forward(variables, xb, N_CLASSES, 4096)
    chex.assert_shape(logits_a, (64, N_CLASSES))
    chex.assert_shape(latent_a, (64, 128))
    np.testing.assert_allclose(logits_a, logits_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(latent_a, latent_b, rtol=1e-5, atol=1e-6)


def _track(accs, min_delta, patience, max_epochs=100):
    config = TrainConfig(min_delta=min_delta, patience=patience, max_epochs=max_epochs)
    tracker, rows = EarlyStopping.initial(), []
    for epoch, acc in enumerate(accs, start=1):
        tracker, is_best = tracker.update(jnp.float32(acc), jnp.int32(epoch), config)
        rows.append((bool(is_best), int(tracker.bad_epochs), bool(tracker.stopped)))
    return tracker, rows


def test_early_stopping_counts_only_improvements_beyond_min_delta():
    accs = [0.50, 0.51, 0.515, 0.53, 0.52]
    tracker, rows = _track(accs, min_delta=0.02, patience=3)
    # epoch 1 counts; 0.51/0.515 are within 0.02 of 0.50; 0.53 beats 0.50 + 0.02
    assert [bad for _, bad, _ in rows] == [0, 1, 2, 0, 1]
    assert [best for best, _, _ in rows] == [True, True, True, True, False]
    assert int(tracker.best_epoch) == 4
    np.testing.assert_allclose(float(tracker.best_val_acc), 0.53)
    assert not rows[-1][2]


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    _, rows = _track([0.5, 0.5, 0.51, 0.505], min_delta=0.02, patience=3)
    assert [stopped for _, _, stopped in rows] == [False, False, False, True]
    _, rows = _track([0.5, 0.9, 0.95], min_delta=0.0, patience=1, max_epochs=3)
    assert [stopped for _, _, stopped in rows] == [False, False, True]  # max_epochs
