"""A finished campaign that another campaign builds on, read and checked.

G4 (``--top3-from``) and G5 (``--top-from``) take the best augmentations of a finished G1;
G3 (``--gains-from``) sets its latent distance ratios beside G1's gains. All of them need the
same guarantees before anything is planned: the directory holds a campaign of the expected
kind, on the same dataset and backbone, with every run of its grid finished. The results
come from the run files themselves (each checked against its checksum), not from a
``results.parquet`` that a shard or an interrupted process may have left behind.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from experiments import report
from experiments.campaign import campaign_model
from experiments.grid import DEFAULT_PAIRING, CampaignError, ConfigSpec, RunSpec, expand_runs
from experiments.results import result_row
from experiments.store import MANIFEST, CorruptResult, ResultStore, jsonable
from jtcaug.backbones import DEFAULT_MODEL

G1_BASELINE = "none"
_MANIFEST_KEYS = ("campaign", "dataset", "folds", "seed", "grid")


@dataclasses.dataclass(frozen=True)
class FinishedCampaign:
    """A campaign directory whose every run has finished.

    Attributes:
      out_dir: the directory.
      manifest: its configuration (``manifest.json``).
      results: one row per run (the tidy table of ``experiments.results``).
    """

    out_dir: Path
    manifest: dict
    results: pd.DataFrame


def describe_dataset(dataset: dict) -> str:
    """``{"dataset": "synthetic", "scale": 0.03}`` -> ``"synthetic (scale=0.03)"``."""
    name = dataset.get("dataset", "?")
    rest = [f"{k}={v}" for k, v in dataset.items() if k != "dataset"]
    return f"{name} ({', '.join(rest)})" if rest else str(name)


def _runs_of(manifest: dict) -> list[RunSpec]:
    grid = [ConfigSpec(name=c["name"], group=c["group"], train=dict(c["train"]),
                       max_folds=c.get("max_folds"))
            for c in manifest["grid"]]
    return expand_runs(grid, int(manifest["folds"]), int(manifest["seed"]),
                       manifest.get("max_epochs"), manifest.get("batch_size"),
                       manifest.get("pairing", DEFAULT_PAIRING), manifest.get("model"))


def read_finished(out_dir: Path, option: str, campaign: str, dataset: dict,
                  model: str | None = None) -> FinishedCampaign:
    """The finished ``campaign`` in ``out_dir``, run on ``dataset`` with ``model``.

    Args:
      out_dir: the campaign directory given on the command line.
      option: the option that named it (``--gains-from``): every message starts with it.
      campaign: the campaign it must hold (``"g1"``).
      dataset: this campaign's dataset options; the finished one must have the same.
      model: this campaign's ``--model`` (None: the default backbone); the finished one
        must have trained the same.

    Raises:
      CampaignError: one line saying which check failed - the directory is missing or not a
        campaign, holds another campaign, ran on another dataset or backbone (both named)
        or has runs left (how many, per configuration).
    """
    out_dir, kind = Path(out_dir), campaign.upper()
    where = f"{option} {out_dir}"
    if not out_dir.exists():
        raise CampaignError(f"{where}: no such directory (run experiments.{campaign} first)")
    if not out_dir.is_dir():
        raise CampaignError(f"{where}: not a directory")
    store = ResultStore(out_dir)
    try:
        manifest = store.read_manifest()
    except CampaignError:
        raise CampaignError(f"{where}: its {MANIFEST} is damaged; not a readable "
                            "campaign") from None
    if manifest is None:
        raise CampaignError(f"{where}: not a campaign directory ({MANIFEST} missing; run "
                            f"experiments.{campaign} first)")
    absent = [k for k in _MANIFEST_KEYS if k not in manifest]
    if absent:
        raise CampaignError(f"{where}: its {MANIFEST} lacks {', '.join(absent)}; not a "
                            "campaign directory of this version")
    if manifest["campaign"] != campaign:
        raise CampaignError(f"{where}: holds campaign {manifest['campaign']!r}, not "
                            f"{campaign!r}")
    # As this campaign's own manifest will record it (tuples become lists, paths strings).
    if manifest["dataset"] != jsonable(dataset):
        raise CampaignError(f"{where}: {kind} ran on dataset "
                            f"{describe_dataset(manifest['dataset'])}, this campaign on "
                            f"{describe_dataset(dataset)}")
    theirs, ours = manifest.get("model") or DEFAULT_MODEL, campaign_model(model) or DEFAULT_MODEL
    if theirs != ours:
        raise CampaignError(f"{where}: {kind} trained model {theirs}, this campaign {ours} "
                            "(--model)")
    try:
        runs = _runs_of(manifest)
    except (KeyError, TypeError, ValueError, CampaignError) as exc:
        raise CampaignError(f"{where}: its {MANIFEST} has an unreadable grid ({exc})") from None
    rows, missing = [], {}
    for spec in runs:
        try:
            rows.append(result_row(store.load(spec)))
        except (FileNotFoundError, CorruptResult):
            missing[spec.config.name] = missing.get(spec.config.name, 0) + 1
    if missing:
        per_config = ", ".join(f"{name}: {n}" for name, n in missing.items())
        raise CampaignError(f"{where}: the {kind} campaign is unfinished, "
                            f"{sum(missing.values())} of {len(runs)} runs missing "
                            f"({per_config}); rerun its command to finish it")
    return FinishedCampaign(out_dir, manifest, pd.DataFrame(rows))


def read_finished_g1(out_dir: Path, option: str, dataset: dict,
                     model: str | None = None) -> FinishedCampaign:
    return read_finished(out_dir, option, "g1", dataset, model)


def g1_single_gains(g1: FinishedCampaign) -> pd.DataFrame:
    """Per augmentation of a finished G1: its random-alpha inject:1 configuration's weighted
    F1 gain over the baseline, paired fold by fold (as G1's Table 5).

    Returns:
      Columns ``aug, config, n, gain, ci, score, score_ci`` in G1's grid order: gain and
      its 95% half width in percentage points, n the paired folds.
    """
    singles = {
        c["name"]: c["train"]["aug"] for c in g1.manifest["grid"]
        if c.get("group") == "single" and c["train"].get("policy") == "inject:1"
        and c["train"].get("alpha") is None
    }
    gains = report.gain_table(g1.results, G1_BASELINE, list(singles))
    gains.insert(0, "aug", [singles[name] for name in gains["config"]])
    return gains
