"""A small Transformer encoder for packet series, the alternative to the paper's ResNet-1d.

Each packet ``(size, direction, IAT)`` is embedded to ``d_model`` by a Dense layer, a learned
embedding of its position is added, and a pre-LayerNorm encoder layer (multi-head
self-attention, then a GELU MLP, each with a residual connection) processes the series. The
real packets are mean-pooled, projected to the same 128-d latent as the ResNet's (so the
latent-geometry campaign G3 works unchanged), and a linear head gives the logits. With the
defaults (one layer, ``d_model`` 64, 4 heads) it has 46,036 parameters for 20 classes (the
ResNet: 115,028); a second layer would double its cost per sample on a CPU.

**Padding.** A flow shorter than T packets is stored with all-zero rows after its last
packet; a real packet always has direction +1 or -1 (docs/augmentations.md, "Sample
representation"). The model reads a flow's valid length ``L`` as the position of its last
non-zero direction plus one, as the augmentations do; positions ``t >= L`` are padding. Their
contents are replaced by zeros on entry, they are masked out as attention keys, and they are
left out of the pooled latent, so whatever they hold never changes the outputs. Zero columns
inside the valid prefix (a packet an augmentation masked in place) are read as they are,
as the ResNet reads them.

There is no BatchNorm and no dropout: the variables are ``{"params"}`` alone, and
``train`` changes nothing (it is accepted so that both backbones are called alike).

Example:
    >>> model = Transformer(n_classes=20)
    >>> variables = init_variables(jax.random.key(0), 20)
    >>> logits, latent = model.apply(variables, jnp.zeros((8, 20, 3)), train=False)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jtcaug import DIR
from jtcaug.model import LATENT_DIM


def real_positions(x: jnp.ndarray) -> jnp.ndarray:
    """Which positions of each flow are real packets, not tail padding.

    Args:
      x: ``(B, T, 3)`` flows.

    Returns:
      ``(B, T)`` bool, True for ``t < L`` where ``L`` is one past the last non-zero direction.
    """
    positions = jnp.arange(1, x.shape[-2] + 1, dtype=jnp.int32)
    length = jnp.max(jnp.where(x[..., DIR] != 0, positions, 0), axis=-1, keepdims=True)
    return positions <= length


class _EncoderLayer(nn.Module):
    """Pre-LayerNorm encoder layer: ``h + attention(LN(h))``, then ``h + MLP(LN(h))``."""

    n_heads: int
    mlp_dim: int

    @nn.compact
    def __call__(self, h: jnp.ndarray, attention_mask: jnp.ndarray) -> jnp.ndarray:
        d_model = h.shape[-1]
        a = nn.LayerNorm(name="attention_norm")(h)
        h = h + nn.MultiHeadDotProductAttention(num_heads=self.n_heads, name="attention")(
            a, mask=attention_mask
        )
        m = nn.LayerNorm(name="mlp_norm")(h)
        m = nn.gelu(nn.Dense(self.mlp_dim, name="mlp_in")(m))
        return h + nn.Dense(d_model, name="mlp_out")(m)


class Transformer(nn.Module):
    """Transformer encoder classifier of packet series (module docstring for padding).

    Attributes:
      n_classes: number of output logits.
      d_model: width of the packet embeddings.
      n_heads: attention heads per layer (must divide ``d_model``).
      n_layers: encoder layers (one: each more costs as much again per sample, and two
        trained at 0.3x the ResNet's samples/s on a 2-core CPU).
      mlp_dim: hidden width of each layer's MLP.

    Call: ``(x (B, T, 3), train) -> (logits (B, n_classes), latent (B, 128))``. The learned
    position embedding has ``T`` rows, fixed by the input the variables were initialized with.
    """

    n_classes: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 1
    mlp_dim: int = 128

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        del train  # no BatchNorm, no dropout: training and evaluation compute alike
        real = real_positions(x)
        x = jnp.where(real[..., None], x, 0.0)
        h = nn.Dense(self.d_model, name="embed")(x)
        position = self.param(
            "position", nn.initializers.normal(0.02), (x.shape[-2], self.d_model), jnp.float32
        )
        h = h + position
        # (B, 1, 1, T): every query (and head) may attend only to the real packets.
        attention_mask = real[:, None, None, :]
        for i in range(self.n_layers):
            h = _EncoderLayer(self.n_heads, self.mlp_dim, name=f"layer{i}")(h, attention_mask)
        h = nn.LayerNorm(name="final_norm")(h)
        n_real = jnp.maximum(jnp.sum(real, axis=-1, keepdims=True), 1).astype(h.dtype)
        pooled = jnp.sum(jnp.where(real[..., None], h, 0.0), axis=-2) / n_real
        # A ReLU hidden layer, so the latent is non-negative features like the ResNet's.
        latent = nn.relu(nn.Dense(LATENT_DIM, name="latent")(pooled))
        logits = nn.Dense(self.n_classes, name="head")(latent)
        return logits, latent


def init_variables(key: jax.Array, n_classes: int, t_len: int = 20) -> dict:
    """Fresh ``{"params"}`` of the default ``Transformer`` for ``(B, t_len, 3)`` inputs,
    drawn by the modules' own initializers."""
    x = jnp.zeros((1, t_len, 3), jnp.float32)
    return {"params": Transformer(n_classes).init(key, x, train=False)["params"]}
