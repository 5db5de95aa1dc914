"""Dataset names usable everywhere a dataset is asked for, and their command-line flags.

Names: ``synthetic`` (= ``synthetic-mirage19``), ``synthetic-mirage22``, ``mirage19``,
``mirage22`` (looked up in ``--data-dir``, then ``$JTCAUG_DATA``, then the per-user data
root that ``python -m jtcaug.data download`` fills), ``tcbench:PATH`` and ``flows:PATH``
(with the field-mapping flags). File-backed sources go through the on-disk cache.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from jtcaug.data.cache import cached_flows, source_signature
from jtcaug.data.download import default_data_root, verify_archive
from jtcaug.data.flows import T_MAX_DEFAULT, DatasetError, Flows
from jtcaug.data.flowtable import (
    FieldMapping,
    detect_mapping,
    read_flow_table,
    resolve_table_paths,
)
from jtcaug.data.mirage import (
    ARCHIVE_NAME,
    CAPTURE_FILE,
    EXTRACTED_DIR,
    MirageCuration,
    read_mirage,
)
from jtcaug.data.synthetic import ALIASES, PRESETS, generate
from jtcaug.data.tcbench import find_tcbench_file, read_tcbench, read_tcbench_splits

DEFAULT_DATASET = "synthetic"
REAL = ("mirage19", "mirage22")
NAMES_HELP = (
    "synthetic (= synthetic-mirage19), synthetic-mirage22, mirage19, mirage22, "
    "tcbench:PATH (a *_filtered_minpkts10.parquet or a root holding one), flows:PATH (a "
    ".json/.jsonl/.csv/.parquet table, a directory of them or a glob)"
)


def dataset_names() -> list[str]:
    """The fixed names (``tcbench:`` and ``flows:`` take a path)."""
    return sorted([*ALIASES, *PRESETS, *REAL])


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    scale: float = 1.0,
    seed: int = 0,
    mapping: FieldMapping | None = None,
    curation: MirageCuration | None = None,
    t_max: int = T_MAX_DEFAULT,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    group_field: str | None = None,
    splits: str | None = None,
) -> Flows:
    """Loads a dataset by name (module docstring).

    Args:
      name: dataset name.
      data_dir: first place to look for ``mirage19`` / ``mirage22``.
      scale, seed: synthetic datasets only (flow-count multiplier, generator seed).
      mapping: field mapping, ``flows:`` only.
      curation: MIRAGE thresholds, ``mirage19`` / ``mirage22`` only.
      t_max: packets stored per flow (>= 20).
      cache: use the on-disk cache for file-backed sources.
      cache_dir: cache location (default ``$JTCAUG_CACHE`` or ``~/.cache/jtcaug``).
      progress: tqdm bars while reading raw files.
      group_field: keep every group of this field in one part of each fold: a field of a
        ``flows:`` table, or ``capture_file`` for ``mirage19`` / ``mirage22``.
      splits: ``"tcbench"``: fold ``i`` is split ``i`` of the ``*_splits.parquet`` beside a
        ``tcbench:`` file.

    Raises:
      DatasetError: unknown name, missing data, malformed input or options that do not
        apply to this kind of dataset.
    """
    if not isinstance(name, str) or not name:
        raise DatasetError(f"dataset name must be a non-empty string, got {name!r}")
    if t_max < 20:
        raise DatasetError(f"t_max must be >= 20, got {t_max}")
    synthetic = name in PRESETS or name in ALIASES
    kind, sep, spec = name.partition(":")
    if not (synthetic or name in REAL or (sep and kind in ("tcbench", "flows") and spec)):
        # Checked first: option mismatches below would otherwise hide a mistyped name.
        raise DatasetError(f"unknown dataset {name!r}; expected one of: {NAMES_HELP}")
    if not synthetic and (scale != 1.0 or seed != 0):
        raise DatasetError(
            f"--scale and --data-seed apply to synthetic datasets only, not {name!r}"
        )
    if mapping is not None and not name.startswith("flows:"):
        raise DatasetError(f"field-mapping flags apply to flows:PATH datasets only, not {name!r}")
    if curation is not None and name not in REAL:
        raise DatasetError(
            f"--min-packets / --min-class-flows apply to mirage19 / mirage22 only, not {name!r}"
        )
    if splits is not None and not (splits == "tcbench" and kind == "tcbench" and sep):
        raise DatasetError(
            f"--splits {splits}: only --splits tcbench with a tcbench:PATH dataset is known"
        )
    if group_field is not None and (synthetic or kind == "tcbench"):
        raise DatasetError(
            f"--group-field applies to flows:PATH tables and mirage19 / mirage22, not {name!r}"
        )
    if group_field is not None and name in REAL and group_field != CAPTURE_FILE:
        raise DatasetError(
            f"--group-field {group_field}: {name} records only {CAPTURE_FILE!r} per flow"
        )
    cache_root = Path(cache_dir) if cache_dir is not None else None

    if synthetic:
        return generate(name, scale=scale, seed=seed, t_max=t_max)
    if name in REAL:
        curation = curation or MirageCuration()
        source = locate_mirage(name, data_dir)
        signature = source_signature(source)
        if source.is_file():
            verify_archive(source, signature["sha256"])
        params = {
            "source": signature,
            "curation": [curation.min_packets, curation.min_class_flows],
            "t_max": t_max,
        }
        flows = cached_flows(
            name,
            params,
            lambda: read_mirage(
                source,
                variant=name,
                curation=curation,
                t_max=t_max,
                progress=progress,
                record_groups=True,
            ),
            cache_dir=cache_root,
            enabled=cache,
        )
        # The cache keeps the capture files; folds are grouped only when asked.
        return flows if group_field else flows.with_groups(None)
    if sep and kind == "tcbench" and spec:
        file = find_tcbench_file(Path(spec).expanduser())
        params = {"source": source_signature(file), "t_max": t_max}
        flows = cached_flows(
            "tcbench",
            params,
            lambda: read_tcbench(file, t_max=t_max),
            cache_dir=cache_root,
            enabled=cache,
        )
        return flows.with_splits(read_tcbench_splits(file)) if splits else flows
    if sep and kind == "flows" and spec:
        if mapping is None:
            mapping = detect_mapping(spec)
        if group_field is not None:
            if mapping.group_field not in (None, group_field):
                raise DatasetError(
                    f"--group-field {group_field} and the mapping's {mapping.group_field} differ"
                )
            mapping = dataclasses.replace(mapping, group_field=group_field)
        mapping = _resolve_label_names(mapping, spec)
        label_file = mapping.label_names if isinstance(mapping.label_names, Path) else None
        files = resolve_table_paths(spec, [label_file] if label_file else [])
        params = {
            "files": [source_signature(f) for f in files],
            "label_names": source_signature(label_file) if label_file else None,
            "mapping": mapping.describe(),
            "t_max": t_max,
            "spec": spec,
        }
        return cached_flows(
            "flows",
            params,
            lambda: read_flow_table(spec, mapping, t_max=t_max),
            cache_dir=cache_root,
            enabled=cache,
        )
    raise DatasetError(f"unknown dataset {name!r}; expected one of: {NAMES_HELP}")


def _resolve_label_names(mapping: FieldMapping, spec: str) -> FieldMapping:
    """A relative ``--label-names`` is tried as given, then beside the table(s)."""
    names = mapping.label_names
    if names is None or isinstance(names, dict):
        return mapping
    path = Path(names).expanduser()
    if not path.exists() and not path.is_absolute():
        base = Path(spec) if Path(spec).is_dir() else Path(spec).parent
        if (base / path).exists():
            path = base / path
    if not path.is_file():
        raise DatasetError(f"--label-names {names}: no such file (also looked beside {spec})")
    return dataclasses.replace(mapping, label_names=path)


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    """Where real datasets are looked for, in order."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("JTCAUG_DATA"):
        roots.append(Path(os.environ["JTCAUG_DATA"]).expanduser())
    roots.append(default_data_root())
    return roots


def locate_mirage(name: str, data_dir: str | Path | None = None) -> Path:
    """The extracted tree (preferred) or the archive of ``mirage19`` / ``mirage22``."""
    extracted, archive = EXTRACTED_DIR[name], ARCHIVE_NAME[name]
    looked = []
    for root in search_roots(data_dir):
        if root.name == extracted and root.is_dir():
            return root
        candidates = [
            root / name / extracted,
            root / extracted,
            root / name / archive,
            root / archive,
        ]
        for candidate in candidates:
            looked.append(str(candidate))
            if candidate.exists():
                return candidate
    raise DatasetError(
        f"dataset {name} not found; looked for {', '.join(looked)}. Download it with "
        f"`python -m jtcaug.data download {name}` (or pass --data-dir / set $JTCAUG_DATA), "
        "or run with --dataset synthetic, which needs no data."
    )
