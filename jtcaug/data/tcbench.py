"""tcbench-prepared MIRAGE parquet files.

``<root>/mirage19/preprocessed/imc23/mirage19_filtered_minpkts10.parquet`` (and the
``mirage22`` twin) are already curated (zero-payload packets removed, > 10 packets); the
columns used are ``pkts_size`` (payload bytes), ``pkts_dir`` (0 = client to server -> +1,
1 -> -1), ``timetofirst`` (s since the first packet; IAT = first difference) and ``app``.
Rows labelled ``background``, if any, are dropped; nothing else is filtered.
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
)
from jtcaug.data.flowtable import list_column

TCBENCH_GLOB = "*_filtered_minpkts10.parquet"
COLUMNS = ("pkts_size", "pkts_dir", "timetofirst", "app")
BACKGROUND = "background"


def find_tcbench_file(path: Path) -> Path:
    """The parquet file itself, or the single ``*_filtered_minpkts10.parquet`` below a root."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DatasetError(f"tcbench:{path}: no such file or directory")
    hits = sorted(path.rglob(TCBENCH_GLOB))
    if len(hits) != 1:
        found = ", ".join(str(h) for h in hits) or "none"
        raise DatasetError(
            f"tcbench:{path}: expected exactly one {TCBENCH_GLOB} below it, found {found}; "
            "name the file itself, e.g. tcbench:<root>/mirage19/preprocessed/imc23/"
            "mirage19_filtered_minpkts10.parquet"
        )
    return hits[0]


def read_tcbench(path: Path, *, t_max: int = T_MAX_DEFAULT) -> Flows:
    """Reads a tcbench ``*_filtered_minpkts10.parquet`` into ``Flows`` (classes sorted)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = find_tcbench_file(path)
    try:
        schema = pq.read_schema(file)
        missing = [c for c in COLUMNS if c not in schema.names]
        if missing:
            raise DatasetError(f"{file}: missing column(s) {missing}; the file has {schema.names}")
        table = pq.read_table(file, columns=list(COLUMNS))
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{file}: unreadable Parquet file: {err}") from err

    apps = np.array([str(a) for a in table.column("app").to_pylist()], dtype=object)
    sizes, offsets = list_column(table, "pkts_size", file)
    dirs, dir_offsets = list_column(table, "pkts_dir", file)
    times, time_offsets = list_column(table, "timetofirst", file)
    for name, other in (("pkts_dir", dir_offsets), ("timetofirst", time_offsets)):
        if not np.array_equal(offsets, other):
            row = int(np.flatnonzero(np.diff(offsets) != np.diff(other))[0])
            raise DatasetError(f"{file}: row {row}: pkts_size and {name} differ in length")

    def require(bad: np.ndarray, what: str) -> None:
        row = first_bad_segment(bad, offsets)
        if row is not None:
            raise DatasetError(f"{file}: row {row}: {what}")

    require(
        ~np.isfinite(sizes) | (sizes < 0) | (sizes >= MAX_PACKET_BYTES),
        f"pkts_size must be finite, >= 0 and below {MAX_PACKET_BYTES:.0f}",
    )
    require(~np.isin(dirs, (0.0, 1.0)), "pkts_dir must be 0 or 1")
    require(~np.isfinite(times), "timetofirst must be finite")
    starts = offsets[:-1]
    iat = np.diff(times, prepend=times[:1] if times.size else times)
    iat[starts[starts < iat.size]] = 0.0
    require(iat < 0, "timetofirst decreases (negative IAT)")
    lengths = np.diff(offsets)
    if (lengths == 0).any():
        raise DatasetError(f"{file}: row {int(np.flatnonzero(lengths == 0)[0])}: no packets")

    keep = apps != BACKGROUND
    if not keep.any():
        raise DatasetError(f"{file}: no flows outside the {BACKGROUND!r} class")
    class_names, labels = np.unique(apps[keep].astype(str), return_inverse=True)
    sel = np.flatnonzero(keep)
    packet_keep = np.repeat(keep, lengths)
    kept_offsets = np.concatenate([[0], np.cumsum(lengths[sel])]).astype(np.int64)
    variant = file.name.split("_")[0]
    return flows_from_flat(
        sizes=sizes[packet_keep],
        directions=(1 - 2 * dirs[packet_keep]).astype(np.int8),
        iats=iat[packet_keep],
        offsets=kept_offsets,
        n_packets=None,
        labels=labels,
        class_names=tuple(str(c) for c in class_names),
        name=f"tcbench-{variant}",
        provenance={
            "reader": "tcbench",
            "source": str(file.resolve()),
            "rows": int(apps.size),
            "background_rows": int((~keep).sum()),
            "t_max": t_max,
        },
        t_max=t_max,
    )


# ---------------------------------------------------------------------------------------------
# tcbench's own splits (``--splits tcbench``).

SPLIT_COLUMNS = ("train_indexes", "val_indexes", "test_indexes")


def splits_file_of(file: Path) -> Path:
    """``<stem>_splits.parquet`` beside the curated file (tcbench's naming)."""
    return file.with_name(f"{file.stem}_splits.parquet")


def read_tcbench_splits(file: Path) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """tcbench's train/val/test splits of ``file``, as row indices of ``read_tcbench(file)``.

    The split file has one row per split: ``train_indexes``, ``val_indexes`` and
    ``test_indexes`` (lists of the curated file's ``row_id``, or of row positions when it
    has no ``row_id`` column) and ``split_index`` (the order; row order without it).
    Returns, per split in ``split_index`` order, sorted ``(train, val, test)`` int64 arrays.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = find_tcbench_file(file)
    split_path = splits_file_of(file)
    if not split_path.is_file():
        raise DatasetError(
            f"--splits tcbench: no split file {split_path.name} beside {file} (tcbench ships "
            "one per curated file)"
        )
    try:
        data_cols = pq.read_schema(file).names
        data = pq.read_table(file, columns=[c for c in ("row_id", "app") if c in data_cols])
        splits = pq.read_table(split_path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"{split_path}: unreadable Parquet file: {err}") from err
    missing = [c for c in SPLIT_COLUMNS if c not in splits.column_names]
    if missing:
        raise DatasetError(
            f"{split_path}: missing column(s) {missing}; the file has {splits.column_names}"
        )
    apps = np.array([str(a) for a in data.column("app").to_pylist()], dtype=object)
    row_ids = (
        np.asarray(data.column("row_id").to_numpy(), np.int64)
        if "row_id" in data.column_names
        else np.arange(apps.size, dtype=np.int64)
    )
    kept = np.flatnonzero(apps != BACKGROUND)
    position = {int(r): i for i, r in enumerate(row_ids[kept])}
    order = (
        np.argsort(np.asarray(splits.column("split_index").to_numpy()), kind="stable")
        if "split_index" in splits.column_names
        else np.arange(splits.num_rows)
    )
    out = []
    for k in order:
        parts = []
        for column in SPLIT_COLUMNS:
            ids = splits.column(column)[int(k)].as_py() or []
            unknown = [i for i in ids if int(i) not in position]
            if unknown:
                raise DatasetError(
                    f"{split_path}: split {int(k)}: {column} names {len(unknown)} rows the "
                    f"curated file does not hold (first: row_id {unknown[0]})"
                )
            parts.append(np.sort(np.array([position[int(i)] for i in ids], np.int64)))
        every = np.concatenate(parts)
        if np.unique(every).size != every.size:
            raise DatasetError(f"{split_path}: split {int(k)}: a row appears in two parts")
        out.append(tuple(parts))
    if not out:
        raise DatasetError(f"{split_path}: the split file holds no splits")
    return tuple(out)
