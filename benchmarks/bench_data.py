"""Speed of the data layer at MIRAGE-19 size (issue 3, "Speed"), of flow tables in each
layout and of from-pcap (issue 19).

Run: ``python benchmarks/bench_data.py [--scale 1.0] [--workdir DIR] [--keep]
[--parts mirage,tables,pcap] [--table-flows 150000] [--pcap-packets 1000000]``. Times

1. synthetic generation of ``synthetic-mirage19`` (64,172 flows at scale 1);
2. reading + curating the raw MIRAGE-19 tree the generator exports (1,642 files, ~122k raw
   flows at scale 1), cache bypassed;
3. a cached reload through ``load("mirage19")`` (source signature + entry verification).

Each figure comes with a reference measured in the same run on the same data: numpy drawing
as many normal variates as the generator's largest array; bare ``json.loads`` of every capture
file (the parse floor the reader cannot beat); ``np.load`` of the same arrays stored
uncompressed and unverified. Goals on a 2-core CPU: generation < 10 s, read < 60 s,
cached reload < 2 s. The export itself is timed for information only.

``tables``: a 150,000-flow table written in each layout of ``layouts.py`` (Parquet, and the
CSV nfstream writes), read through ``load("flows:...")`` with the cache bypassed, then a
cached reload; references: ``pyarrow.parquet.read_table`` (or ``pandas.read_csv``) of the
same file, and ``np.load`` of the arrays. Goals: read < 10 s, cached reload < 2 s.

``pcap``: a generated Ethernet capture of >= 1M TCP/UDP packets over many interleaved
flows, turned into flows (``pcap.build_flows``) and into a table (``pcap_to_table``);
reference: dpkt's own raw read of the same file (``dpkt.pcap.Reader`` with every frame
decoded by ``dpkt.ethernet.Ethernet``). Goal: flow building at >= 0.8 of that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from jtcaug.data import MirageCuration, export_mirage19, generate, load, read_mirage
from jtcaug.data.cache import entry_path, source_identity, source_signature, write_entry

GOALS = {"generation": 10.0, "raw read + curation": 60.0, "cached reload": 2.0}
TABLE_GOALS = {"read": 10.0, "cached reload": 2.0}
PCAP_GOAL_RATIO = 0.8


def timed(fn, repeats: int = 1):
    """(median seconds, last result) over ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# ---------------------------------------------------------------------------------------------
# Inputs written for the run.


