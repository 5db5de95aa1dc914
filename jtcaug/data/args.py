"""The dataset flags every command shares, and the same flags for a second, test dataset.

    add_dataset_arguments(parser)        # --dataset, --data-dir, ..., --layout, --group-field
    flows = load_from_args(args)
    add_test_dataset_arguments(parser)   # --test-dataset, --test-data-dir, --test-layout, ...
    test_flows = load_test_from_args(args)   # None without --test-dataset

Flags that do not apply to the chosen dataset must keep their defaults (``load_from_args``
says which otherwise).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jtcaug.data.flows import DatasetError, Flows
from jtcaug.data.layouts import DIR_CONVENTIONS, IAT_UNITS, LAYOUTS, FieldMapping, layout_mapping
from jtcaug.data.mirage import MirageCuration
from jtcaug.data.registry import DEFAULT_DATASET, NAMES_HELP, REAL, load

# flag -> (FieldMapping attribute, argparse keywords). A default of None means "not given".
_MAPPING_FLAGS = {
    "--label-field": ("label_field", {"help": "field holding the class (default: label)"}),
    "--label-names": (
        "label_names",
        {"help": "JSON {name: id} file; a relative path is also tried beside PATH"},
    ),
    "--size-field": ("size_field", {"help": "per-packet sizes in bytes (with --dir-field)"}),
    "--dir-field": ("dir_field", {"help": "per-packet directions (with --size-field)"}),
    "--dir-convention": (
        "dir_convention",
        {
            "choices": DIR_CONVENTIONS,
            "help": "signed: +1/-1; zero-one: 0 -> +1, 1 -> -1; auto decides from the values "
            "(default: auto)",
        },
    ),
    "--iat-field": ("iat_field", {"help": "per-packet IATs (in --iat-unit)"}),
    "--time-field": (
        "time_field",
        {"help": "per-packet timestamps (in --iat-unit; IAT = first difference)"},
    ),
    "--signed-size-field": (
        "signed_size_field",
        {"help": "per-packet signed sizes (sign = direction)"},
    ),
    "--iat-unit": (
        "iat_unit",
        {"choices": tuple(IAT_UNITS), "help": "unit of --iat-field / --time-field (default: s)"},
    ),
    "--ppi-field": (
        "ppi_field",
        {"help": "one field holding [IATs, directions +1/-1, sizes] per flow (CESNET PPI)"},
    ),
    "--pad-value": (
        "pad_value",
        {
            "type": float,
            "help": "value padding the sequences (e.g. 0 or -1): positions whose direction or "
            "signed size equals it are dropped",
        },
    ),
}


def _add(parser: argparse.ArgumentParser, prefix: str, positional: bool) -> None:
    """The dataset flags, each named ``--{prefix}NAME`` (dest ``{prefix_}name``)."""
    curation = MirageCuration()
    dest = prefix.replace("-", "_")
    what = "test dataset" if prefix else "dataset"
    group = parser.add_argument_group(what)
    if positional:
        group.add_argument("dataset", metavar="DATASET", help=NAMES_HELP)
    elif prefix:
        group.add_argument(
            f"--{prefix}dataset",
            default=None,
            help=f"test on this dataset instead of the first one's test split: {NAMES_HELP}; "
            "classes are matched by name",
        )
    else:
        group.add_argument(
            "--dataset", default=DEFAULT_DATASET, help=f"{NAMES_HELP} (default: %(default)s)"
        )
    group.add_argument(
        f"--{prefix}data-dir",
        type=Path,
        default=None,
        help="where mirage19 / mirage22 live (then $JTCAUG_DATA, then the user cache)",
    )
    if not prefix:
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
        f"--{prefix}min-packets",
        type=int,
        default=curation.min_packets,
        help="MIRAGE: keep flows with more payload packets than this (default: %(default)s)",
    )
    group.add_argument(
        f"--{prefix}min-class-flows",
        type=int,
        default=curation.min_class_flows,
        help="MIRAGE: keep classes with more flows than this (default: %(default)s)",
    )
    if not prefix:
        group.add_argument(
            "--group-field",
            default=None,
            help="keep every flow of a group (this field of a flows: table; capture_file for "
            "MIRAGE) in one part of each fold",
        )
        group.add_argument(
            "--splits",
            choices=("tcbench",),
            default=None,
            help="tcbench: fold i is split i of the *_splits.parquet beside a tcbench: file",
        )
    group.add_argument(
        f"--{prefix}no-cache", action="store_true", help="bypass the on-disk flow cache"
    )
    table = parser.add_argument_group(f"flows:PATH field mapping ({what})")
    table.add_argument(
        f"--{prefix}layout",
        choices=sorted(LAYOUTS),
        default=None,
        help="a known export's fields, units and padding (docs/data.md); other flags "
        "override its fields",
    )
    for flag, (attr, kwargs) in _MAPPING_FLAGS.items():
        table.add_argument(f"--{prefix}{flag[2:]}", dest=f"{dest}{attr}", default=None, **kwargs)


def add_dataset_arguments(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """Adds ``--dataset`` (or a positional ``DATASET``), ``--data-dir``, ``--scale``,
    ``--data-seed``, the MIRAGE curation thresholds, ``--group-field``, ``--splits``,
    ``--no-cache``, ``--layout`` and the ``flows:`` field-mapping flags."""
    _add(parser, "", positional)


def add_test_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--test-dataset SPEC`` with its own ``--test-data-dir``, ``--test-min-packets``,
    ``--test-min-class-flows``, ``--test-no-cache``, ``--test-layout`` and
    ``--test-<field flag>`` for every ``flows:`` field-mapping flag."""
    _add(parser, "test-", positional=False)


