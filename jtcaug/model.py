"""The paper's ResNet-1d (Wang et al., PAM 2024, appendix Listing 1.1) in Flax linen.

Stem conv + two residual blocks (64 then 128 channels, each halving the length) + global
average pooling to a 128-d latent + a linear head: 115,028 parameters for 20 classes.
Convolutions pad like PyTorch's ``Conv1d(padding=k // 2)`` so lengths go 20 -> 10 -> 5, and
weights start from PyTorch's default initialization, to stay close to the reference setup.
Normalization is ``flax.linen.BatchNorm`` with PyTorch's ``BatchNorm1d`` defaults.

Example:
    >>> model = ResNet1d(n_classes=20)  # or ResNet1d(20, conv="xla")
    >>> variables = init_variables(jax.random.key(0), 20)
    >>> logits, latent = model.apply(variables, jnp.zeros((8, 20, 3)), train=False)
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

LATENT_DIM = 128
# How convolutions are computed: "matmul" (Conv1d below) or "xla" (flax.linen.Conv); both
# give the same outputs and parameters.
CONVS = ("matmul", "xla")

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
    """Bias-free 1-d convolution, PyTorch semantics (cross-correlation, padding k // 2), as
    one matrix product over gathered patches.

    Kept because XLA:CPU computes a convolution's weight gradient far slower inside the
    epoch's ``lax.scan`` than outside it, and a matrix product has no such cliff.

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
        # One 2-d product over all rows: its weight gradient is then a plain rows^T @ rows
        # product, where batch dims kept would make XLA:CPU transpose the output gradient.
        lead = patches.shape[:-1]
        flat = patches.reshape(-1, self.kernel * c_in)
        out = flat @ w.reshape(self.kernel * c_in, self.features)
        return out.reshape(*lead, self.features)


class _ConvBN(nn.Module):
    """Convolution (no bias, PyTorch padding) followed by BatchNorm."""

    features: int
    kernel: int
    stride: int = 1
    bn_axis_name: str | None = None
    conv: str = "matmul"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        if self.conv == "matmul":
            x = Conv1d(self.features, self.kernel, self.stride, name="conv")(x)
        else:
            pad = self.kernel // 2
            x = nn.Conv(
                self.features,
                (self.kernel,),
                strides=(self.stride,),
                padding=[(pad, pad)],
                use_bias=False,
                kernel_init=_torch_kernel_init,
                name="conv",
            )(x)
        # momentum 0.9 / eps 1e-5 are PyTorch's BatchNorm1d defaults (its momentum=0.1).
        return nn.BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            axis_name=self.bn_axis_name,
        )(x)


class _ResidualBlock(nn.Module):
    """conv3/2-BN-ReLU-conv3-BN plus a strided 1x1 conv-BN shortcut, then ReLU."""

    features: int
    bn_axis_name: str | None = None
    conv: str = "matmul"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        axis, conv = self.bn_axis_name, self.conv
        h = _ConvBN(self.features, 3, 2, axis, conv, name="conv1")(x, train)
        h = nn.relu(h)
        h = _ConvBN(self.features, 3, 1, axis, conv, name="conv2")(h, train)
        shortcut = _ConvBN(self.features, 1, 2, axis, conv, name="shortcut")(x, train)
        return nn.relu(h + shortcut)


class ResNet1d(nn.Module):
    """The paper's 1d-CNN classifier.

    Attributes:
      n_classes: number of output logits.
      bn_axis_name: mesh axis over which BatchNorm statistics are averaged in data-parallel
        training (None: local batch statistics).
      conv: "matmul" (default, patch matrix products) or "xla" (``flax.linen.Conv``): the
        same function and parameters; pick whichever runs faster on the backend.

    Call: ``(x (B, T, 3), train) -> (logits (B, n_classes), latent (B, 128))``; with
    ``train=True`` apply with ``mutable=["batch_stats"]``.
    """

    n_classes: int
    bn_axis_name: str | None = None
    conv: str = "matmul"

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
        if self.conv not in CONVS:
            raise ValueError(f"ResNet1d: conv must be one of {', '.join(CONVS)}, got {self.conv!r}")
        axis, conv = self.bn_axis_name, self.conv
        h = nn.relu(_ConvBN(64, 3, 1, axis, conv, name="stem")(x, train))
        h = _ResidualBlock(64, axis, conv, name="block1")(h, train)
        h = _ResidualBlock(LATENT_DIM, axis, conv, name="block2")(h, train)
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
    but drawn with a single ``uniform`` call: XLA:CPU compiles every random draw separately,
    which makes ``model.init`` slow to compile. The tree is the same for either ``conv``.
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
