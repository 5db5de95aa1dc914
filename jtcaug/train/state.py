"""Train state, optimizer and the pure train/eval steps of a backbone (``jtcaug.backbones``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jtcaug import backbones
from jtcaug.train.config import TrainConfig


@struct.dataclass
class TrainState:
    """Everything a training step updates.

    Attributes:
      params: model parameters.
      batch_stats: BatchNorm running mean/var (empty for a backbone without BatchNorm).
      opt_state: AdamW state.
      step: int32 scalar, optimizer steps taken (drives the schedule and per-step keys).
    """

    params: dict
    batch_stats: dict
    opt_state: optax.OptState
    step: jnp.ndarray

    @property
    def variables(self) -> dict:
        return {"params": self.params, "batch_stats": self.batch_stats}


def _optax_promotion():
    # optax mixes Python floats with int32 step counts (decay ** count), which the tests'
    # strict dtype promotion rejects; its arithmetic is traced under standard promotion.
    return jax.numpy_dtype_promotion("standard")


def learning_rate_schedule(config: TrainConfig, total_steps) -> optax.Schedule:
    """Cosine decay from ``config.learning_rate`` to 0 over ``total_steps``.

    The formula of ``optax.cosine_decay_schedule``, written out because ``total_steps`` may
    be traced: runs of different sizes trained in one program each decay over their own
    number of steps.
    """

    def schedule(step):
        horizon = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
        done = jnp.minimum(jnp.asarray(step, jnp.float32), horizon) / horizon
        return config.learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * done))

    return schedule


def make_optimizer(config: TrainConfig, total_steps) -> optax.GradientTransformation:
    """AdamW (decay on every parameter, as torch.optim.AdamW) with the cosine schedule."""
    return optax.flatten(
        optax.adamw(learning_rate_schedule(config, total_steps), weight_decay=config.weight_decay)
    )


def create_train_state(
    key: jax.Array, n_classes: int, t_len: int, config: TrainConfig, total_steps
) -> TrainState:
    """Fresh state: initialized ``config.model``, zeroed AdamW moments, step 0."""
    variables = backbones.init_variables(config.model, key, n_classes, t_len)
    params = variables["params"]
    return TrainState(
        params=params,
        batch_stats=variables["batch_stats"],
        opt_state=make_optimizer(config, total_steps).init(params),
        step=jnp.zeros((), jnp.int32),
    )


def train_step(
    state: TrainState,
    xb: jnp.ndarray,
    yb: jnp.ndarray,
    *,
    n_classes: int,
    config: TrainConfig,
    total_steps,
    axis_name: str | None = None,
) -> tuple[TrainState, jnp.ndarray]:
    """One AdamW step of ``config.model`` on the mean cross-entropy of a batch.

    Args:
      state: current state.
      xb: ``(B, T, 3)`` float32 batch (this device's share under data parallelism).
      yb: ``(B,)`` int32 labels.
      axis_name: mesh axis of data parallelism: gradients, loss and BatchNorm statistics are
        averaged over it (shares must be equal-sized).

    Returns:
      ``(new_state, loss)``, loss the batch mean (over all shares).
    """
    model = backbones.make_model(config.model, n_classes, bn_axis_name=axis_name)

    def loss_fn(params):
        (logits, _), updates = model.apply(
            {"params": params, "batch_stats": state.batch_stats},
            xb,
            train=True,
            mutable=["batch_stats"],
        )
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        return loss, updates["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        loss = jax.lax.pmean(loss, axis_name)
    tx = make_optimizer(config, total_steps)
    with _optax_promotion():
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return (
        TrainState(
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
            step=state.step + 1,
        ),
        loss,
    )


def eval_forward(
    variables: dict, x: jnp.ndarray, n_classes: int, batch_size: int
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Eval-mode forward pass in chunks of ``batch_size`` rows.

    Args:
      variables: ``{"params", "batch_stats"}`` of a backbone (its parameter names say which,
        ``backbones.model_of``).
      x: ``(N, T, 3)``.

    Returns:
      ``(logits (N, C), latent (N, 128))``.
    """
    n = x.shape[0]
    model = backbones.make_model(backbones.model_of(variables), n_classes)
    if n == 0:
        logits, latent = model.apply(variables, x[:1], train=False)
        return logits[:0], latent[:0]
    chunk = min(batch_size, n)
    n_chunks = -(-n // chunk)
    padded = jnp.pad(x, ((0, n_chunks * chunk - n), (0, 0), (0, 0)))
    chunks = padded.reshape(n_chunks, chunk, *x.shape[1:])
    logits, latent = jax.lax.map(lambda xc: model.apply(variables, xc, train=False), chunks)
    return logits.reshape(-1, n_classes)[:n], latent.reshape(n_chunks * chunk, -1)[:n]
