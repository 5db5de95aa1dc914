"""A campaign's grid: configurations, runs (configuration x fold), their seeds, and units.

A *run* trains one configuration on one fold. A *unit* is up to K runs of one configuration
on consecutive folds, trained together in one compiled program (``jtcaug.train.stacked``).
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Sequence

import numpy as np

DEFAULT_FOLDS = 80
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")

# How the runs of one fold are paired across configurations.
#   split: they share the fold's train/validation/test split only; each configuration draws
#     its own initial weights, epoch order and augmentations (the paper's description:
#     independent modeling runs on shared folds).
#   seeds: they also share the run key, so initial weights and epoch order are the same, and
#     a static-alpha run draws every augmentation its random-alpha twin draws except alpha.
#     Tighter pairing: narrower confidence intervals and a sharper Wilcoxon test.
PAIRINGS = ("split", "seeds")
DEFAULT_PAIRING = "split"


class CampaignError(Exception):
    """Bad input to a campaign; the message is meant for the user as is."""


@dataclasses.dataclass(frozen=True)
class ConfigSpec:
    """One configuration of a campaign grid.

    Attributes:
      name: unique, file-safe id (``[A-Za-z0-9_.+-]``), used in result file names and tables.
      group: the study it belongs to (e.g. ``baseline``, ``single``, ``magnitude``).
      train: keyword arguments of ``jtcaug.train.TrainConfig`` for this configuration (aug,
        policy, alpha, class_weighted); the campaign adds seed, max_epochs, batch_size and model.
      max_folds: run it only on the first ``max_folds`` folds (None: every campaign fold).
      unit_group: configurations sharing a unit group may be trained in one unit, runs of
        several of them together (their campaign's unit function must take such units, as
        G6's does for a population sharing one compiled program); None: a unit holds runs
        of this configuration only.
    """

    name: str
    group: str
    train: dict
    max_folds: int | None = None
    unit_group: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _SAFE_NAME.match(self.name):
            raise CampaignError(f"config name {self.name!r} must match {_SAFE_NAME.pattern}")

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "group": self.group,
            "train": dict(self.train),
            "max_folds": self.max_folds,
        }
        # Left out when unset, so manifests and result files of ungrouped grids stay as
        # they were before unit groups existed.
        if self.unit_group is not None:
            out["unit_group"] = self.unit_group
        return out


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run: a configuration on one fold, with the campaign-wide training settings.

    The run's PRNG key comes from :attr:`key_seed`, not from ``TrainConfig.seed``: the config
    is a static argument of the jitted trainer, so keeping it equal across folds lets every
    fold of a configuration reuse one compilation.
    """

    config: ConfigSpec
    fold: int
    seed: int
    max_epochs: int | None
    batch_size: int | None = None
    pairing: str = DEFAULT_PAIRING
    # The backbone (jtcaug.backbones.MODELS); None trains the trainer's default, the ResNet-1d.
    model: str | None = None

    @property
    def run_id(self) -> str:
        return f"{self.config.name}__fold{self.fold:03d}"

    @property
    def key_seed(self) -> int:
        return run_seed(self.seed, self.fold, self.config.name, self.pairing)

    def train_kwargs(self) -> dict:
        """``TrainConfig`` keyword arguments of this run."""
        kwargs = dict(self.config.train, seed=self.seed)
        if self.max_epochs is not None:
            kwargs["max_epochs"] = self.max_epochs
        if self.batch_size is not None:
            kwargs["batch_size"] = self.batch_size
        if self.model is not None:
            kwargs["model"] = self.model
        return kwargs


def run_seed(campaign_seed: int, fold: int, config_name: str = "", pairing: str = "seeds") -> int:
    """Seed of a run's key (see :data:`PAIRINGS`).

    ``seeds``: one per (campaign seed, fold), shared by every configuration. ``split``: one
    per (campaign seed, fold, configuration).
    """
    if pairing not in PAIRINGS:
        raise CampaignError(f"unknown pairing {pairing!r}; known: {', '.join(PAIRINGS)}")
    entropy = [campaign_seed, fold]
    if pairing == "split":
        entropy.append(zlib.crc32(config_name.encode("utf-8")))
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def expand_runs(
    grid: Sequence[ConfigSpec],
    n_folds: int,
    seed: int,
    max_epochs: int | None,
    batch_size: int | None = None,
    pairing: str = DEFAULT_PAIRING,
    model: str | None = None,
) -> list[RunSpec]:
    """All runs of a grid, fold-major: a killed campaign leaves whole folds behind."""
    names = [c.name for c in grid]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CampaignError(f"config names must be unique, repeated: {', '.join(duplicates)}")
    if pairing not in PAIRINGS:
        raise CampaignError(f"unknown pairing {pairing!r}; known: {', '.join(PAIRINGS)}")
    return [
        RunSpec(config=c, fold=fold, seed=seed, max_epochs=max_epochs, batch_size=batch_size,
                pairing=pairing, model=model)
        for fold in range(n_folds)
        for c in grid
        if c.max_folds is None or fold < c.max_folds
    ]


@dataclasses.dataclass(frozen=True)
class Unit:
    """Runs trained together: of one configuration in fold order, or of one unit group
    (``ConfigSpec.unit_group``) fold by fold."""

    runs: tuple[RunSpec, ...]

    @property
    def config(self) -> ConfigSpec:
        return self.runs[0].config

    @property
    def unit_id(self) -> str:
        if len({r.config.name for r in self.runs}) > 1:
            return f"{self.runs[0].run_id}+{len(self.runs) - 1}"
        folds = [r.fold for r in self.runs]
        span = f"{folds[0]:03d}" if len(folds) == 1 else f"{folds[0]:03d}-{folds[-1]:03d}"
        return f"{self.config.name}__folds{span}"


def make_units(runs: Sequence[RunSpec], runs_per_unit: int) -> list[Unit]:
    """Groups runs into units of at most ``runs_per_unit`` runs of one configuration, or of
    one unit group (runs in fold order, then grid order).

    Units come in the order of each configuration's first run, so a fold-major grid starts
    with one unit per configuration over the first folds.
    """
    if runs_per_unit < 1:
        raise CampaignError(f"runs per unit must be >= 1, got {runs_per_unit}")
    by_config: dict[str, list[RunSpec]] = {}
    for spec in runs:
        group = spec.config.unit_group
        by_config.setdefault(spec.config.name if group is None else f"\0{group}",
                             []).append(spec)
    position = {spec.run_id: i for i, spec in enumerate(runs)}
    chunks = []
    for specs in by_config.values():
        specs = sorted(specs, key=lambda s: (s.fold, position[s.run_id]))
        chunks += [specs[i : i + runs_per_unit] for i in range(0, len(specs), runs_per_unit)]
    chunks.sort(key=lambda chunk: (chunk[0].fold, position[chunk[0].run_id]))
    return [Unit(tuple(chunk)) for chunk in chunks]
