"""``python -m jtcaug.data from-pcap``: capture files to a flow table ``flows:`` reads as is.

The table (Parquet, one row per flow, the ``jtcaug`` layout of ``layouts.py``) holds
``label``, ``size`` (L4 payload bytes), ``direction`` (+1 client to server, -1 back),
``iat`` (s since the flow's previous stored packet, first 0), ``n_packets`` (all packets of
the flow), ``capture_file`` (the capture, relative to its input folder: a group field for
``--group-field capture_file``), ``flow_id`` (``<capture_file>#<k>``, k in order of first
packet), ``proto`` (6 TCP / 17 UDP), ``client_ip``, ``client_port``, ``server_ip``,
``server_port`` and ``start_time`` (s since the epoch).

Labels come from exactly one rule: a constant (``--label``), a regular expression on the
capture's relative path (``--label-regex``; the group named ``label``, else group 1, else
the match), the first folder below the input folder (``--label-folder``: one folder per
class), or a CSV (``--labels``) with a ``label`` column and either ``flow_id`` or the
5-tuple ``src_ip, src_port, dst_ip, dst_port, proto`` (matched in both directions;
optional ``capture_file`` narrows a row to one capture).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jtcaug.data.flows import DatasetError
from jtcaug.data.pcap import CaptureFlows, FlowOptions, build_flows
from jtcaug.io import atomic_write_with

log = logging.getLogger("jtcaug.data")

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
_PROTO_NAMES = {"tcp": 6, "udp": 17, "6": 6, "17": 17}


@dataclass(frozen=True)
class LabelRule:
    """Exactly one of: ``constant``, ``regex``, ``folder`` (True) or ``csv`` (a path)."""

    constant: str | None = None
    regex: str | None = None
    folder: bool = False
    csv: Path | None = None

    def __post_init__(self) -> None:
        given = [
            flag
            for flag, value in (
                ("--label", self.constant),
                ("--label-regex", self.regex),
                ("--label-folder", self.folder or None),
                ("--labels", self.csv),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise DatasetError(
                "from-pcap needs exactly one label rule: --label NAME, --label-regex RE, "
                f"--label-folder or --labels CSV (given: {', '.join(given) or 'none'})"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as err:
                raise DatasetError(f"--label-regex {self.regex!r}: {err}") from err


def find_captures(inputs: list[Path]) -> list[tuple[Path, str, Path]]:
    """``(file, capture name, input root)`` of every capture the inputs name, sorted.

    A folder contributes every ``.pcap``/``.pcapng``/``.cap`` below it, named by its path
    relative to the folder; a file is named by its own name.
    """
    found = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES
            )
            if not files:
                raise DatasetError(f"{path}: no {'/'.join(CAPTURE_SUFFIXES)} files below it")
            found += [(p, p.relative_to(path).as_posix(), path) for p in files]
        elif path.is_file():
            found.append((path, path.name, path.parent))
        else:
            raise DatasetError(f"{path}: no such file or directory")
    names = Counter(name for _, name, _ in found)
    clash = [n for n, k in names.items() if k > 1]
    if clash:
        raise DatasetError(f"two inputs hold a capture named {clash[0]!r}; pass their folder")
    return found


def file_label(rule: LabelRule, name: str, file: Path, root: Path) -> str | None:
    """The label a capture gets from a constant, regex or folder rule (None: no match)."""
    if rule.constant is not None:
        return rule.constant
    if rule.folder:
        parts = Path(name).parts
        return parts[0] if len(parts) > 1 else file.parent.name
    match = re.search(rule.regex, name)
    if match is None:
        return None
    if "label" in match.re.groupindex:
        return match.group("label")
    return match.group(1) if match.re.groups else match.group(0)


def _ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def _endpoint_key(proto, ip_a, port_a, ip_b, port_b) -> tuple:
    a, b = (str(ip_a), int(port_a)), (str(ip_b), int(port_b))
    return (int(proto), *(a + b if a <= b else b + a))


def read_label_csv(path: Path) -> tuple[dict, dict, int]:
    """``({flow_id: label}, {(capture or None, 5-tuple key): label}, rows)`` of a CSV."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError(f"--labels {path}: unreadable CSV: {err}") from err
    cols = set(frame.columns)
    five = {"src_ip", "src_port", "dst_ip", "dst_port", "proto"}
    if "label" not in cols or not ("flow_id" in cols or five <= cols):
        raise DatasetError(
            f"--labels {path}: needs a label column and either flow_id or "
            f"{sorted(five)}; it has {sorted(cols)}"
        )
    by_id, by_tuple = {}, {}
    for i, row in enumerate(frame.to_dict("records")):
        if "flow_id" in cols and row["flow_id"]:
            by_id[row["flow_id"]] = row["label"]
            continue
        try:
            proto = _PROTO_NAMES[row["proto"].strip().lower()]
            key = _endpoint_key(
                proto,
                ipaddress.ip_address(row["src_ip"].strip()),
                int(row["src_port"]),
                ipaddress.ip_address(row["dst_ip"].strip()),
                int(row["dst_port"]),
            )
        except (KeyError, ValueError) as err:
            raise DatasetError(
                f"--labels {path}: row {i} (line {i + 2}): bad 5-tuple ({err}); proto must be "
                "tcp/udp/6/17"
            ) from err
        by_tuple[(row.get("capture_file") or None, key)] = row["label"]
    return by_id, by_tuple, len(frame)


