"""The paper's ResNet-1d (Wang et al., PAM 2024, appendix Listing 1.1) in Flax linen.

Stem conv + two residual blocks (64 then 128 channels, each halving the length) + global
average pooling to a 128-d latent + a linear head: 115,028 parameters for 20 classes.
Convolutions pad like PyTorch's ``Conv1d(padding=k // 2)`` so lengths go 20 -> 10 -> 5, and
weights start from PyTorch's default initialization, to stay close to the reference setup.

Convolutions are computed as one matrix product over gathered patches (``Conv1d``) rather
than with XLA's convolution: on XLA:CPU the convolution's weight gradient runs ~40x slower
inside a loop (the epoch's ``lax.scan``) than outside one, and vmapping over models turns
convolutions into slow grouped convolutions; matrix products have neither problem.

BatchNorm (``BatchNorm``) is flax's, with a hand-written backward pass that keeps only the
layer's input for the gradient (autodiff of ``flax.linen.BatchNorm`` stores two more
full-size tensors, the centred input and a squared-input term): less memory per step (the
step's XLA temporary buffer shrinks from ~86 to ~80 MB at B=1024) and a faster step on CPU.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

LATENT_DIM = 128

# PyTorch initializes conv/linear weights with kaiming_uniform(a=sqrt(5)), i.e.
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)): a fan-in uniform variance scaling with scale 1/3.
_torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int):
    """PyTorch's linear bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Conv1d(nn.Module):
    """Bias-free 1-d convolution, PyTorch semantics (cross-correlation, padding k // 2).

    Attributes:
      features: output channels.
      kernel: kernel width k.
      stride: step between output positions.

    Call: ``x (B, L, C_in) -> (B, (L + 2 * (k // 2) - k) // stride + 1, features)``; the
    ``kernel`` parameter has shape ``(k, C_in, features)`` like ``flax.linen.Conv``'s.
    """

    features: int
    kernel: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        c_in = x.shape[-1]
        w = self.param("kernel", _torch_kernel_init, (self.kernel, c_in, self.features))
        pad = self.kernel // 2
        length = x.shape[-2]
        out_len = (length + 2 * pad - self.kernel) // self.stride + 1
        padded = jnp.pad(x, ((0, 0),) * (x.ndim - 2) + ((pad, pad), (0, 0)))
        last = self.stride * (out_len - 1) + 1
        # patches[..., t, i * C_in + c] = padded[..., t * stride + i, c]
        patches = jnp.concatenate(
            [padded[..., i : i + last : self.stride, :] for i in range(self.kernel)], axis=-1
        )
        # One 2-d product over all rows: with the batch dims kept, the weight gradient
        # contracts two dims at once and XLA:CPU transposes the output gradient to a
        # (features, rows) copy for a slow dot; flattened, it is a plain rows^T @ rows product
        # (scanned train step ~1.4x faster on one CPU core).
        lead = patches.shape[:-1]
        flat = patches.reshape(-1, self.kernel * c_in)
        out = flat @ w.reshape(self.kernel * c_in, self.features)
        return out.reshape(*lead, self.features)


def _batch_moments(x: jnp.ndarray, axis_name: str | None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-channel mean and (unclipped) E[x^2] - E[x]^2 over all but the last axis, averaged
    over ``axis_name`` in one ``pmean`` when given (as flax's fast variance)."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axes)
    mean2 = jnp.mean(jnp.square(x), axes)
    if axis_name is not None:
        mean, mean2 = jax.lax.pmean(jnp.stack([mean, mean2]), axis_name)
    return mean, mean2 - jnp.square(mean)


def _batch_norm_fwd(x, scale, bias, epsilon, axis_name):
    mean, raw_var = _batch_moments(x, axis_name)
    var = jnp.maximum(0.0, raw_var)
    inv = jax.lax.rsqrt(var + epsilon)
    y = (x - mean) * (inv * scale) + bias
    return (y, mean, var), (x, mean, inv, scale, raw_var)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _batch_norm_train(x, scale, bias, epsilon, axis_name):
    """``(y, batch mean, batch var)`` of training-mode BatchNorm over all but the last axis."""
    return _batch_norm_fwd(x, scale, bias, epsilon, axis_name)[0]


def _batch_norm_bwd(epsilon, axis_name, residuals, cotangents):
    # The derivative of the forward pass above (mean and var included, as autodiff of flax's
    # BatchNorm computes it), written out so that only x is kept: x - mean is recomputed in
    # the fused elementwise pass. Under axis_name the per-channel sums are averaged like the
    # transposes of the forward pmean (shard_map without varying-axes checks).
    del epsilon
    x, mean, inv, scale, raw_var = residuals
    g, g_mean, g_var = cotangents
    axes = tuple(range(x.ndim - 1))
    n = 1
    for axis in axes:
        n *= x.shape[axis]
    centred = x - mean
    sum_g = jnp.sum(g, axes)
    sum_gc = jnp.sum(g * centred, axes)
    sums = jnp.stack([sum_g, sum_gc, g_mean, g_var])
    if axis_name is not None:
        sums = jax.lax.pmean(sums, axis_name)
    p_g, p_gc, p_mean, p_var = sums
    # d max(0, v)/dv as jax defines it: 1 above 0, 1/2 at 0, 0 below.
    clip = jnp.where(raw_var > 0, 1.0, jnp.where(raw_var == 0, 0.5, 0.0))
    g_raw_var = clip * (p_var - 0.5 * inv * inv * inv * scale * p_gc)
    g_x = (g - p_g / n) * (inv * scale) + p_mean / n + (2.0 / n) * g_raw_var * centred
    return g_x, sum_gc * inv, sum_g


_batch_norm_train.defvjp(_batch_norm_fwd, _batch_norm_bwd)


class BatchNorm(nn.Module):
    """``flax.linen.BatchNorm`` over the last axis (same variables, statistics, running
    averages and ``axis_name`` synchronization) with a cheaper backward pass.

    Attributes:
      use_running_average: eval mode (normalize with the running statistics).
      momentum: running-average decay (0.9 is PyTorch's momentum=0.1).
      epsilon: added to the variance.
      axis_name: mesh axis over which batch statistics are averaged (None: local).
    """

    use_running_average: bool
    momentum: float = 0.9
    epsilon: float = 1e-5
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        features = (x.shape[-1],)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, features, jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, features, jnp.float32)
        scale = self.param("scale", nn.initializers.ones, features, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, features, jnp.float32)
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if self.use_running_average:
            return (x - ra_mean.value) * (jax.lax.rsqrt(ra_var.value + self.epsilon) * scale) + bias
        initializing = self.is_initializing()
        axis_name = None if initializing else self.axis_name
        y, mean, var = _batch_norm_train(x, scale, bias, self.epsilon, axis_name)
        if not initializing:
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return y


class _ConvBN(nn.Module):
    """Conv1d (no bias, PyTorch padding) followed by BatchNorm."""

    features: int
    kernel: int
    stride: int = 1
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = Conv1d(self.features, self.kernel, self.stride, name="conv")(x)
        # momentum 0.9 / eps 1e-5 are PyTorch's BatchNorm1d defaults (its momentum=0.1).
        return BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            axis_name=self.bn_axis_name,
        )(x)


