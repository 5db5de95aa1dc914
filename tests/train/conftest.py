"""Tiny Fold-like data for the training tests (a learnable 4-class toy problem)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jtcaug.aug import Stats
from jtcaug.train import RunResult, TrainConfig, make_mesh, run
from jtcaug.train.parallel import DATA, replicate
from jtcaug.train.state import create_train_state, train_step

N_CLASSES = 4
CLASS_NAMES = ("a", "b", "c", "d")


@dataclasses.dataclass
class TinyFold:
    """The fields of ``jtcaug.data.Fold`` that training reads."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    stats: Stats
    class_names: tuple
    n_classes: int
    dataset: str = "tiny"
    fold: int = 0
    iat_q99: float = 1.0


def tiny_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flows of 8..20 packets whose sizes encode the class, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n).astype(np.int32)
    lengths = rng.integers(8, 21, n)
    valid = np.arange(20)[None, :] < lengths[:, None]
    x = np.zeros((n, 20, 3), np.float32)
    x[..., 0] = np.clip(y[:, None] / N_CLASSES + 0.2 * rng.random((n, 20)), 0, 1)
    x[..., 1] = np.where(rng.random((n, 20)) < 0.5, 1.0, -1.0)
    x[..., 2] = rng.random((n, 20))
    x *= valid[..., None]
    return x, y


def make_tiny_fold(n_train: int = 300, seed: int = 0) -> TinyFold:
    x_train, y_train = tiny_split(n_train, seed)
    x_val, y_val = tiny_split(100, seed + 1)
    x_test, y_test = tiny_split(100, seed + 2)
    return TinyFold(
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        Stats.from_training(x_train, y_train, N_CLASSES, 1.0),
        CLASS_NAMES,
        N_CLASSES,
    )


@pytest.fixture(scope="session")
def tiny_fold() -> TinyFold:
    return make_tiny_fold()


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    """One small config shared by the run-level tests, so its jitted epoch compiles once."""
    return TrainConfig(batch_size=64, max_epochs=4, patience=4, checkpoint_every=2)


@pytest.fixture(scope="session")
def reference(tiny_fold, tiny_config) -> RunResult:
    """One uninterrupted single-device run that other tests compare against."""
    return run(tiny_fold, tiny_config, progress=False, return_state=True, return_latents=True)


def assert_runs_equal_each_run_alone(out, singles) -> None:
    """``out`` (``train_runs``'s output) matches each run of ``singles`` trained alone.

    Vmapped matrix products round differently, and Adam's near-sign steps amplify rounding
    where a gradient is ~0: after 20 steps weights differ by a few learning rates (1e-3).
    """
    import chex
    import jax

    for i, single in enumerate(singles):
        epochs = single.epochs_run
        assert int(out.epochs_run[i]) == epochs
        np.testing.assert_allclose(
            out.history.train_loss[i][:epochs], single.history["train_loss"], rtol=2e-3
        )
        best_i = jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], out.best)
        chex.assert_trees_all_close(best_i, jax.device_get(single.state), rtol=1e-2, atol=1e-2)
        assert np.mean(out.test_pred[i] == single.test_pred) >= 0.98


def full_batch_and_data_parallel_steps(config: TrainConfig):
    """One training step on a 64-flow batch, on one device and split over a 2-device data
    axis: ``(single_state, single_loss, multi_state, multi_loss)``, states on the host."""
    fold = make_tiny_fold(n_train=64, seed=8)
    xb, yb = jnp.asarray(fold.x_train), jnp.asarray(fold.y_train)
    state = jax.jit(create_train_state, static_argnums=(1, 2, 3, 4))(
        jax.random.PRNGKey(0), N_CLASSES, 20, config, 100
    )
    step = functools.partial(train_step, n_classes=N_CLASSES, config=config, total_steps=100)
    single_state, single_loss = jax.jit(step)(state, xb, yb)
    mesh = make_mesh(data=2)
    sharded = jax.jit(jax.shard_map(
        functools.partial(step, axis_name=DATA), mesh=mesh,
        in_specs=(P(), P(DATA), P(DATA)), out_specs=P(), check_vma=False,
    ))
    with jax.set_mesh(mesh):
        split = jax.sharding.NamedSharding(mesh, P(DATA))
        multi_state, multi_loss = sharded(
            # From host copies: inside the full suite, jax 0.12 cannot reshard arrays
            # committed to a device onto this mesh.
            replicate(jax.device_get(state), mesh), jax.device_put(np.asarray(xb), split),
            jax.device_put(np.asarray(yb), split),
        )
    return (jax.device_get(single_state), single_loss, jax.device_get(multi_state),
            multi_loss)