def write_layout_table(path: Path, layout: str, n_flows: int, seed: int = 0) -> Path:
    """A table of ``n_flows`` random flows in ``layout`` (Parquet, or CSV for ``.csv``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    width, pad = {"jtcaug": (100, None), "nfstream": (20, -1), "cesnet-ppi": (30, 0),
                  "tcbench": (32, None)}[layout]  # fmt: skip
    lengths = rng.integers(3 if pad is not None else 11, width + 1, n_flows)
    total = int(lengths.sum())
    sizes = rng.integers(0, 1461, total).astype(np.float64)
    dirs = rng.choice([1, -1], total)
    iats = rng.exponential(0.02, total)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    iats[offsets[:-1]] = 0.0
    labels = np.array([f"app{k:02d}" for k in range(20)], object)[rng.integers(0, 20, n_flows)]

    def padded(values, fill):
        out = np.full((n_flows, width), fill, np.float64)
        pos = np.arange(width)[None, :] < lengths[:, None]
        out[pos] = values
        return out

    def ragged(values):
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values))

    if layout == "jtcaug":
        columns = {"label": labels, "size": ragged(sizes), "direction": ragged(dirs),
                   "iat": ragged(iats)}  # fmt: skip
    elif layout == "nfstream":
        columns = {
            "label": labels,
            "splt_ps": list(padded(sizes, -1)),
            "splt_direction": list(padded((1 - dirs) // 2, -1)),
            "splt_piat_ms": list(padded(iats * 1e3, -1)),
        }
    elif layout == "cesnet-ppi":
        ppi = np.stack([padded(iats * 1e3, 0), padded(dirs, 0), padded(sizes, 0)], axis=1)
        columns = {"APP": labels, "PPI": [row.tolist() for row in ppi]}
    else:
        times = np.cumsum(iats)
        times -= np.repeat(times[offsets[:-1]], lengths)
        columns = {"app": labels, "pkts_size": ragged(sizes), "pkts_dir": ragged((1 - dirs) // 2),
                   "timetofirst": ragged(times)}  # fmt: skip
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.DataFrame(
            {
                k: v
                if k in ("label", "APP", "app")
                else ["[" + ", ".join(f"{x:g}" for x in row) + "]" for row in v]
                for k, v in columns.items()
            }  # fmt: skip
        )
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.table(columns), path)
    return path


def write_capture(path: Path, n_packets: int, seed: int = 0) -> tuple[int, int]:
    """An Ethernet pcap of ``n_packets`` TCP/UDP packets (IPv4, 1 in 10 flows IPv6) over
    interleaved flows of about 50 packets; frames are cut after 40 payload bytes, the IP
    length fields keep the true sizes. Returns ``(packets, flows)``."""
    rng = np.random.default_rng(seed)
    active, n_flows = 512, 0
    remaining = np.zeros(active, np.int64)
    flow_info: list = [None] * active
    pick = rng.integers(0, active, n_packets)
    payload = rng.integers(0, 1461, n_packets)
    to_server = rng.random(n_packets) < 0.5
    gaps = rng.exponential(2e-4, n_packets)
    record = struct.Struct("<IIII")
    eth4, eth6 = b"\x04" * 6 + b"\x02" * 6 + b"\x08\x00", b"\x04" * 6 + b"\x02" * 6 + b"\x86\xdd"
    t = 1.7e9
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        chunks = []
        for k in range(n_packets):
            slot = int(pick[k])
            if remaining[slot] == 0:
                n_flows += 1
                udp = n_flows % 5 == 0
                v6 = n_flows % 10 == 3
                size = 16 if v6 else 4
                client = n_flows.to_bytes(size, "big")
                server = (10**6 + n_flows % 97).to_bytes(size, "big")
                flow_info[slot] = (udp, v6, client, server, 1024 + n_flows % 60000, 443)
                remaining[slot] = int(rng.integers(10, 90))
            remaining[slot] -= 1
            udp, v6, client, server, cport, sport = flow_info[slot]
            src, dst, sp, dp = (client, server, cport, sport) if to_server[k] else (
                server, client, sport, cport)  # fmt: skip
            n = int(payload[k])
            if udp:
                l4 = struct.pack(">HHHH", sp, dp, 8 + n, 0)
            else:
                l4 = struct.pack(">HHIIBBHHH", sp, dp, 0, 0, 5 << 4, 0x18, 65535, 0, 0)
            proto = 17 if udp else 6
            if v6:
                ip = struct.pack(">IHBB", 6 << 28, len(l4) + n, proto, 64) + src + dst
                frame = eth6 + ip + l4
            else:
                ip = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(l4) + n, 0, 0, 64, proto, 0)
                frame = eth4 + ip + src + dst + l4
            frame += b"\x00" * min(n, 40)
            t += float(gaps[k])
            sec = int(t)
            chunks.append(record.pack(sec, int((t - sec) * 1e6), len(frame), len(frame) + n
                                      - min(n, 40)) + frame)  # fmt: skip
            if len(chunks) >= 65536:
                fh.write(b"".join(chunks))
                chunks.clear()
        fh.write(b"".join(chunks))
    return n_packets, n_flows


def bench_mirage(args, work: Path) -> None:
    curation = MirageCuration(min_class_flows=0 if args.scale < 1 else 100)
    rows = []
    gen_s, flows = timed(lambda: generate("synthetic-mirage19", scale=args.scale), args.repeats)
    rng = np.random.default_rng(0)
    ref_s, _ = timed(lambda: rng.normal(size=(flows.n_flows, 40 * 8)), args.repeats)
    rows.append(("generation", gen_s, "numpy normal draw, same flows x 320", ref_s))

    export_s, summary = timed(lambda: export_mirage19(work, scale=args.scale))
    tree = Path(summary["path"])
    size_mb = sum(p.stat().st_size for p in tree.rglob("*.json")) / 1e6
    print(
        f"export: {summary['files']} files, {summary['flows']} raw flows "
        f"({summary['kept_flows']} kept), {size_mb:.0f} MB in {export_s:.1f} s"
    )

    files = sorted(tree.rglob("*.json"))

    def parse_all():
        return [json.loads(p.read_bytes()) for p in files]

    # Parse floor before and after the read, best of both: page-cache warmth is shared.
    parse_s, _ = timed(parse_all)
    read_s, read = timed(lambda: read_mirage(tree, curation=curation))
    parse_s = min(parse_s, timed(parse_all)[0])
    assert read.n_flows == flows.n_flows and np.array_equal(read.iats, flows.iats)
    rows.append(("raw read + curation", read_s, "json.loads of every file", parse_s))

    cache_dir = work / "cache"
    params = {
        "source": source_signature(tree),
        "curation": [curation.min_packets, curation.min_class_flows],
        "t_max": read.t_max,
    }
    entry = entry_path("mirage19", params, cache_dir)
    grouped = read_mirage(tree, curation=curation, record_groups=True)
    write_entry(entry, grouped, source=source_identity("mirage19", params))

    def reload():
        return load("mirage19", data_dir=work, curation=curation, cache_dir=cache_dir)

    reload_s, again = timed(reload, args.repeats)
    assert np.array_equal(again.sizes, read.sizes)
    plain = work / "plain.npz"
    np.savez(plain, sizes=read.sizes, directions=read.directions, iats=read.iats,
             n_packets=read.n_packets, labels=read.labels)  # fmt: skip

    def plain_load():
        with np.load(plain) as npz:
            return {k: npz[k] for k in npz.files}

    plain_s, _ = timed(plain_load, args.repeats)
    rows.append(("cached reload", reload_s, "np.load, uncompressed, unverified", plain_s))
    print(f"cache entry: {entry.stat().st_size / 1e6:.1f} MB")

    header = f"{'step':<22}{'seconds':>9}{'goal':>7}{'x goal':>8}   {'reference':<39}"
    print(f"\n{header}{'s':>7}{'ratio':>8}")
    for name, seconds, ref_name, ref_seconds in rows:
        goal = GOALS[name] * max(args.scale, 0.0)
        print(
            f"{name:<22}{seconds:>9.2f}{goal:>7.1f}{seconds / goal:>8.2f}   "
            f"{ref_name:<39}{ref_seconds:>7.2f}{seconds / ref_seconds:>8.1f}"
        )


def bench_tables(args, work: Path) -> None:
    """Each layout: a cold read through ``load`` and a cached reload, with references."""
    import pandas as pd
    import pyarrow.parquet as pq

    cache_dir = work / "table-cache"
    print(f"\nflow tables: {args.table_flows} flows per table, cache bypassed for the read")
    print(
        f"{'layout':<22}{'MB':>6}{'read s':>8}{'goal':>6}{'reload s':>9}{'goal':>6}   "
        f"{'reference':<28}{'s':>6}{'ratio':>7}"
    )
    cases = [
        ("jtcaug", ".parquet"),
        ("nfstream", ".parquet"),
        ("nfstream", ".csv"),
        ("cesnet-ppi", ".parquet"),
        ("tcbench", ".parquet"),
    ]
    for layout, suffix in cases:
        path = write_layout_table(work / f"{layout}{suffix}", layout, args.table_flows)
        spec = f"flows:{path}"
        read_s, flows = timed(lambda spec=spec: load(spec, cache=False))
        assert flows.n_flows == args.table_flows
        load(spec, cache_dir=cache_dir)  # fills the cache
        reload_s, again = timed(lambda spec=spec: load(spec, cache_dir=cache_dir), args.repeats)
        assert np.array_equal(again.sizes, flows.sizes)
        if suffix == ".csv":
            ref_name, ref_s = "pandas.read_csv", timed(lambda p=path: pd.read_csv(p))[0]
        else:
            ref_name, ref_s = "pyarrow read_table", timed(lambda p=path: pq.read_table(p))[0]
        size_mb = path.stat().st_size / 1e6
        print(
            f"{layout + ' ' + suffix[1:]:<22}{size_mb:>6.0f}{read_s:>8.2f}"
            f"{TABLE_GOALS['read']:>6.0f}{reload_s:>9.2f}{TABLE_GOALS['cached reload']:>6.0f}   "
            f"{ref_name:<28}{ref_s:>6.2f}{read_s / ref_s:>7.1f}"
        )
        path.unlink()


def bench_pcap(args, work: Path) -> None:
    """from-pcap against dpkt's own raw read of the same capture."""
    import dpkt

    from jtcaug.data.frompcap import LabelRule, pcap_to_table
    from jtcaug.data.pcap import FlowOptions, build_flows

    path = work / "bench.pcap"
    n_packets, n_flows = write_capture(path, args.pcap_packets)
    size_mb = path.stat().st_size / 1e6
    print(f"\ncapture: {n_packets} packets, {n_flows} flows, {size_mb:.0f} MB")

    def dpkt_raw():
        with open(path, "rb") as fh:
            n = 0
            for _, buf in dpkt.pcap.Reader(fh):
                dpkt.ethernet.Ethernet(buf)
                n += 1
        return n

    def dpkt_records():
        with open(path, "rb") as fh:
            return sum(1 for _ in dpkt.pcap.Reader(fh))

    # Interleaved, best of the repeats: the machine is shared and its load moves.
    raw, ours, records = [], [], []
    for _ in range(args.repeats):
        raw.append(timed(dpkt_raw)[0])
        seconds, capture = timed(lambda: build_flows(path, FlowOptions()))
        ours.append(seconds)
        records.append(timed(dpkt_records)[0])
    assert capture.counts["packets"] == n_packets and len(capture.sizes) == n_flows
    table_s, summary = timed(
        lambda: pcap_to_table(
            [path], work / "bench.parquet", LabelRule(constant="x"), overwrite=True
        )  # fmt: skip
    )
    assert summary["flows"] == n_flows
    raw_s, ours_s, records_s = min(raw), min(ours), min(records)
    rate = n_packets / ours_s
    print(f"{'step':<42}{'seconds':>9}{'packets/s':>12}{'x dpkt raw':>12}")
    for name, seconds in (
        ("dpkt raw read (Reader + Ethernet decode)", raw_s),
        ("dpkt Reader alone (no decode)", records_s),
        ("from-pcap flow building (build_flows)", ours_s),
        ("from-pcap to a Parquet table", table_s),
    ):
        print(f"{name:<42}{seconds:>9.2f}{n_packets / seconds:>12,.0f}{raw_s / seconds:>12.2f}")
    verdict = "meets" if raw_s / ours_s >= PCAP_GOAL_RATIO else "misses"
    print(
        f"flow building runs at {rate:,.0f} packets/s, {raw_s / ours_s:.2f} x dpkt's raw read "
        f"(goal >= {PCAP_GOAL_RATIO}: {verdict} it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the tree")
    parser.add_argument("--keep", action="store_true", help="keep the exported tree")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast steps")
    parser.add_argument("--parts", default="mirage,tables,pcap", help="which benchmarks")
    parser.add_argument("--table-flows", type=int, default=150_000)
    parser.add_argument("--pcap-packets", type=int, default=1_000_000)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"cpus: {os.cpu_count()} (affinity {len(os.sched_getaffinity(0))})")
    work = Path(tempfile.mkdtemp(prefix="bench-data-", dir=args.workdir))
    try:
        if "mirage" in parts:
            bench_mirage(args, work)
        if "tables" in parts:
            bench_tables(args, work)
        if "pcap" in parts:
            bench_pcap(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