def capture_rows(capture: CaptureFlows, name: str) -> dict[str, list]:
    """One capture's flows as table columns (module docstring), labels not yet set."""
    starts = capture.start
    return {
        "flow_id": [f"{name}#{k}" for k in range(len(starts))],
        "capture_file": [name] * len(starts),
        "proto": [t[0] for t in capture.tuples],
        "client_ip": [_ip_text(t[1]) for t in capture.tuples],
        "client_port": [t[2] for t in capture.tuples],
        "server_ip": [_ip_text(t[3]) for t in capture.tuples],
        "server_port": [t[4] for t in capture.tuples],
        "start_time": list(starts),
        "n_packets": list(capture.n_packets),
        "size": capture.sizes,
        "direction": capture.dirs,
        "iat": [np.diff(np.asarray(t, np.float64), prepend=t[0]).tolist() for t in capture.times],
    }


def label_rows(rows: dict[str, list], rule: LabelRule, csv: tuple | None) -> list:
    """Per-flow labels from the CSV (None where no row matches)."""
    by_id, by_tuple, _ = csv
    out = []
    for i, flow_id in enumerate(rows["flow_id"]):
        label = by_id.get(flow_id)
        if label is None and by_tuple:
            key = _endpoint_key(
                rows["proto"][i],
                ipaddress.ip_address(rows["client_ip"][i]),
                rows["client_port"][i],
                ipaddress.ip_address(rows["server_ip"][i]),
                rows["server_port"][i],
            )
            label = by_tuple.get((rows["capture_file"][i], key), by_tuple.get((None, key)))
        out.append(label)
    return out


def pcap_to_table(
    inputs: list[Path],
    out: Path,
    rule: LabelRule,
    options: FlowOptions | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Writes the flow table of every capture ``inputs`` name to ``out`` (atomically).

    Returns a summary: captures, packets, flows written, flows per label, skipped packets
    by reason, unlabelled flows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    options = options or FlowOptions()
    out = Path(out)
    if out.exists() and not overwrite:
        raise DatasetError(f"--out {out}: exists; remove it or pass --overwrite")
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise DatasetError(f"--out {out}: the flow table is Parquet; name it *.parquet")
    captures = find_captures(inputs)
    csv = read_label_csv(rule.csv) if rule.csv is not None else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit=" pkt", unit_scale=True, desc="from-pcap")
    columns: dict[str, list] = {}
    skipped: Counter = Counter()
    n_packets = n_flows = unlabelled = 0
    no_label_files = []
    for file, name, root in captures:
        label = None if csv else file_label(rule, name, file, root)
        if csv is None and label is None:
            no_label_files.append(name)
            continue
        done = [0]

        def advance(step: int, done=done) -> None:
            if bar is not None:
                bar.update(step - done[0])
                done[0] = step

        capture = build_flows(file, options, progress=advance)
        counts = dict(capture.counts)
        advance(counts["packets"])
        if counts["packets"] == 0:
            raise DatasetError(f"{file}: the capture holds no packets")
        n_packets += counts.pop("packets")
        n_flows += counts.pop("flows")
        skipped.update(counts)
        rows = capture_rows(capture, name)
        rows["label"] = label_rows(rows, rule, csv) if csv else [label] * len(rows["flow_id"])
        for key, values in rows.items():
            columns.setdefault(key, []).extend(values)
    if bar is not None:
        bar.close()
    if no_label_files:
        raise DatasetError(
            f"--label-regex {rule.regex!r} matches no label in {len(no_label_files)} of "
            f"{len(captures)} captures (e.g. {no_label_files[0]})"
        )
    total = len(columns.get("label", []))
    if total == 0:
        raise DatasetError(
            f"no complete flow in {len(captures)} capture(s): {n_packets} packets, "
            f"{n_flows} flows, skipped {dict(skipped) or 'none'}"
            f"{'; lower --min-packets?' if skipped.get('short flows') else ''}"
        )
    if csv is not None:
        keep = [i for i, lab in enumerate(columns["label"]) if lab is not None]
        unlabelled = total - len(keep)
        if not keep:
            raise DatasetError(
                f"--labels {rule.csv}: its {csv[2]} rows match none of the {total} flows "
                f"({len(csv[0])} by flow_id, {len(csv[1])} by 5-tuple)"
            )
        if unlabelled:
            log.warning("%d of %d flows match no row of %s: left out", unlabelled, total, rule.csv)
            columns = {k: [v[i] for i in keep] for k, v in columns.items()}
    table = pa.table(
        {
            **{k: columns[k] for k in ("label", "capture_file", "flow_id", "proto")},
            **{k: columns[k] for k in ("client_ip", "client_port", "server_ip", "server_port")},
            "start_time": pa.array(columns["start_time"], pa.float64()),
            "n_packets": pa.array(columns["n_packets"], pa.int64()),
            "size": pa.array(columns["size"], pa.list_(pa.float32())),
            "direction": pa.array(columns["direction"], pa.list_(pa.int8())),
            "iat": pa.array(columns["iat"], pa.list_(pa.float64())),
        }
    )
    try:
        atomic_write_with(out, lambda tmp: pq.write_table(table, tmp))
    except OSError as err:
        raise DatasetError(f"--out {out}: cannot write there: {err.strerror}") from err
    return {
        "out": str(out),
        "captures": len(captures),
        "packets": n_packets,
        "flows": table.num_rows,
        "per_label": dict(sorted(Counter(columns["label"]).items())),
        "skipped_packets": {k: v for k, v in skipped.items() if k != "short flows"},
        "short_flows": skipped.get("short flows", 0),
        "unlabelled_flows": unlabelled,
    }
