"""Reading flow-table files into flat per-packet columns (the I/O half of ``flowtable``).

Formats, chosen by extension: ``.json`` (a list of records), ``.jsonl`` / ``.ndjson`` (one
record per line), ``.csv`` (list columns as JSON strings such as ``"[0.0, 0.1]"``) and
``.parquet`` (native list columns). Every error names the file and the record.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jtcaug.data.flows import DatasetError, parse_json
from jtcaug.data.layouts import FieldMapping

TABLE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet", ".pq")


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
class Columns:
    """One file's content: labels and, per packet field, flat values with offsets."""

    path: Path
    labels: list
    values: dict[str, np.ndarray]
    offsets: np.ndarray
    locate: Callable[[int], str]  # record index -> "record 3" / "line 4" / "row 2"
    groups: list | None = None


def read_columns(path: Path, mapping: FieldMapping) -> Columns:
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
) -> Columns:
    needed = mapping.source_fields
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DatasetError(f"{path}: {locate(i)}: expected an object, got {type(rec).__name__}")
        missing = [f for f in needed if f not in rec]
        if missing:
            raise DatasetError(
                f"{path}: {locate(i)}: missing field(s) {missing}; the record has "
                f"{sorted(rec)} (see --layout / --label-field / --size-field / ... )"
            )
    if mapping.ppi_field:
        lists = _ppi_rows(path, [rec[mapping.ppi_field] for rec in records], mapping, locate)
    else:
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
    groups = [rec[mapping.group_field] for rec in records] if mapping.group_field else None
    return Columns(path, labels, values, offsets, locate, groups)


def _ppi_rows(path: Path, cells: list, mapping: FieldMapping, locate) -> dict[str, list]:
    """CESNET's PPI ``[IATs, directions, sizes]`` per record -> three per-packet fields."""
    rows: dict[str, list] = {mapping.ppi_sizes: [], mapping.ppi_dirs: [], mapping.ppi_iats: []}
    for i, cell in enumerate(cells):
        if not (isinstance(cell, list) and len(cell) == 3):
            raise DatasetError(
                f"{path}: {locate(i)}: field {mapping.ppi_field!r} must hold three lists "
                "[IATs, directions, sizes]"
            )
        rows[mapping.ppi_iats].append(cell[0])
        rows[mapping.ppi_dirs].append(cell[1])
        rows[mapping.ppi_sizes].append(cell[2])
    return rows


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


def _read_csv(path: Path, mapping: FieldMapping) -> Columns:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: malformed CSV: {err}") from err
    missing = [f for f in mapping.source_fields if f not in frame]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; the file has {list(frame.columns)}"
        )

    def locate(i: int) -> str:
        return f"row {i} (line {i + 2})"

    fast = None if mapping.ppi_field else _csv_lists_fast(frame, mapping)
    if fast is not None:
        values, offsets = fast
        labels = [python_scalar(v) for v in frame[mapping.label_field].tolist()]
        groups = None
        if mapping.group_field:
            groups = [
                None if pd.isna(v) else python_scalar(v)
                for v in frame[mapping.group_field].tolist()
            ]
        return Columns(path, labels, values, offsets, locate, groups)
    records = frame.to_dict("records")
    list_fields = (mapping.ppi_field,) if mapping.ppi_field else mapping.packet_fields
    group = mapping.group_field
    for i, rec in enumerate(records):
        if group:
            rec[group] = None if pd.isna(rec[group]) else python_scalar(rec[group])
        for field in list_fields:
            cell = rec[field]
            if not isinstance(cell, str):
                raise DatasetError(
                    f"{path}: {locate(i)}: column {field!r} must hold a JSON list, got {cell!r}"
                )
            rec[field] = parse_json(cell.encode(), f"{path}: {locate(i)}: column {field!r}")
        rec[mapping.label_field] = python_scalar(rec[mapping.label_field])
    return _from_records(path, records, mapping, locate)


def _csv_lists_fast(frame, mapping: FieldMapping) -> tuple[dict, np.ndarray] | None:
    """Flat values and offsets of flat-number list cells (``"[1, 2.5, -1]"``) of every
    packet column, without a JSON parse per cell; None when any cell is not that plain (the
    per-record path then parses it and names the culprit)."""
    values, offsets = {}, None
    for field in mapping.packet_fields:
        cells = frame[field].tolist()
        if not all(isinstance(c, str) for c in cells):
            return None
        inner = [c.strip() for c in cells]
        if not all(c.startswith("[") and c.endswith("]") and "[" not in c[1:] for c in inner):
            return None
        inner = [c[1:-1].strip() for c in inner]
        lengths = np.array([c.count(",") + 1 if c else 0 for c in inner], np.int64)
        if (lengths == 0).any():
            return None
        try:
            flat = np.array(",".join(inner).split(","), dtype=np.float64)
        except ValueError:
            return None
        if flat.size != lengths.sum():
            return None
        field_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if offsets is not None and not np.array_equal(offsets, field_offsets):
            return None
        values[field], offsets = flat, field_offsets
    return values, offsets


def _read_parquet(path: Path, mapping: FieldMapping) -> Columns:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = mapping.source_fields
    try:
        schema = pq.read_schema(path)
        missing = [f for f in fields if f not in schema.names]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing}; the file has {schema.names}")
        table = pq.read_table(path, columns=list(fields))
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{path}: unreadable Parquet file: {err}") from err

    def locate(i: int) -> str:
        return f"row {i}"

    if mapping.ppi_field:
        table = _split_ppi_column(table, mapping, path)
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
    groups = table.column(mapping.group_field).to_pylist() if mapping.group_field else None
    return Columns(path, labels, values, offsets, locate, groups)


def _split_ppi_column(table, mapping: FieldMapping, path: Path):
    """Replaces the nested PPI list column (3 lists per row) by its three rows."""
    import pyarrow as pa

    column = table.column(mapping.ppi_field).combine_chunks()
    nested = pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
    if not nested or column.null_count:
        raise DatasetError(
            f"{path}: column {mapping.ppi_field!r} must hold three lists per row "
            f"[IATs, directions, sizes], got {column.type}"
        )
    per_row = np.diff(column.offsets.to_numpy())
    if (per_row != 3).any():
        row = int(np.flatnonzero(per_row != 3)[0])
        raise DatasetError(
            f"{path}: row {row}: column {mapping.ppi_field!r} must hold three lists "
            f"[IATs, directions, sizes], got {int(per_row[row])}"
        )
    inner = column.flatten()
    n = len(column)
    for k, name in enumerate((mapping.ppi_iats, mapping.ppi_dirs, mapping.ppi_sizes)):
        table = table.append_column(name, inner.take(pa.array(np.arange(k, 3 * n, 3))))
    return table


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


def python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def table_columns(path: Path) -> set[str]:
    """The field names of the first record (or the columns) of one table file."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return set(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as err:
            raise DatasetError(f"{path}: unreadable Parquet file: {err}") from err
    if suffix == ".csv":
        with path.open("rb") as fh:
            header = fh.readline().decode("utf-8", "replace").strip()
        return {c.strip().strip('"') for c in header.split(",")}
    if suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    rec = parse_json(line, f"{path}: line {line_no}")
                    return set(rec) if isinstance(rec, dict) else set()
        return set()
    doc = parse_json(path.read_bytes(), str(path))
    return set(doc[0]) if isinstance(doc, list) and doc and isinstance(doc[0], dict) else set()
