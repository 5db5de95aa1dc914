"""Multi-device training with ``jax.shard_map`` on a ("runs", "data") mesh.

- "runs": independent runs (different keys, optionally different folds) are split over the
  devices of this axis; each device ``vmap``s ``loop.train_run`` over its own runs. No
  collectives: each device owns whole runs.
- "data": data parallelism within a run. Every device of the axis builds the same full batch
  (same keys, so the same augmentations; a data-parallel run is the single-device run up to
  float reduction order), trains on its equal share, and gradients, loss and BatchNorm
  statistics are averaged over the axis (``lax.pmean`` and BatchNorm's ``axis_name``).
  Validation and test evaluation run replicated. A backbone without BatchNorm (the
  Transformer) averages only gradients and loss.

Varying-manual-axes checking is off (``check_vma=False``): a run's initial BatchNorm
statistics are constants (invariant) while its trained ones vary per device, which the
checker rejects as a loop carry. Replication of the outputs holds by construction (every
device of "data" applies the same averaged update) and is tested against one device.

The two compose: a mesh of shape (R, D) trains R groups of runs, each group data-parallel
over D devices. ``shard_map`` is used rather than jit auto-sharding because XLA:CPU
auto-sharding of vmapped convolutions has returned wrong values.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jtcaug.train import loop
from jtcaug.train.config import TrainConfig

RUNS, DATA = "runs", "data"


def make_mesh(runs: int = 1, data: int = 1, devices=None) -> jax.sharding.Mesh:
    """A ``(runs, data)`` mesh over the first ``runs * data`` devices.

    Raises:
      ValueError: fewer devices than ``runs * data``, or a non-positive size.
    """
    if runs < 1 or data < 1:
        raise ValueError(f"mesh sizes must be >= 1, got runs={runs}, data={data}")
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < runs * data:
        raise ValueError(
            f"a ({runs}, {data}) mesh needs {runs * data} devices, {len(devices)} available"
        )
    explicit = jax.sharding.AxisType.Explicit
    return jax.make_mesh(
        (runs, data),
        (RUNS, DATA),
        axis_types=(explicit, explicit),
        devices=devices[: runs * data],
    )


def replicate(tree, mesh: jax.sharding.Mesh):
    """Places every leaf of ``tree`` whole on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


@functools.cache
def data_parallel_advance(mesh: jax.sharding.Mesh):
    """``loop.advance`` with each step data-parallel over the mesh's "data" axis.

    Returns a jitted ``(loop_state, data, pool, config, n_epochs) -> loop_state`` taking and
    returning replicated arrays (``replicate``), ``config`` static.
    """
    _check_axes(mesh)

    @functools.partial(jax.jit, static_argnames="config")
    def advance(ls, data, pool, config: TrainConfig, n_epochs):
        def body(ls, data, pool, n_epochs):
            return loop.advance(ls, data, pool, config, n_epochs, axis_name=DATA)

        return jax.shard_map(body, mesh=mesh, in_specs=(P(),) * 4, out_specs=P(), check_vma=False)(
            ls, data, pool, n_epochs
        )

    return advance


# Padded split sizes are rounded up to a multiple of this: the folds of one dataset differ
# by a few rows, so most units of a campaign share one shape and one compilation.
PAD_MULTIPLE = 256


