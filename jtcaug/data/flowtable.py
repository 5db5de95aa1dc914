"""Generic flow tables: one flow per record, a field mapping says which
field is what.

Formats, chosen by extension: ``.json`` (a list of records), ``.jsonl`` / ``.ndjson`` (one
record per line), ``.csv`` (list columns as JSON strings such as ``"[0.0, 0.1]"``) and
``.parquet`` (native list columns). ``flows:PATH`` names one file, a directory (every file
with one of those extensions directly inside it, sorted by name, except the
``--label-names`` file) or a glob pattern (``data/*.jsonl``); the flows of all files are
concatenated in that order.

Field mapping: the label, plus either ``size`` + ``direction`` fields or one ``signed size``
field (sign = direction), plus either per-packet ``iat`` (seconds since the previous packet)
or ``time`` (timestamps in seconds; IAT = first difference). Direction values:

- signed sizes: positive -> +1, negative -> -1 (0 is an error: it has no direction);
- ``--dir-convention signed``: the field holds +1 / -1 as they are;
- ``--dir-convention zero-one``: 0 -> +1 and 1 -> -1 (MIRAGE / tcbench: 0 = client to server);
- ``auto`` (default): ``signed`` if a -1 occurs, ``zero-one`` if a 0 occurs; a field that
  only ever holds 1 is ambiguous and must be told.

+1 is the direction of the flow's initiator (client to server). The first packet's IAT is
0 by definition, whatever the table says. Tables get no curation: every flow is kept.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from jtcaug.data.flows import (
    T_MAX_DEFAULT,
    DatasetError,
    Flows,
    first_bad_segment,
    flows_from_flat,
    parse_json,
)

TABLE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet", ".pq")
DIR_CONVENTIONS = ("auto", "signed", "zero-one")


@dataclass(frozen=True)
class FieldMapping:
    """Which record field holds what (command line: ``--label-field`` etc.).

    Attributes:
      label_field: the class of the flow (string name or integer id).
      label_names: path of a JSON object ``{name: id}``, or that object; None: classes are
        the distinct label values, sorted.
      size_field, dir_field: per-packet sizes (bytes, >= 0) and directions.
      dir_convention: how ``dir_field`` values map to +1/-1 (module docstring).
      signed_size_field: per-packet signed sizes, instead of size + direction.
      iat_field: per-packet IATs (s); or time_field: per-packet timestamps (s).
    """

    label_field: str = "label"
    label_names: str | Path | dict | None = None
    size_field: str | None = None
    dir_field: str | None = None
    dir_convention: str = "auto"
    iat_field: str | None = None
    time_field: str | None = None
    signed_size_field: str | None = None

    def __post_init__(self) -> None:
        split = self.size_field is not None or self.dir_field is not None
        if self.signed_size_field is not None and split:
            raise DatasetError(
                "give either --signed-size-field or --size-field with --dir-field, not both"
            )
        if self.signed_size_field is None and (self.size_field is None or self.dir_field is None):
            raise DatasetError(
                "a flow table needs --signed-size-field, or both --size-field and --dir-field"
            )
        if (self.iat_field is None) == (self.time_field is None):
            raise DatasetError("a flow table needs exactly one of --iat-field or --time-field")
        if self.dir_convention not in DIR_CONVENTIONS:
            raise DatasetError(
                f"--dir-convention must be one of {DIR_CONVENTIONS}, got {self.dir_convention!r}"
            )

    @property
    def packet_fields(self) -> tuple[str, ...]:
        """Per-packet list fields, in a fixed order: sizes, directions (if any), times."""
        sizes = (
            (self.signed_size_field,)
            if self.signed_size_field
            else (self.size_field, self.dir_field)
        )
        return (*sizes, self.iat_field or self.time_field)

    def describe(self) -> dict:
        """JSON-ready form (for provenance and cache keys)."""
        out = asdict(self)
        if isinstance(self.label_names, Path):
            out["label_names"] = str(self.label_names)
        return out


def resolve_table_paths(spec: str | Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """The table files that ``flows:PATH`` names (a file, a directory or a glob)."""
    spec_str = str(spec)
    excluded = {Path(p).resolve() for p in exclude}
    if any(ch in spec_str for ch in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(spec_str)) if Path(p).is_file()]
        where = f"pattern {spec_str!r}"
    elif Path(spec_str).is_dir():
        paths = sorted(p for p in Path(spec_str).iterdir() if p.is_file())
        where = f"directory {spec_str}"
    elif Path(spec_str).is_file():
        return [Path(spec_str)]
    else:
        raise DatasetError(f"flows:{spec_str}: no such file or directory")
    paths = [p for p in paths if p.suffix.lower() in TABLE_SUFFIXES and p.resolve() not in excluded]
    if not paths:
        raise DatasetError(
            f"flows:{spec_str}: {where} holds no flow table ({', '.join(TABLE_SUFFIXES)})"
        )
    return paths


# ---------------------------------------------------------------------------------------------
# Reading one file into columns.


@dataclass
class _Columns:
    """One file's content: labels and, per packet field, flat values with offsets."""

    path: Path
    labels: list
    values: dict[str, np.ndarray]
    offsets: np.ndarray
    locate: Callable[[int], str]  # record index -> "record 3" / "line 4" / "row 2"


