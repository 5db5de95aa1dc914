"""Generic flow tables: one flow per record, a field mapping says which
field is what.

Formats, chosen by extension: ``.json`` (a list of records), ``.jsonl`` / ``.ndjson`` (one
record per line), ``.csv`` (list columns as JSON strings such as ``"[0.0, 0.1]"``) and
``.parquet`` (native list columns). ``flows:PATH`` names one file, a directory (every file
with one of those extensions directly inside it, sorted by name, except the
``--label-names`` file) or a glob pattern (``data/*.jsonl``); the flows of all files are
concatenated in that order.

Field mapping (``layouts.FieldMapping``, or a named ``--layout``): the label, plus either
``size`` + ``direction`` fields, one ``signed size`` field (sign = direction) or CESNET's
``PPI`` triple, plus either per-packet ``iat`` (time since the previous packet) or ``time``
(timestamps; IAT = first difference), both in ``--iat-unit`` (s, ms or us). With
``--pad-value V`` the positions whose direction (or signed size) is V are padding: they
must trail the real packets and are dropped before anything else. Direction values:

- signed sizes: positive -> +1, negative -> -1 (0 is an error: it has no direction);
- ``--dir-convention signed``: the field holds +1 / -1 as they are;
- ``--dir-convention zero-one``: 0 -> +1 and 1 -> -1 (MIRAGE / tcbench: 0 = client to server);
- ``auto`` (default): ``signed`` if a -1 occurs, ``zero-one`` if a 0 occurs; a field that
  only ever holds 1 is ambiguous and must be told.

+1 is the direction of the flow's initiator (client to server). The first packet's IAT is
0 by definition, whatever the table says. Tables get no curation: every flow is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jtcaug.data.flows import (
    MAX_PACKET_BYTES,
    T_MAX_DEFAULT,
    DatasetError,
    Flows,
    first_bad_segment,
    flows_from_flat,
    parse_json,
)
from jtcaug.data.layouts import (
    DIR_CONVENTIONS,
    IAT_UNITS,
    FieldMapping,
    detect_layout,
    layout_mapping,
)
from jtcaug.data.tableio import (
    TABLE_SUFFIXES,
    Columns,
    list_column,
    read_columns,
    resolve_table_paths,
    table_columns,
)

__all__ = [
    "DIR_CONVENTIONS",
    "TABLE_SUFFIXES",
    "FieldMapping",
    "list_column",
    "read_flow_table",
    "resolve_table_paths",
]

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


def _encode_labels(parts: list[Columns], mapping: FieldMapping) -> tuple[np.ndarray, tuple]:
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


def _directions(parts: list[Columns], mapping: FieldMapping) -> list[np.ndarray]:
    """+1/-1 directions per part, validated; errors name the first offending record."""
    if mapping.signed_size_field:
        out = []
        for part in parts:
            signed = part.values[mapping.signed_size_field]
            _require(
                part,
                ~np.isfinite(signed) | (signed == 0) | (np.abs(signed) >= MAX_PACKET_BYTES),
                f"signed size field {mapping.signed_size_field!r} must be finite, non-zero "
                f"(its sign is the direction) and below {MAX_PACKET_BYTES:.0f} in magnitude"
                f"{_PAD_HINT if mapping.pad_value is None else ''}",
            )
            out.append(np.sign(signed).astype(np.int8))
        return out
    field = mapping.dir_key
    convention = mapping.effective_dir_convention
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
            f"({convention} convention){_PAD_HINT if mapping.pad_value is None else ''}",
        )
        out.append((values if convention == "signed" else 1.0 - 2.0 * values).astype(np.int8))
    return out


_PAD_HINT = "; if another value pads the sequences, say --pad-value (or a --layout)"


def _require(part: Columns, bad: np.ndarray, what: str) -> None:
    record = first_bad_segment(bad, part.offsets)
    if record is not None:
        raise DatasetError(f"{part.path}: {part.locate(record)}: {what}")


def _trim_padding(part: Columns, mapping: FieldMapping) -> Columns:
    """Drops the trailing padding positions (``pad_value`` in ``mapping.pad_field``)."""
    pad = part.values[mapping.pad_field] == mapping.pad_value
    if not pad.any():
        return part
    # Padding must trail: a real packet right after a pad position of the same flow is not.
    within = np.ones(pad.size, bool)
    within[part.offsets[1:-1]] = False  # position 0 of each flow has no predecessor in it
    within[0] = False
    after_pad = np.zeros(pad.size, bool)
    after_pad[1:] = pad[:-1] & ~pad[1:] & within[1:]
    _require(
        part,
        after_pad,
        f"padding value {mapping.pad_value:g} in {mapping.pad_field!r} is followed by a "
        "packet (padding must trail the real packets)",
    )
    keep = ~pad
    counts = np.add.reduceat(keep.astype(np.int64), part.offsets[:-1]) if pad.size else []
    counts = np.where(np.diff(part.offsets) > 0, counts, 0)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise DatasetError(f"{part.path}: {part.locate(int(empty[0]))}: the flow has no packets")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = {field: v[keep] for field, v in part.values.items()}
    return Columns(part.path, part.labels, values, offsets, part.locate, part.groups)


def _iats(part: Columns, mapping: FieldMapping) -> np.ndarray:
    """Seconds since the previous packet; the first packet of every flow gets 0."""
    starts = part.offsets[:-1]
    unit = IAT_UNITS[mapping.iat_unit]
    if mapping.iat_key:
        iat = part.values[mapping.iat_key] * unit
        _require(
            part,
            ~np.isfinite(iat) | (iat < 0),
            f"IAT field {mapping.iat_key!r} must be finite and >= 0 (a negative or NaN "
            "value: mixed units, or padding not declared with --pad-value?)",
        )
    else:
        times = part.values[mapping.time_field] * unit
        _require(part, ~np.isfinite(times), f"time field {mapping.time_field!r} must be finite")
        iat = np.diff(times, prepend=times[:1] if times.size else times)
        iat[starts] = 0.0
        _require(part, iat < 0, f"time field {mapping.time_field!r} decreases (negative IAT)")
    iat[starts] = 0.0
    return iat


def _encode_groups(parts: list[Columns], mapping: FieldMapping) -> tuple[np.ndarray, tuple]:
    """Group ids of every flow and the group names; a missing group is an error."""
    raw = [g for part in parts for g in part.groups]
    missing = [k for k, g in enumerate(raw) if g is None or (isinstance(g, float) and g != g)]
    if missing:
        k, where = missing[0], None
        for part in parts:
            if k < len(part.labels):
                where = f"{part.path}: {part.locate(k)}"
                break
            k -= len(part.labels)
        raise DatasetError(
            f"group field {mapping.group_field!r} is missing on {len(missing)} of {len(raw)} "
            f"flows (first: {where}); every flow needs a group"
        )
    names, ids = np.unique(np.array([str(g) for g in raw], dtype=object), return_inverse=True)
    return ids, tuple(str(n) for n in names)


def detect_mapping(spec: str | Path) -> FieldMapping:
    """The layout mapping that ``flows:spec`` matches, when no field flags were given."""
    paths = resolve_table_paths(spec)
    columns = table_columns(paths[0])
    name = detect_layout(columns)
    if name is None:
        raise DatasetError(
            f"flows:{spec}: a flow table needs a field mapping: --layout NAME, or "
            "--label-field and either --size-field + --dir-field or --signed-size-field, plus "
            f"--iat-field or --time-field; {paths[0].name} has {sorted(columns)[:20]}"
        )
    return layout_mapping(name)


def read_flow_table(
    spec: str | Path,
    mapping: FieldMapping | None = None,
    *,
    t_max: int = T_MAX_DEFAULT,
    name: str | None = None,
) -> Flows:
    """Reads every table ``spec`` names (module docstring) into one ``Flows``.

    ``mapping`` None picks the layout the first table matches (``detect_mapping``).
    ``n_packets`` is the length of each flow's lists after padding is dropped; ``name``
    defaults to ``flows:<file stem or directory name>``.
    """
    if mapping is None:
        mapping = detect_mapping(spec)
    exclude = (
        []
        if mapping.label_names is None or isinstance(mapping.label_names, dict)
        else [Path(mapping.label_names)]
    )
    paths = resolve_table_paths(spec, exclude)
    parts = [read_columns(p, mapping) for p in paths]
    if not any(len(p.labels) for p in parts):
        raise DatasetError(f"flows:{spec}: the table(s) hold no flows")
    if mapping.pad_value is not None:
        parts = [_trim_padding(p, mapping) for p in parts]
    labels, class_names = _encode_labels(parts, mapping)
    groups, group_names = _encode_groups(parts, mapping) if mapping.group_field else (None, ())
    directions = _directions(parts, mapping)
    sizes, iats = [], []
    for part in parts:
        if mapping.signed_size_field:
            sizes.append(np.abs(part.values[mapping.signed_size_field]))
        else:
            size = part.values[mapping.size_key]
            _require(
                part,
                ~np.isfinite(size) | (size < 0) | (size >= MAX_PACKET_BYTES),
                f"size field {mapping.size_key!r} must be finite, >= 0 and below "
                f"{MAX_PACKET_BYTES:.0f} bytes",
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
        groups=groups,
        group_names=group_names,
        group_field=mapping.group_field,
    )
