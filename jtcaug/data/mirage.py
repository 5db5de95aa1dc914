"""MIRAGE-2019 / MIRAGE-2022 raw JSON reader with the paper's curation (``MirageCuration``).

Sources: an extracted tree, the downloaded ``.tar.gz`` (MIRAGE-19) or ``.zip`` with nested
per-app zips (MIRAGE-22), read member by member without extracting to disk. Each capture
file is parsed once; its flows become flat per-packet arrays, and the curation (background
rule, zero-payload removal with IAT accumulation, minimum packets, minimum class size) runs
vectorized over all flows.

Flow order is canonical (device folder, file name, then the file's own flow order) whatever
the container, so an archive and its extracted tree give identical ``Flows`` and folds.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from jtcaug.data.flows import (
    MAX_PACKET_BYTES,
    T_MAX_DEFAULT,
    DatasetError,
    Flows,
    concat_ranges,
    first_bad_segment,
    flows_from_flat,
    parse_json,
    segment_ids,
)

log = logging.getLogger("jtcaug.data")

VARIANTS = ("mirage19", "mirage22")
# The group field every MIRAGE flow carries: its capture file (device folder / file name).
CAPTURE_FILE = "capture_file"
# Top-level folder / archive names of the public releases.
EXTRACTED_DIR = {
    "mirage19": "MIRAGE-2019_traffic_dataset_downloadable",
    "mirage22": "MIRAGE-COVID-CCMA-2022",
}
ARCHIVE_NAME = {
    "mirage19": "MIRAGE-2019_traffic_dataset_downloadable_v2.tar.gz",
    "mirage22": "MIRAGE-COVID-CCMA-2022.zip",
}
# Series longer than this are converted to numpy only up to the packet that completes the
# first T_max kept ones: MIRAGE-22 flows run to thousands of packets.
_LONG_SERIES = 256
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
# Inner zips larger than this are spooled to a temp file instead of memory.
_SPOOL_BYTES = 256 << 20


@dataclass(frozen=True)
class MirageCuration:
    """Thresholds of the curation (defaults reproduce the paper's counts).

    Attributes:
      min_packets: keep flows with MORE than this many non-zero-payload packets.
      min_class_flows: keep classes with MORE than this many flows (after the flow filters).
    """

    min_packets: int = 10
    min_class_flows: int = 100

    def __post_init__(self) -> None:
        if self.min_packets < 0 or self.min_class_flows < 0:
            raise DatasetError(
                f"curation thresholds must be >= 0, got min_packets={self.min_packets}, "
                f"min_class_flows={self.min_class_flows}"
            )


# ---------------------------------------------------------------------------------------------
# The vectorized curation kernel (shared with the synthetic generator).


def drop_zero_payload(
    payload: np.ndarray, dir01: np.ndarray, iat: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Removes zero-payload packets, folding their IATs into the next kept packet.

    Args:
      payload, dir01, iat: ``(P,)`` flat raw packets (L4 payload bytes, MIRAGE direction
        0 = phone to server / 1 = server to phone, seconds since the previous packet).
      offsets: ``(N + 1,)`` flow boundaries in the flat arrays.

    Returns:
      ``sizes`` float64, ``directions`` int8 (+1/-1), ``iats`` float64 of the kept packets and
      their ``(N + 1,)`` offsets. A kept packet's IAT is the sum of the raw IATs after the
      previous kept packet of its flow up to itself; the first kept packet's IAT is 0.
    """
    offsets = np.asarray(offsets, np.int64)
    n_flows = len(offsets) - 1
    kept = np.flatnonzero(payload > 0)
    flow_of = segment_ids(offsets)[kept]
    # reduceat sums iat[k_i + 1 : k_{i+1} + 1], i.e. everything after kept packet i up to and
    # including kept packet i + 1; a trailing 0 keeps the last start index in range.
    gaps = np.add.reduceat(np.append(np.asarray(iat, np.float64), 0.0), kept + 1)
    new_iat = np.zeros(kept.size, np.float64)
    if kept.size > 1:
        same_flow = flow_of[1:] == flow_of[:-1]
        new_iat[1:] = np.where(same_flow, gaps[:-1], 0.0)
    n_kept = np.bincount(flow_of, minlength=n_flows)
    new_offsets = np.concatenate([[0], np.cumsum(n_kept)]).astype(np.int64)
    sizes = np.asarray(payload, np.float64)[kept]
    directions = (1 - 2 * np.asarray(dir01, np.int64)[kept]).astype(np.int8)
    return sizes, directions, new_iat, new_offsets


# ---------------------------------------------------------------------------------------------
# Walking a source: extracted tree, tar archive, zip with nested zips.


def iter_json_members(path: Path) -> Iterator[tuple[str, PurePosixPath, bytes]]:
    """Yields ``(display name, relative path, bytes)`` of every JSON file under ``path``.

    ``path`` may be a directory, a ``.tar.gz``/``.tgz``/``.tar`` or a ``.zip``; zips and
    archives found inside are entered recursively, in memory or via a temp file, so nothing
    is extracted to the data directory.
    """
    path = Path(path)
    if path.is_dir():
        yield from _iter_dir(path)
    elif path.is_file():
        yield from _iter_archive_file(path, str(path))
    else:
        raise DatasetError(f"{path}: no such file or directory")


def _iter_dir(root: Path) -> Iterator[tuple[str, PurePosixPath, bytes]]:
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = Path(dirpath) / name
            rel = PurePosixPath(full.relative_to(root).as_posix())
            if _skip_name(rel):
                continue
            if name.endswith(".json"):
                try:
                    data = full.read_bytes()
                except OSError as err:
                    raise DatasetError(f"{full}: cannot read: {err}") from err
                yield str(full), rel, data
            elif name.endswith(_ARCHIVE_SUFFIXES):
                for display, inner, data in _iter_archive_file(full, str(full)):
                    yield display, _unpacked_dir(rel) / inner, data


def _iter_archive_file(path: Path, display: str) -> Iterator[tuple[str, PurePosixPath, bytes]]:
    name = path.name
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                yield from _iter_zip(zf, display)
        except zipfile.BadZipFile as err:
            raise DatasetError(f"{display}: not a valid zip archive: {err}") from err
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        yield from _iter_tar(path, display)
    elif name.endswith(".json"):
        yield display, PurePosixPath(name), path.read_bytes()
    else:
        raise DatasetError(f"{display}: expected a directory, .tar.gz, .tgz, .tar or .zip")


def _iter_tar(path: Path, display: str) -> Iterator[tuple[str, PurePosixPath, bytes]]:
    try:
        # Streaming mode: one sequential pass over the compressed archive, no seeks.
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                rel = PurePosixPath(member.name)
                if not member.isfile() or _skip_name(rel):
                    continue
                if rel.name.endswith(".json"):
                    handle = tar.extractfile(member)
                    yield f"{display}!{member.name}", rel, handle.read()
                elif rel.name.endswith(".zip"):
                    blob = tar.extractfile(member).read()
                    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                        for d, inner, data in _iter_zip(zf, f"{display}!{member.name}"):
                            yield d, _unpacked_dir(rel) / inner, data
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{display}: unreadable or truncated archive: {err}") from err


def _iter_zip(zf: zipfile.ZipFile, display: str) -> Iterator[tuple[str, PurePosixPath, bytes]]:
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        rel = PurePosixPath(info.filename)
        if info.is_dir() or _skip_name(rel):
            continue
        where = f"{display}!{info.filename}"
        if rel.name.endswith(".json"):
            yield where, rel, zf.read(info)
        elif rel.name.endswith(".zip"):
            # A nested zip needs random access: spool it (to disk when large).
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
                with zf.open(info) as src:
                    while chunk := src.read(1 << 20):
                        spool.write(chunk)
                spool.seek(0)
                try:
                    inner_zf = zipfile.ZipFile(spool)
                except zipfile.BadZipFile as err:
                    raise DatasetError(f"{where}: not a valid zip archive: {err}") from err
                with inner_zf:
                    for d, inner, data in _iter_zip(inner_zf, where):
                        yield d, _unpacked_dir(rel) / inner, data


def _unpacked_dir(rel: PurePosixPath) -> PurePosixPath:
    """Where a nested archive's content lands when extracted (``App.zip`` -> ``App/``), so
    that reading it in place yields the same relative paths, hence the same flow order."""
    name = rel.name
    for suffix in _ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return rel.parent / name[: -len(suffix)]
    return rel


def _skip_name(rel: PurePosixPath) -> bool:
    return "__MACOSX" in rel.parts or rel.name.startswith(".")


# ---------------------------------------------------------------------------------------------
# One capture file.


@dataclass
class _CaptureFlows:
    """The flows of one capture file: app flows as flat raw packets, counts of the rest."""

    sort_key: tuple[str, str]
    app: str
    payload: np.ndarray
    dir01: np.ndarray
    iat: np.ndarray
    offsets: np.ndarray
    extra_kept: np.ndarray  # kept packets beyond the converted prefix, per app flow
    n_flows: int
    n_background: int


def parse_capture(
    data: bytes, display: str, rel: PurePosixPath, variant: str, t_max: int
) -> _CaptureFlows | None:
    """Parses one MIRAGE capture file; None when its name is not a MIRAGE capture name."""
    tokens = rel.name.split("_")
    if len(tokens) < 3:
        return None
    app = tokens[1]
    # Real captures hold NaN in flow_features (skew of constant series): allowed there,
    # rejected in the packet fields below.
    doc = parse_json(data, display)
    if not isinstance(doc, dict):
        raise DatasetError(f"{display}: expected a JSON object of flows, got {type(doc).__name__}")

    payload: list = []
    dir01: list = []
    iat: list = []
    lengths: list[int] = []
    extra_kept: list[int] = []
    app_keys: list[str] = []
    n_background = 0
    for key, flow in doc.items():
        if not isinstance(flow, dict):
            raise DatasetError(f"{display}: flow '{key}': expected an object")
        try:
            meta = flow["flow_metadata"]
            label = meta["BF_label"]
            packets = flow["packet_data"]
            f_payload = packets["L4_payload_bytes"]
            f_dir = packets["packet_dir"]
            f_iat = packets["iat"]
        except (KeyError, TypeError) as err:
            raise DatasetError(f"{display}: flow '{key}': missing field {err}") from err
        if label != app or (variant == "mirage22" and meta.get("BF_activity") == "Unknown"):
            n_background += 1
            continue
        if not all(isinstance(v, list) for v in (f_payload, f_dir, f_iat)):
            raise DatasetError(
                f"{display}: flow '{key}': L4_payload_bytes, packet_dir and iat must be lists"
            )
        n = len(f_payload)
        if not (len(f_dir) == n and len(f_iat) == n):
            raise DatasetError(
                f"{display}: flow '{key}': packet lists differ in length "
                f"(L4_payload_bytes {n}, packet_dir {len(f_dir)}, iat {len(f_iat)})"
            )
        cut, extra = n, 0
        if n > _LONG_SERIES:
            cut, extra = _prefix_cut(f_payload, t_max, display, key)
        payload.extend(f_payload[:cut])
        dir01.extend(f_dir[:cut])
        iat.extend(f_iat[:cut])
        lengths.append(cut)
        extra_kept.append(extra)
        app_keys.append(key)

    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    arrays = _to_arrays(payload, dir01, iat, offsets, display, app_keys, doc)
    return _CaptureFlows(
        sort_key=(rel.parent.name, rel.name),
        app=app,
        payload=arrays[0],
        dir01=arrays[1],
        iat=arrays[2],
        offsets=offsets,
        extra_kept=np.asarray(extra_kept, np.int64),
        n_flows=len(doc),
        n_background=n_background,
    )


def _prefix_cut(f_payload: list, t_max: int, display: str, key: str) -> tuple[int, int]:
    """Raw packets needed for the first ``t_max`` kept ones, and the kept ones after them."""
    try:
        nonzero = np.flatnonzero(np.asarray(f_payload, np.float64) > 0)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{display}: flow '{key}': L4_payload_bytes: {err}") from err
    if nonzero.size <= t_max:
        return len(f_payload), 0
    return int(nonzero[t_max - 1]) + 1, int(nonzero.size - t_max)


def _to_arrays(
    payload: list,
    dir01: list,
    iat: list,
    offsets: np.ndarray,
    display: str,
    app_keys: list[str],
    doc: dict,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat numpy arrays of the app flows, validated; errors name the offending flow."""
    try:
        a_payload = np.asarray(payload, np.float64)
        a_dir = np.asarray(dir01, np.float64)
        a_iat = np.asarray(iat, np.float64)
    except (TypeError, ValueError):
        for key in app_keys:
            for field in ("L4_payload_bytes", "packet_dir", "iat"):
                try:
                    np.asarray(doc[key]["packet_data"][field], np.float64)
                except (TypeError, ValueError) as err:
                    raise DatasetError(
                        f"{display}: flow '{key}': {field} holds non-numeric values ({err})"
                    ) from err
        raise DatasetError(f"{display}: packet lists hold non-numeric values") from None
    checks = (
        (
            ~np.isfinite(a_payload) | (a_payload < 0) | (a_payload >= MAX_PACKET_BYTES),
            f"L4_payload_bytes must be finite, >= 0 and below {MAX_PACKET_BYTES:.0f}",
        ),
        (~np.isin(a_dir, (0.0, 1.0)), "packet_dir must be 0 or 1"),
        (~np.isfinite(a_iat) | (a_iat < 0), "iat must be finite and >= 0"),
    )
    for bad, what in checks:
        flow = first_bad_segment(bad, offsets)
        if flow is not None:
            raise DatasetError(f"{display}: flow '{app_keys[flow]}': {what}")
    return a_payload, a_dir.astype(np.int8), a_iat


# ---------------------------------------------------------------------------------------------
# The whole dataset.


def read_mirage(
    path: Path,
    *,
    variant: str = "mirage19",
    curation: MirageCuration | None = None,
    t_max: int = T_MAX_DEFAULT,
    progress: bool = False,
    record_groups: bool = False,
) -> Flows:
    """Reads and curates a MIRAGE dataset.

    Args:
      path: extracted tree (any folder above the device/app folders), ``.tar.gz`` or
        ``.zip`` (nested zips are entered). Archives found inside a tree are read too, so
        point at the tree or at the archive, not at a folder holding both.
      variant: ``mirage19`` or ``mirage22`` (MIRAGE-22 also treats ``BF_activity ==
        "Unknown"`` as background; a flow without ``BF_activity`` is not background).
      curation: thresholds; defaults reproduce the paper's curation.
      t_max: packets kept per flow (>= 20).
      progress: show a tqdm bar over the capture files.
      record_groups: give every flow its capture file as group (``group_field``
        ``capture_file``), so folds keep a capture file whole.

    Returns:
      ``Flows`` with one class per app (sorted by name), sizes = L4 payload bytes,
      directions 0 -> +1 / 1 -> -1, ``n_packets`` = non-zero-payload packets in the stored
      series (MIRAGE-19 stores only the first 32 packets of a biflow).
    """
    if variant not in VARIANTS:
        raise DatasetError(f"unknown MIRAGE variant {variant!r}; expected one of {VARIANTS}")
    curation = curation or MirageCuration()
    path = Path(path)
    members = iter_json_members(path)
    if progress:
        from tqdm import tqdm

        members = tqdm(members, desc=f"reading {variant}", unit=" files")
    captures: list[_CaptureFlows] = []
    skipped: list[str] = []
    for display, rel, data in members:
        capture = parse_capture(data, display, rel, variant, t_max)
        if capture is None:
            skipped.append(display)
        else:
            captures.append(capture)
    if skipped:
        log.warning(
            "%s: skipped %d JSON files without a MIRAGE capture name (e.g. %s)",
            path,
            len(skipped),
            skipped[0],
        )
    if not captures:
        raise DatasetError(f"{path}: no MIRAGE capture files (*_<app>_*.json) found")
    captures.sort(key=lambda c: c.sort_key)
    flows = curate_captures(captures, path, variant, curation, t_max, n_skipped=len(skipped))
    return flows if record_groups else flows.with_groups(None)


def curate_captures(
    captures: list[_CaptureFlows],
    path: Path,
    variant: str,
    curation: MirageCuration,
    t_max: int,
    n_skipped: int = 0,
) -> Flows:
    """Applies the flow and class filters to parsed capture files and builds ``Flows``."""
    payload = np.concatenate([c.payload for c in captures])
    dir01 = np.concatenate([c.dir01 for c in captures])
    iat = np.concatenate([c.iat for c in captures])
    starts = np.cumsum([0] + [len(c.payload) for c in captures[:-1]])
    offsets = np.concatenate(
        [[0]] + [c.offsets[1:] + s for c, s in zip(captures, starts, strict=True)]
    ).astype(np.int64)
    apps = np.concatenate([np.full(len(c.offsets) - 1, c.app, dtype=object) for c in captures])
    capture_of = np.concatenate(
        [np.full(len(c.offsets) - 1, i, np.int64) for i, c in enumerate(captures)]
    )
    extra = np.concatenate([c.extra_kept for c in captures])

    sizes, directions, iats, k_offsets = drop_zero_payload(payload, dir01, iat, offsets)
    n_kept = np.diff(k_offsets) + extra
    long_enough = (n_kept > curation.min_packets) & (n_kept >= 1)
    names, app_ids = np.unique(apps[long_enough].astype(str), return_inverse=True)
    counts = np.bincount(app_ids, minlength=len(names))
    big = counts > curation.min_class_flows
    class_names = tuple(str(n) for n in names[big])
    remap = np.full(len(names), -1, np.int64)
    remap[big] = np.arange(int(big.sum()))
    flow_class = np.full(len(apps), -1, np.int64)
    flow_class[long_enough] = remap[app_ids]
    keep = flow_class >= 0

    n_raw = sum(c.n_flows for c in captures)
    n_background = sum(c.n_background for c in captures)
    provenance = {
        "reader": "mirage",
        "variant": variant,
        "source": str(Path(path).resolve()),
        "capture_files": len(captures),
        "skipped_files": n_skipped,
        "t_max": t_max,
        "curation": asdict(curation),
        "raw_flows": n_raw,
        "background_flows": n_background,
        "short_flows": int((~long_enough).sum()),
        "small_class_flows": int((long_enough & ~keep).sum()),
        "dropped_classes": [str(n) for n in names[~big]],
        "flows": int(keep.sum()),
    }
    if not keep.any():
        raise DatasetError(
            f"{path}: no flows left after curation ({n_raw} flows read, {n_background} "
            f"background, {provenance['short_flows']} with <= {curation.min_packets} payload "
            f"packets, classes with <= {curation.min_class_flows} flows dropped: "
            f"{provenance['dropped_classes']}); lower --min-packets / --min-class-flows?"
        )
    sel = np.flatnonzero(keep)
    k_lengths = np.diff(k_offsets)
    sel_offsets = np.concatenate([[0], np.cumsum(k_lengths[sel])]).astype(np.int64)
    take = concat_ranges(k_offsets[sel], k_lengths[sel])
    used, group_ids = np.unique(capture_of[sel], return_inverse=True)
    return flows_from_flat(
        sizes=sizes[take],
        directions=directions[take],
        iats=iats[take],
        offsets=sel_offsets,
        n_packets=n_kept[sel],
        labels=flow_class[sel],
        class_names=class_names,
        name=variant,
        provenance=provenance,
        t_max=t_max,
        groups=group_ids,
        group_names=["/".join(captures[i].sort_key) for i in used],
        group_field=CAPTURE_FILE,
    )