def _read_columns(path: Path, mapping: FieldMapping) -> _Columns:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, mapping)
    if suffix == ".csv":
        return _read_csv(path, mapping)
    if suffix in (".jsonl", ".ndjson"):
        records = []
        with path.open("rb") as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    records.append((line_no, parse_json(line, f"{path}: line {line_no}")))
        lines = [n for n, _ in records]
        return _from_records(path, [r for _, r in records], mapping, lambda i: f"line {lines[i]}")
    if suffix == ".json":
        doc = parse_json(path.read_bytes(), str(path))
        if not isinstance(doc, list):
            raise DatasetError(
                f"{path}: expected a JSON list of flow records, got {type(doc).__name__}"
            )
        return _from_records(path, doc, mapping, lambda i: f"record {i}")
    raise DatasetError(f"{path}: unsupported table type {suffix!r}; use {TABLE_SUFFIXES}")


def _from_records(
    path: Path, records: list, mapping: FieldMapping, locate: Callable[[int], str]
) -> _Columns:
    needed = (mapping.label_field, *mapping.packet_fields)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DatasetError(f"{path}: {locate(i)}: expected an object, got {type(rec).__name__}")
        missing = [f for f in needed if f not in rec]
        if missing:
            raise DatasetError(
                f"{path}: {locate(i)}: missing field(s) {missing}; the record has "
                f"{sorted(rec)} (see --label-field / --size-field / ... )"
            )
    lists = {f: [rec[f] for rec in records] for f in mapping.packet_fields}
    offsets = _check_lists(path, lists, locate)
    values = {}
    for field, per_record in lists.items():
        try:
            values[field] = np.fromiter(
                itertools.chain.from_iterable(per_record), np.float64, count=int(offsets[-1])
            )
        except (TypeError, ValueError):
            for i, seq in enumerate(per_record):
                try:
                    np.asarray(seq, np.float64)
                except (TypeError, ValueError) as err:
                    raise DatasetError(
                        f"{path}: {locate(i)}: field {field!r} holds non-numeric values ({err})"
                    ) from err
            raise DatasetError(f"{path}: field {field!r} holds non-numeric values") from None
    labels = [rec[mapping.label_field] for rec in records]
    return _Columns(path, labels, values, offsets, locate)


def _check_lists(path: Path, lists: dict[str, list], locate) -> np.ndarray:
    """Every per-packet field is a non-empty list, all of one length per record."""
    fields = list(lists)
    n_records = len(lists[fields[0]])
    lengths = np.zeros(n_records, np.int64)
    for i in range(n_records):
        row = [lists[f][i] for f in fields]
        bad = [f for f, v in zip(fields, row, strict=True) if not isinstance(v, list)]
        if bad:
            raise DatasetError(f"{path}: {locate(i)}: field(s) {bad} must be lists of numbers")
        sizes = {f: len(v) for f, v in zip(fields, row, strict=True)}
        if len(set(sizes.values())) != 1:
            raise DatasetError(f"{path}: {locate(i)}: packet lists differ in length {sizes}")
        lengths[i] = len(row[0])
        if lengths[i] == 0:
            raise DatasetError(f"{path}: {locate(i)}: the flow has no packets")
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _read_csv(path: Path, mapping: FieldMapping) -> _Columns:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: malformed CSV: {err}") from err
    missing = [f for f in (mapping.label_field, *mapping.packet_fields) if f not in frame]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; the file has {list(frame.columns)}"
        )
    records = frame.to_dict("records")

    def locate(i: int) -> str:
        return f"row {i} (line {i + 2})"

    for i, rec in enumerate(records):
        for field in mapping.packet_fields:
            cell = rec[field]
            if not isinstance(cell, str):
                raise DatasetError(
                    f"{path}: {locate(i)}: column {field!r} must hold a JSON list, got {cell!r}"
                )
            rec[field] = parse_json(cell.encode(), f"{path}: {locate(i)}: column {field!r}")
        rec[mapping.label_field] = _python_scalar(rec[mapping.label_field])
    return _from_records(path, records, mapping, locate)


