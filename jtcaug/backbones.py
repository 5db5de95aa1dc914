"""The backbones a run can train, by name: one place that maps ``TrainConfig.model`` to a
module and its initial variables.

Every backbone is called alike, ``model.apply(variables, x (B, T, 3), train=...) ->
(logits (B, C), latent (B, 128))``, and its variables are ``{"params", "batch_stats"}``; a
backbone without BatchNorm has an empty ``batch_stats`` dict, so train states, loop states
and checkpoints have one structure whatever the model.

  resnet1d: the paper's ResNet-1d (``jtcaug.model``), 115,028 parameters for 20 classes.
  transformer: a small Transformer encoder (``jtcaug.transformer``), 46,036.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax

from jtcaug import model as resnet
from jtcaug import transformer

MODELS = ("resnet1d", "transformer")
DEFAULT_MODEL = "resnet1d"


def check_model(name) -> str:
    """Returns ``name`` if it names a backbone.

    Raises:
      ValueError: one line, e.g. ``unknown model 'x'; choose from resnet1d, transformer``.
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return name


def make_model(name: str, n_classes: int, bn_axis_name: str | None = None) -> nn.Module:
    """The backbone module ``name`` with ``n_classes`` logits.

    ``bn_axis_name``: the mesh axis BatchNorm averages its statistics over in data-parallel
    training (ignored by a backbone without BatchNorm).
    """
    if check_model(name) == "resnet1d":
        return resnet.ResNet1d(n_classes, bn_axis_name=bn_axis_name)
    return transformer.Transformer(n_classes)


def init_variables(name: str, key: jax.Array, n_classes: int, t_len: int = 20) -> dict:
    """Fresh ``{"params", "batch_stats"}`` of backbone ``name`` for ``(B, t_len, 3)`` inputs."""
    if check_model(name) == "resnet1d":
        return resnet.init_variables(key, n_classes, t_len)
    return {**transformer.init_variables(key, n_classes, t_len), "batch_stats": {}}


def model_of(variables: Mapping) -> str:
    """The backbone a variables tree belongs to, read from its parameter names.

    Raises:
      ValueError: the tree is neither backbone's.
    """
    params = variables.get("params", {}) if isinstance(variables, Mapping) else {}
    if "stem" in params and "head" in params:
        return "resnet1d"
    if "embed" in params and "head" in params:
        return "transformer"
    raise ValueError(
        f"variables of no known model (params {sorted(params)}); known: {', '.join(MODELS)}"
    )