def padded_size(n_rows: int, multiple: int = PAD_MULTIPLE) -> int:
    """``n_rows`` rounded up to a multiple of ``multiple``."""
    return -(-n_rows // multiple) * multiple


def stack_folds(
    folds: Sequence[loop.FoldArrays], multiple: int = PAD_MULTIPLE
) -> loop.FoldArrays:
    """Folds of one dataset stacked on a leading run axis, each split padded to one size.

    Padding rows are zeros at the end of each split; ``n_train``/``n_val``/``n_test`` hold
    each fold's real row counts, so training never draws a padding row and accuracies never
    count one (no row is dropped or duplicated). Sizes are rounded up to ``multiple`` so
    that stacks of other folds of the dataset usually get the same shape.

    Args:
      folds: unpadded ``FoldArrays`` with equal ``T`` and class count.

    Returns:
      ``FoldArrays`` with a leading ``len(folds)`` axis on every leaf, as numpy arrays.
    """
    if not folds:
        raise ValueError("stack_folds needs at least one fold")
    if any(f.padded for f in folds):
        raise ValueError("stack_folds takes unpadded folds")
    fields = {}
    for split in ("train", "val", "test"):
        sizes = [int(np.shape(getattr(f, f"y_{split}"))[0]) for f in folds]
        size = padded_size(max(sizes), multiple)
        for prefix in ("x", "y"):
            name = f"{prefix}_{split}"
            fields[name] = np.stack([_pad_rows(np.asarray(getattr(f, name)), size) for f in folds])
        fields[f"n_{split}"] = np.asarray(sizes, np.int32)
    stats = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *[f.stats for f in folds])
    weighted = [f.aug_weights is not None for f in folds]
    if any(weighted) and not all(weighted):
        raise ValueError("stack_folds needs aug_weights on every fold or on none")
    if all(weighted):
        fields["aug_weights"] = np.stack([np.asarray(f.aug_weights, np.float32) for f in folds])
    return loop.FoldArrays(**fields, stats=stats)


def _pad_rows(a: np.ndarray, size: int) -> np.ndarray:
    return np.pad(a, [(0, size - a.shape[0])] + [(0, 0)] * (a.ndim - 1))


def train_runs(
    keys: jax.Array,
    data: loop.FoldArrays,
    config: TrainConfig,
    mesh: jax.sharding.Mesh,
    *,
    data_per_run: bool = False,
    return_latents: bool = False,
) -> loop.RunOutput:
    """Trains ``K`` complete runs at once, spread over the mesh.

    Args:
      keys: ``(K,)`` typed keys or ``(K, 2)`` raw uint32 keys, one per run; ``K`` must be a
        multiple of the mesh's "runs" size.
      data: one fold shared by every run, or (``data_per_run``) folds stacked on a leading
        ``K`` axis (``stack_folds``: padded to equal shapes).
      config: validated ``TrainConfig`` shared by the runs.
      mesh: from ``make_mesh``; its "data" size must divide every step's batch.

    Returns:
      ``loop.RunOutput`` of numpy arrays with a leading ``K`` axis on every leaf.
    """
    _check_axes(mesh)
    keys = loop.raw_key(jnp.asarray(keys))
    n_runs, n_groups = keys.shape[0], mesh.shape[RUNS]
    if n_runs % n_groups:
        raise ValueError(f"{n_runs} runs do not split evenly over {n_groups} 'runs' devices")
    if data_per_run and np.shape(data.x_train)[0] != n_runs:
        raise ValueError(f"data_per_run needs a leading axis of {n_runs} folds")
    data_spec = P(RUNS) if data_per_run else P()
    fn = _runs_fn(mesh, config, data_per_run, return_latents)
    keys = jax.device_put(keys, NamedSharding(mesh, P(RUNS)))
    data = jax.device_put(data, NamedSharding(mesh, data_spec))
    with jax.set_mesh(mesh):
        # Host copies: explicitly sharded results are awkward to index outside the mesh.
        return jax.device_get(fn(keys, data))


@functools.cache
def _runs_fn(mesh, config: TrainConfig, data_per_run: bool, return_latents: bool):
    axis_name = DATA if mesh.shape[DATA] > 1 else None

    def one_run(key, data):
        return loop.train_run(key, data, config, return_latents, axis_name)

    def local_runs(keys, data):
        if keys.shape[0] == 1:
            # One run on this device: XLA:CPU runs the vmapped training step several times
            # slower than the plain one (batched products and gathers), so skip the vmap.
            own = jax.tree_util.tree_map(lambda a: a[0], data) if data_per_run else data
            return jax.tree_util.tree_map(lambda a: a[None], one_run(keys[0], own))
        return jax.vmap(one_run, in_axes=(0, 0 if data_per_run else None))(keys, data)

    data_spec = P(RUNS) if data_per_run else P()
    return jax.jit(
        jax.shard_map(
            local_runs,
            mesh=mesh,
            in_specs=(P(RUNS), data_spec),
            out_specs=P(RUNS),
            check_vma=False,
        )
    )


def _check_axes(mesh) -> None:
    if tuple(mesh.axis_names) != (RUNS, DATA):
        raise ValueError(f"mesh axes must be ('runs', 'data') (make_mesh), got {mesh.axis_names}")