def _read_parquet(path: Path, mapping: FieldMapping) -> _Columns:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = (mapping.label_field, *mapping.packet_fields)
    try:
        schema = pq.read_schema(path)
        missing = [f for f in fields if f not in schema.names]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}; the file has {schema.names}")
        table = pq.read_table(path, columns=list(dict.fromkeys(fields)))
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path}: unreadable Parquet file: {err}") from err

    def locate(i: int) -> str:
        return f"row {i}"

    values, offsets = {}, None
    for field in mapping.packet_fields:
        flat, field_offsets = list_column(table, field, path)
        if offsets is not None and not np.array_equal(offsets, field_offsets):
            row = int(np.flatnonzero(np.diff(offsets) != np.diff(field_offsets))[0])
            raise DatasetError(f"{path}: {locate(row)}: packet lists differ in length")
        values[field], offsets = flat, field_offsets
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if empty.size:
        raise DatasetError(f"{path}: {locate(int(empty[0]))}: the flow has no packets")
    labels = table.column(mapping.label_field).to_pylist()
    return _Columns(path, labels, values, offsets, locate)


def list_column(table, field: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 values and ``(N + 1,)`` offsets of a Parquet list column."""
    import pyarrow as pa

    column = table.column(field).combine_chunks()
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise DatasetError(f"{path}: column {field!r} must be a list column, got {column.type}")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DatasetError(f"{path}: row {row}: column {field!r} is null")
    offsets = column.offsets.to_numpy().astype(np.int64)
    flat = column.flatten()
    if flat.null_count:
        bad = np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0]
        row = int(np.searchsorted(offsets - offsets[0], bad, side="right") - 1)
        raise DatasetError(f"{path}: row {row}: column {field!r} holds a null value")
    try:
        values = flat.cast(pa.float64()).to_numpy()
    except pa.ArrowException as err:
        raise DatasetError(f"{path}: column {field!r} holds non-numeric values ({err})") from err
    return values, offsets - offsets[0]


def _python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------------------
# Columns -> Flows.


def _label_table(mapping: FieldMapping) -> dict[str, int] | None:
    if mapping.label_names is None:
        return None
    if isinstance(mapping.label_names, dict):
        table, where = mapping.label_names, "label names"
    else:
        where = str(mapping.label_names)
        try:
            table = parse_json(Path(mapping.label_names).read_bytes(), where)
        except OSError as err:
            raise DatasetError(f"--label-names {where}: cannot read: {err}") from err
    ok = (
        isinstance(table, dict)
        and table
        and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in table.items()
        )
    )
    if not ok:
        raise DatasetError(f"{where}: label names must be a JSON object {{name: integer id}}")
    if len(set(table.values())) != len(table):
        raise DatasetError(f"{where}: label ids must be unique")
    return table


def _encode_labels(parts: list[_Columns], mapping: FieldMapping) -> tuple[np.ndarray, tuple]:
    """Class ids ``0..C-1`` of every flow, and the class names."""
    table = _label_table(mapping)
    raw = [label for part in parts for label in part.labels]

    def where(k: int) -> str:
        for part in parts:
            if k < len(part.labels):
                return f"{part.path}: {part.locate(k)}"
            k -= len(part.labels)
        return "?"

    def kind(v) -> str:
        if isinstance(v, str):
            return "str"
        if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer():
            return "int"
        return "bad"

    kinds = [kind(v) for v in raw]
    if "bad" in kinds:
        k = kinds.index("bad")
        raise DatasetError(f"{where(k)}: label {raw[k]!r} must be a string name or an integer id")
    if table is not None:
        by_id = sorted(table.items(), key=lambda kv: kv[1])
        class_names = tuple(name for name, _ in by_id)
        dense = {name: i for i, (name, _) in enumerate(by_id)}
        dense_of_id = {label_id: i for i, (_, label_id) in enumerate(by_id)}
        out = np.empty(len(raw), np.int64)
        for k, (v, t) in enumerate(zip(raw, kinds, strict=True)):
            hit = dense.get(v) if t == "str" else dense_of_id.get(int(v))
            if hit is None:
                raise DatasetError(
                    f"{where(k)}: unknown label {v!r}; --label-names knows "
                    f"{dict(sorted(table.items(), key=lambda kv: kv[1]))}"
                )
            out[k] = hit
        return out, class_names
    if len(set(kinds)) > 1:
        raise DatasetError("labels mix strings and integers; give --label-names to map them")
    if kinds and kinds[0] == "int":
        values = np.array([int(v) for v in raw], np.int64)
        ids, out = np.unique(values, return_inverse=True)
        return out, tuple(str(i) for i in ids)
    names, out = np.unique(np.array(raw, dtype=object).astype(str), return_inverse=True)
    return out, tuple(str(n) for n in names)


def _directions(parts: list[_Columns], mapping: FieldMapping) -> list[np.ndarray]:
    """+1/-1 directions per part, validated; errors name the first offending record."""
    if mapping.signed_size_field:
        out = []
        for part in parts:
            signed = part.values[mapping.signed_size_field]
            _require(
                part,
                ~np.isfinite(signed) | (signed == 0),
                f"signed size field {mapping.signed_size_field!r} must be finite and "
                "non-zero (its sign is the direction)",
            )
            out.append(np.sign(signed).astype(np.int8))
        return out
    field = mapping.dir_field
    convention = mapping.dir_convention
    if convention == "auto":
        seen = set()
        for part in parts:
            seen |= set(np.unique(part.values[field]).tolist())
        if seen <= {-1.0, 1.0} and -1.0 in seen:
            convention = "signed"
        elif seen <= {0.0, 1.0} and 0.0 in seen:
            convention = "zero-one"
        elif seen == {1.0}:
            raise DatasetError(
                f"direction field {field!r} only holds 1: say --dir-convention signed "
                "(1 = client to server) or zero-one (1 = server to client)"
            )
        else:
            convention = "signed" if -1.0 in seen else "zero-one"
    allowed = (-1.0, 1.0) if convention == "signed" else (0.0, 1.0)
    out = []
    for part in parts:
        values = part.values[field]
        _require(
            part,
            ~np.isin(values, allowed),
            f"direction field {field!r} must hold {allowed[0]:g}/{allowed[1]:g} "
            f"({convention} convention)",
        )
        out.append((values if convention == "signed" else 1.0 - 2.0 * values).astype(np.int8))
    return out


def _require(part: _Columns, bad: np.ndarray, what: str) -> None:
    record = first_bad_segment(bad, part.offsets)
    if record is not None:
        raise DatasetError(f"{part.path}: {part.locate(record)}: {what}")


def _iats(part: _Columns, mapping: FieldMapping) -> np.ndarray:
    starts = part.offsets[:-1]
    if mapping.iat_field:
        iat = part.values[mapping.iat_field].copy()
        _require(
            part,
            ~np.isfinite(iat) | (iat < 0),
            f"IAT field {mapping.iat_field!r} must be finite and >= 0",
        )
    else:
        times = part.values[mapping.time_field]
        _require(part, ~np.isfinite(times), f"time field {mapping.time_field!r} must be finite")
        iat = np.diff(times, prepend=times[:1] if times.size else times)
        iat[starts] = 0.0
        _require(part, iat < 0, f"time field {mapping.time_field!r} decreases (negative IAT)")
    iat[starts] = 0.0
    return iat


def read_flow_table(
    spec: str | Path,
    mapping: FieldMapping,
    *,
    t_max: int = T_MAX_DEFAULT,
    name: str | None = None,
) -> Flows:
    """Reads every table ``spec`` names (module docstring) into one ``Flows``.

    ``n_packets`` is the length of each flow's lists; ``name`` defaults to
    ``flows:<file stem or directory name>``.
    """
    exclude = (
        []
        if mapping.label_names is None or isinstance(mapping.label_names, dict)
        else [Path(mapping.label_names)]
    )
    paths = resolve_table_paths(spec, exclude)
    parts = [_read_columns(p, mapping) for p in paths]
    if not any(len(p.labels) for p in parts):
        raise DatasetError(f"flows:{spec}: the table(s) hold no flows")
    labels, class_names = _encode_labels(parts, mapping)
    directions = _directions(parts, mapping)
    sizes, iats = [], []
    for part in parts:
        if mapping.signed_size_field:
            sizes.append(np.abs(part.values[mapping.signed_size_field]))
        else:
            size = part.values[mapping.size_field]
            _require(
                part,
                ~np.isfinite(size) | (size < 0),
                f"size field {mapping.size_field!r} must be finite and >= 0",
            )
            sizes.append(size)
        iats.append(_iats(part, mapping))
    lengths = np.concatenate([np.diff(p.offsets) for p in parts])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    spec_path = Path(str(spec))
    if any(ch in str(spec) for ch in "*?["):
        default_name = spec_path.parent.name or "flows"
    else:
        default_name = spec_path.stem if spec_path.is_file() else spec_path.resolve().name
    return flows_from_flat(
        sizes=np.concatenate(sizes),
        directions=np.concatenate(directions),
        iats=np.concatenate(iats),
        offsets=offsets,
        n_packets=None,
        labels=labels,
        class_names=class_names,
        name=name or f"flows:{default_name}",
        provenance={
            "reader": "flowtable",
            "files": [str(p.resolve()) for p in paths],
            "mapping": mapping.describe(),
            "t_max": t_max,
        },
        t_max=t_max,
    )