def _mapping(args: argparse.Namespace, dest: str, name: str) -> FieldMapping | None:
    values = {attr: getattr(args, f"{dest}{attr}", None) for attr, _ in _MAPPING_FLAGS.values()}
    layout = getattr(args, f"{dest}layout", None)
    given = [
        f"--{dest.replace('_', '-')}{flag[2:]}"
        for flag, (attr, _) in _MAPPING_FLAGS.items()
        if values[attr] is not None
    ]
    if layout is not None:
        given.insert(0, f"--{dest.replace('_', '-')}layout")
    if not name.startswith("flows:"):
        if given:
            raise DatasetError(
                f"{', '.join(given)} apply to flows:PATH datasets only, not {name!r}"
            )
        return None
    if layout is not None:
        return layout_mapping(layout, **values)
    if not given:
        return None  # the reader detects the layout from the table's fields
    return FieldMapping(**{k: v for k, v in values.items() if v is not None})


def _load(args: argparse.Namespace, dest: str, name: str, progress: bool) -> Flows:
    mapping = _mapping(args, dest, name)
    curation = MirageCuration(
        min_packets=getattr(args, f"{dest}min_packets"),
        min_class_flows=getattr(args, f"{dest}min_class_flows"),
    )
    if name not in REAL:
        if curation != MirageCuration():
            flag = f"--{dest.replace('_', '-')}"
            raise DatasetError(
                f"{flag}min-packets / {flag}min-class-flows apply to mirage19 / mirage22 only, "
                f"not {name!r}"
            )
        curation = None
    return load(
        name,
        data_dir=getattr(args, f"{dest}data_dir"),
        scale=getattr(args, "scale", 1.0) if not dest else 1.0,
        seed=getattr(args, "data_seed", 0) if not dest else 0,
        mapping=mapping,
        curation=curation,
        cache=not getattr(args, f"{dest}no_cache"),
        progress=progress,
        group_field=getattr(args, "group_field", None) if not dest else None,
        splits=getattr(args, "splits", None) if not dest else None,
    )


def load_from_args(args: argparse.Namespace, *, progress: bool = False) -> Flows:
    """``load`` with the values of ``add_dataset_arguments`` flags."""
    return _load(args, "", args.dataset, progress)


def load_test_from_args(args: argparse.Namespace, *, progress: bool = False) -> Flows | None:
    """The ``--test-dataset`` of ``add_test_dataset_arguments`` flags, or None without it.

    Pair it with the training flows through ``make_transfer_fold(train, test, fold)``.
    """
    name = getattr(args, "test_dataset", None)
    if name is None:
        given = [
            f"--test-{flag[2:]}"
            for flag, (attr, _) in _MAPPING_FLAGS.items()
            if getattr(args, f"test_{attr}", None) is not None
        ]
        if given or getattr(args, "test_layout", None) or getattr(args, "test_data_dir", None):
            raise DatasetError(f"{', '.join(given) or 'test flags'} need --test-dataset")
        return None
    return _load(args, "test_", name, progress)
