"""Dataset names usable everywhere a dataset is asked for, and their command-line flags.

Names: ``synthetic`` (= ``synthetic-mirage19``), ``synthetic-mirage22``, ``mirage19``,
``mirage22`` (looked up in ``--data-dir``, then ``$JTCAUG_DATA``, then the per-user data
root that ``python -m jtcaug.data download`` fills), ``tcbench:PATH`` and ``flows:PATH``
(with the field-mapping flags). File-backed sources go through the on-disk cache.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jtcaug.data.cache import cached_flows, source_signature
from jtcaug.data.download import default_data_root
from jtcaug.data.flows import T_MAX_DEFAULT, DatasetError, Flows
from jtcaug.data.flowtable import (
    DIR_CONVENTIONS,
    FieldMapping,
    read_flow_table,
    resolve_table_paths,
)
from jtcaug.data.mirage import ARCHIVE_NAME, EXTRACTED_DIR, MirageCuration, read_mirage
from jtcaug.data.synthetic import ALIASES, PRESETS, generate
from jtcaug.data.tcbench import find_tcbench_file, read_tcbench

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
    cache_root = Path(cache_dir) if cache_dir is not None else None

    if synthetic:
        return generate(name, scale=scale, seed=seed, t_max=t_max)
    if name in REAL:
        curation = curation or MirageCuration()
        source = locate_mirage(name, data_dir)
        params = {
            "source": source_signature(source),
            "curation": [curation.min_packets, curation.min_class_flows],
            "t_max": t_max,
        }
        return cached_flows(
            name,
            params,
            lambda: read_mirage(
                source, variant=name, curation=curation, t_max=t_max, progress=progress
            ),
            cache_dir=cache_root,
            enabled=cache,
        )
    if sep and kind == "tcbench" and spec:
        file = find_tcbench_file(Path(spec).expanduser())
        params = {"source": source_signature(file), "t_max": t_max}
        return cached_flows(
            "tcbench",
            params,
            lambda: read_tcbench(file, t_max=t_max),
            cache_dir=cache_root,
            enabled=cache,
        )
    if sep and kind == "flows" and spec:
        if mapping is None:
            raise DatasetError(
                f"{name}: a flow table needs a field mapping: --label-field and either "
                "--size-field + --dir-field or --signed-size-field, plus --iat-field or "
                "--time-field"
            )
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
    return FieldMapping(**{**mapping.__dict__, "label_names": path})


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


# ---------------------------------------------------------------------------------------------
# Command line.


def add_dataset_arguments(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """Adds the dataset flags every command shares.

    ``--dataset`` (or a positional ``DATASET`` when ``positional``), ``--data-dir``,
    ``--scale``, ``--data-seed``, MIRAGE curation thresholds, the ``flows:`` field mapping and
    ``--no-cache``. Flags that do not apply to the chosen dataset must keep their defaults
    (``load_from_args`` says so otherwise).
    """
    curation = MirageCuration()
    group = parser.add_argument_group("dataset")
    if positional:
        group.add_argument("dataset", metavar="DATASET", help=NAMES_HELP)
    else:
        group.add_argument(
            "--dataset", default=DEFAULT_DATASET, help=f"{NAMES_HELP} (default: %(default)s)"
        )
    group.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where mirage19 / mirage22 live (then $JTCAUG_DATA, then the user cache)",
    )
    group.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="synthetic only: multiply the flow counts (default: %(default)s)",
    )
    group.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="synthetic only: generator seed (default: %(default)s)",
    )
    group.add_argument(
        "--min-packets",
        type=int,
        default=curation.min_packets,
        help="MIRAGE: keep flows with more payload packets than this (default: %(default)s)",
    )
    group.add_argument(
        "--min-class-flows",
        type=int,
        default=curation.min_class_flows,
        help="MIRAGE: keep classes with more flows than this (default: %(default)s)",
    )
    group.add_argument("--no-cache", action="store_true", help="bypass the on-disk flow cache")
    table = parser.add_argument_group("flows:PATH field mapping")
    for flag, dest in _MAPPING_FLAGS.items():
        kwargs = {"default": _MAPPING_DEFAULTS.get(dest), "help": _MAPPING_HELP[dest]}
        if dest == "dir_convention":
            kwargs["choices"] = DIR_CONVENTIONS
        table.add_argument(flag, **kwargs)


_MAPPING_FLAGS = {
    "--label-field": "label_field",
    "--label-names": "label_names",
    "--size-field": "size_field",
    "--dir-field": "dir_field",
    "--dir-convention": "dir_convention",
    "--iat-field": "iat_field",
    "--time-field": "time_field",
    "--signed-size-field": "signed_size_field",
}
_MAPPING_DEFAULTS = {"label_field": "label", "dir_convention": "auto"}
_MAPPING_HELP = {
    "label_field": "field holding the class (default: %(default)s)",
    "label_names": "JSON {name: id} file; a relative path is also tried beside PATH",
    "size_field": "per-packet sizes in bytes (with --dir-field)",
    "dir_field": "per-packet directions (with --size-field)",
    "dir_convention": "signed: +1/-1; zero-one: 0 -> +1, 1 -> -1; auto decides from the "
    "values (default: %(default)s)",
    "iat_field": "per-packet IATs in seconds",
    "time_field": "per-packet timestamps in seconds (IAT = first difference)",
    "signed_size_field": "per-packet signed sizes (sign = direction)",
}


def load_from_args(args: argparse.Namespace, *, progress: bool = False) -> Flows:
    """``load`` with the values of ``add_dataset_arguments`` flags."""
    name = args.dataset
    values = {dest: getattr(args, dest, None) for dest in _MAPPING_FLAGS.values()}
    changed = [
        flag for flag, dest in _MAPPING_FLAGS.items() if values[dest] != _MAPPING_DEFAULTS.get(dest)
    ]
    mapping = None
    if name.startswith("flows:"):
        if changed:
            mapping = FieldMapping(**{k: v for k, v in values.items() if v is not None})
    elif changed:
        raise DatasetError(f"{', '.join(changed)} apply to flows:PATH datasets only, not {name!r}")
    curation = MirageCuration(min_packets=args.min_packets, min_class_flows=args.min_class_flows)
    if name not in REAL:
        if curation != MirageCuration():
            raise DatasetError(
                f"--min-packets / --min-class-flows apply to mirage19 / mirage22 only, not {name!r}"
            )
        curation = None
    return load(
        name,
        data_dir=args.data_dir,
        scale=args.scale,
        seed=args.data_seed,
        mapping=mapping,
        curation=curation,
        cache=not args.no_cache,
        progress=progress,
    )