class _ResidualBlock(nn.Module):
    """conv3/2-BN-ReLU-conv3-BN plus a strided 1x1 conv-BN shortcut, then ReLU."""

    features: int
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        h = _ConvBN(self.features, 3, 2, self.bn_axis_name, name="conv1")(x, train)
        h = nn.relu(h)
        h = _ConvBN(self.features, 3, 1, self.bn_axis_name, name="conv2")(h, train)
        shortcut = _ConvBN(self.features, 1, 2, self.bn_axis_name, name="shortcut")(x, train)
        return nn.relu(h + shortcut)


class ResNet1d(nn.Module):
    """The paper's 1d-CNN classifier.

    Attributes:
      n_classes: number of output logits.
      bn_axis_name: mesh axis over which BatchNorm statistics are averaged in data-parallel
        training (None: local batch statistics).

    Call: ``(x (B, T, 3), train) -> (logits (B, n_classes), latent (B, 128))``; with
    ``train=True`` apply with ``mutable=["batch_stats"]``.
    """

    n_classes: int
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
        h = nn.relu(_ConvBN(64, 3, 1, self.bn_axis_name, name="stem")(x, train))
        h = _ResidualBlock(64, self.bn_axis_name, name="block1")(h, train)
        h = _ResidualBlock(LATENT_DIM, self.bn_axis_name, name="block2")(h, train)
        latent = jnp.mean(h, axis=1)
        logits = nn.Dense(
            self.n_classes,
            kernel_init=_torch_kernel_init,
            bias_init=_torch_bias_init(LATENT_DIM),
            name="head",
        )(latent)
        return logits, latent


def init_variables(key: jax.Array, n_classes: int, t_len: int = 20) -> dict:
    """Fresh ``{"params", "batch_stats"}`` for a ``(B, t_len, 3)`` input.

    Same distribution as the modules' initializers (weights and the head's bias
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BatchNorm scale 1 / bias 0, running mean 0 / var 1),
    but drawn with a single ``uniform`` call: XLA:CPU compiles every random draw separately
    (~0.3 s each), which made ``model.init`` take seconds to compile.
    """
    model = ResNet1d(n_classes)
    x = jnp.zeros((1, t_len, 3), jnp.float32)
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes["params"])
    bounds = [_uniform_bound(path, leaf.shape) for path, leaf in paths_leaves]
    sizes = [leaf.size for _, leaf in paths_leaves]
    unit = jax.random.uniform(key, (sum(sizes),), jnp.float32, -1.0, 1.0)
    leaves, offset = [], 0
    for (path, leaf), bound, size in zip(paths_leaves, bounds, sizes, strict=True):
        if bound is None:  # BatchNorm: scale 1, bias 0
            value = 1.0 if _name(path) == "scale" else 0.0
            leaves.append(jnp.full(leaf.shape, value, leaf.dtype))
        else:
            leaves.append((unit[offset : offset + size] * bound).reshape(leaf.shape))
        offset += size
    batch_stats = jax.tree_util.tree_map_with_path(
        lambda path, leaf: jnp.full(leaf.shape, 1.0 if _name(path) == "var" else 0.0, leaf.dtype),
        shapes["batch_stats"],
    )
    return {"params": jax.tree_util.tree_unflatten(treedef, leaves), "batch_stats": batch_stats}


def _name(path) -> str:
    return str(path[-1].key)


def _uniform_bound(path, shape) -> float | None:
    """1/sqrt(fan_in) for conv/dense kernels and the head bias; None for BatchNorm."""
    if _name(path) == "kernel":
        fan_in = 1
        for dim in shape[:-1]:
            fan_in *= dim
        return fan_in**-0.5
    if _name(path) == "bias" and str(path[-2].key) == "head":
        return LATENT_DIM**-0.5
    return None


def count_params(params: Mapping) -> int:
    """Number of trainable scalars in a params tree (BatchNorm running stats excluded)."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))


def n_classes_of(variables: Mapping) -> int:
    """The class count a variables tree was built for (width of the head)."""
    return int(variables["params"]["head"]["kernel"].shape[-1])
