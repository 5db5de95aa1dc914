"""Speed of the data layer at MIRAGE-19 size (issue 3, "Speed").

Run: ``python benchmarks/bench_data.py [--scale 1.0] [--workdir DIR] [--keep]``. Times

1. synthetic generation of ``synthetic-mirage19`` (64,172 flows at scale 1);
2. reading + curating the raw MIRAGE-19 tree the generator exports (1,642 files, ~122k raw
   flows at scale 1), cache bypassed;
3. a cached reload through ``load("mirage19")`` (source signature + entry verification).

Each figure comes with a reference measured in the same run on the same data: numpy drawing
as many normal variates as the generator's largest array; bare ``json.loads`` of every capture
file (the parse floor the reader cannot beat); ``np.load`` of the same arrays stored
uncompressed and unverified. Goals on a 2-core CPU: generation < 10 s, read < 60 s,
cached reload < 2 s. The export itself is timed for information only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from jtcaug.data import MirageCuration, export_mirage19, generate, load, read_mirage
from jtcaug.data.cache import entry_path, source_identity, source_signature, write_entry

GOALS = {"generation": 10.0, "raw read + curation": 60.0, "cached reload": 2.0}


def timed(fn, repeats: int = 1):
    """(median seconds, last result) over ``repeats`` calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the tree")
    parser.add_argument("--keep", action="store_true", help="keep the exported tree")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the fast steps")
    args = parser.parse_args()
    curation = MirageCuration(min_class_flows=0 if args.scale < 1 else 100)
    work = Path(tempfile.mkdtemp(prefix="bench-data-", dir=args.workdir))
    rows = []
    try:
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
        write_entry(entry, read, source=source_identity("mirage19", params))

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
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    header = f"{'step':<22}{'seconds':>9}{'goal':>7}{'x goal':>8}   {'reference':<39}"
    print(f"\n{header}{'s':>7}{'ratio':>8}")
    for name, seconds, ref_name, ref_seconds in rows:
        goal = GOALS[name] * max(args.scale, 0.0)
        print(
            f"{name:<22}{seconds:>9.2f}{goal:>7.1f}{seconds / goal:>8.2f}   "
            f"{ref_name:<39}{ref_seconds:>7.2f}{seconds / ref_seconds:>8.1f}"
        )


if __name__ == "__main__":
    main()
