"""Training configuration: one frozen, hashable dataclass (a static argument of the jitted core)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Literal

from jtcaug.aug import validate_how
from jtcaug.backbones import DEFAULT_MODEL, check_model

PolicyKind = Literal["none", "replace", "inject", "preaugment"]

_POLICY_RE = re.compile(r"^(none|replace|inject|preaugment)(?::(.+))?$")


@dataclasses.dataclass(frozen=True)
class Policy:
    """A parsed batching policy (docs/augmentations.md, "Batching policies").

    Attributes:
      kind: "none" | "replace" | "inject" | "preaugment".
      value: P (replace probability in (0, 1]), N (inject copies >= 1), M (pre-augmented
        copies >= 1); 0 for "none".
    """

    kind: PolicyKind
    value: float = 0

    def originals_per_step(self, batch_size: int) -> int:
        """How many training samples one step draws; inject fills the rest with copies."""
        if self.kind == "inject":
            return batch_size // (1 + int(self.value))
        return batch_size

    def step_batch_size(self, batch_size: int) -> int:
        """Rows one step trains on (inject: originals + N copies each; may be < batch_size)."""
        if self.kind == "inject":
            return self.originals_per_step(batch_size) * (1 + int(self.value))
        return batch_size

    def training_set_size(self, n_train: int) -> int:
        """Rows of the epoch's sampling pool (pre-augment adds M copies of each sample)."""
        if self.kind == "preaugment":
            return n_train * (1 + int(self.value))
        return n_train

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        value = self.value if self.kind == "replace" else int(self.value)
        return f"{self.kind}:{value}"


def parse_policy(text: str) -> Policy:
    """Parses ``none`` | ``replace:P`` | ``inject:N`` | ``preaugment:M``.

    Raises:
      ValueError: one line naming the problem (unknown policy, missing or invalid value).
    """
    match = _POLICY_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"unknown policy {text!r}: expected none, replace:P, inject:N or preaugment:M"
        )
    kind, raw = match.group(1), match.group(2)
    if kind == "none":
        if raw is not None:
            raise ValueError(f"policy 'none' takes no value, got {text!r}")
        return Policy("none")
    if raw is None:
        raise ValueError(f"policy {kind!r} needs a value, e.g. {kind}:{_EXAMPLE[kind]}")
    if kind == "replace":
        try:
            p = float(raw)
        except ValueError:
            raise ValueError(f"replace:P needs a probability P in (0, 1], got {raw!r}") from None
        if not (math.isfinite(p) and 0.0 < p <= 1.0):
            raise ValueError(f"replace:P needs a probability P in (0, 1], got {raw!r}")
        return Policy("replace", p)
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{kind}:{raw} needs a positive integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{kind}:{raw} needs a positive integer, got {raw!r}")
    return Policy(kind, n)


_EXAMPLE = {"replace": "0.5", "inject": "1", "preaugment": "10"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that determines one training run besides the data and the key.

    Defaults are the paper's setup (section 4, "Model architecture and training").
    """

    # Backbone, one of jtcaug.backbones.MODELS: "resnet1d" (the paper's) or "transformer".
    model: str = DEFAULT_MODEL
    # Augmentation: "none", one of jtcaug.aug.NAMES, or a combination such as
    # "ensemble", "random_stack", "masked_stack:0.5", "ensemble[translation,wrap]".
    aug: str = "none"
    # How augmentations enter the batches: none | replace:P | inject:N | preaugment:M.
    policy: str = "none"
    # Augmentation magnitude: None draws alpha ~ U(0, 1) per sample; a float in [0, 1] fixes it.
    alpha: float | None = None
    # Sample training rows with probability proportional to 1/n_class (with replacement).
    class_weighted: bool = False
    # Rows per step (inject: floor(B / (1 + N)) originals plus N copies of each).
    batch_size: int = 1024
    # Training stops after this many epochs at the latest; also the cosine decay horizon.
    max_epochs: int = 500
    # Early stopping: stop after `patience` epochs without an improvement, where an epoch
    # improves only if its validation accuracy exceeds the reference by more than min_delta.
    patience: int = 20
    min_delta: float = 0.02
    # AdamW with a cosine decay of the learning rate to 0 over max_epochs * steps per epoch.
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    # Seed of the run's key when the caller passes none.
    seed: int = 0
    # Rows per forward pass when evaluating validation/test sets (memory, not results).
    eval_batch_size: int = 4096
    # Host shell: save a checkpoint every this many epochs (and at the end).
    checkpoint_every: int = 10

    @property
    def parsed_policy(self) -> Policy:
        return parse_policy(self.policy)

    def validate(self) -> TrainConfig:
        """Checks every field; returns self. Raises ValueError with a one-line message."""
        check_model(self.model)
        policy = parse_policy(self.policy)
        if not isinstance(self.aug, str) or not self.aug:
            raise ValueError(f"aug must be a non-empty string, got {self.aug!r}")
        if self.aug != "none":
            _validate_aug(self.aug)
        if policy.kind == "none" and self.aug != "none":
            raise ValueError(
                f"aug={self.aug!r} needs a policy that uses it (replace:P, inject:N or "
                "preaugment:M), got policy 'none'"
            )
        if policy.kind != "none" and self.aug == "none":
            raise ValueError(f"policy {self.policy!r} needs an augmentation, got aug='none'")
        if self.alpha is not None and not (
            isinstance(self.alpha, int | float) and 0.0 <= self.alpha <= 1.0
        ):
            raise ValueError(f"alpha must be None or a number in [0, 1], got {self.alpha!r}")
        _check_int("batch_size", self.batch_size, 1)
        _check_int("max_epochs", self.max_epochs, 1)
        _check_int("patience", self.patience, 1)
        _check_int("eval_batch_size", self.eval_batch_size, 1)
        _check_int("checkpoint_every", self.checkpoint_every, 1)
        _check_int("seed", self.seed, 0)
        if policy.kind == "inject" and policy.originals_per_step(self.batch_size) < 1:
            raise ValueError(
                f"inject:{int(policy.value)} leaves no originals in a batch of "
                f"{self.batch_size} (needs batch_size >= {int(policy.value) + 1})"
            )
        for name in ("min_delta", "learning_rate", "weight_decay"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not isinstance(self.class_weighted, bool):
            raise ValueError(f"class_weighted must be a bool, got {self.class_weighted!r}")
        return self

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**data)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _validate_aug(aug: str) -> None:
    """Delegates to jtcaug.aug so the list of names lives in one place."""
    validate_how(aug)
