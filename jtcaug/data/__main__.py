"""``python -m jtcaug.data``: dataset summary, download, synthetic MIRAGE-layout export.

    python -m jtcaug.data info DATASET [--json] [dataset flags]
    python -m jtcaug.data download mirage19|mirage22 [--root DIR] [--url URL] [--sha256 HEX]
    python -m jtcaug.data export-synthetic --out DIR [--scale S] [--seed N]
    python -m jtcaug.data from-pcap PCAP|DIR... --out FILE.parquet (--label NAME |
        --label-regex RE | --label-folder | --labels CSV) [--max-packets N] [...]

Errors print one line on stderr and exit with status 2 (bad input) or 1 (other I/O).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from jtcaug.data.args import add_dataset_arguments, load_from_args
from jtcaug.data.download import SOURCES, default_data_root, download_dataset
from jtcaug.data.flows import DatasetError
from jtcaug.data.folds import SPLIT, few_groups
from jtcaug.data.frompcap import LabelRule, pcap_to_table
from jtcaug.data.pcap import FlowOptions
from jtcaug.data.synthetic import export_mirage19

log = logging.getLogger("jtcaug.data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jtcaug.data", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="Table-4 summary and per-class counts of a dataset")
    add_dataset_arguments(info, positional=True)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")

    down = sub.add_parser("download", help="fetch and extract a public MIRAGE archive")
    down.add_argument("name", choices=sorted(SOURCES))
    down.add_argument(
        "--root",
        type=Path,
        default=None,
        help=f"data root (default: {default_data_root()}); files go to ROOT/NAME/",
    )
    down.add_argument("--url", default=None, help="alternative URL (a mirror)")
    down.add_argument("--sha256", default=None, help="expected SHA-256 of the archive")
    down.add_argument("--no-extract", action="store_true", help="only download and verify")
    down.add_argument("--quiet", action="store_true", help="no progress bar")

    export = sub.add_parser(
        "export-synthetic", help="write synthetic-mirage19 in the raw MIRAGE-2019 layout"
    )
    export.add_argument("--out", type=Path, required=True, help="output directory")
    export.add_argument("--scale", type=float, default=1.0, help="flow-count multiplier")
    export.add_argument("--seed", type=int, default=0, help="generator seed")
    export.add_argument("--quiet", action="store_true", help="no progress bar")

    pcap = sub.add_parser(
        "from-pcap", help="pcap/pcapng captures to a flow table that flows:FILE reads"
    )
    pcap.add_argument("inputs", nargs="+", type=Path, help="capture files or folders of them")
    pcap.add_argument("--out", type=Path, required=True, help="the flow table (.parquet)")
    pcap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    labels = pcap.add_argument_group("labels (exactly one)")
    labels.add_argument("--label", default=None, help="one label for every flow")
    labels.add_argument(
        "--label-regex",
        default=None,
        help="regex on the capture's path below its input folder; the label is the group "
        "named 'label', else group 1, else the match",
    )
    labels.add_argument(
        "--label-folder", action="store_true", help="the first folder below the input folder"
    )
    labels.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="CSV: label plus flow_id, or src_ip,src_port,dst_ip,dst_port,proto "
        "(optional capture_file)",
    )
    opts = FlowOptions()
    flows_group = pcap.add_argument_group("flows")
    flows_group.add_argument(
        "--max-packets",
        type=int,
        default=opts.max_packets,
        help="packets stored per flow (default: %(default)s)",
    )
    flows_group.add_argument(
        "--idle-timeout",
        type=float,
        default=opts.idle_timeout,
        help="seconds of silence that end a flow (default: %(default)s)",
    )
    flows_group.add_argument(
        "--active-timeout",
        type=float,
        default=opts.active_timeout,
        help="longest flow in seconds; the next packet starts a new one (default: %(default)s)",
    )
    flows_group.add_argument(
        "--drop-zero-payload",
        action="store_true",
        help="store no packet without payload; IATs span the dropped ones (MIRAGE curation)",
    )
    flows_group.add_argument(
        "--min-packets",
        type=int,
        default=opts.min_packets,
        help="leave out flows with fewer stored packets (default: %(default)s)",
    )
    pcap.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def format_summary(summary: dict) -> str:
    lines = [
        f"dataset   {summary['dataset']}",
        f"classes   {summary['classes']}",
        f"flows     {summary['flows']}",
        f"min/max   {summary['min_flows_per_class']} / {summary['max_flows_per_class']} "
        "flows per class",
        f"rho       {summary['rho']:.2f}",
        f"packets   {summary['mean_packets_per_flow']:.1f} mean per flow",
        "",
        "per class:",
    ]
    width = max((len(n) for n in summary["per_class"]), default=0)
    ranked = sorted(summary["per_class"].items(), key=lambda kv: (-kv[1], kv[0]))
    if "predefined_splits" in summary:
        lines.insert(6, f"splits    {summary['predefined_splits']} predefined (fold i = split i)")
    groups = summary.get("groups_per_class")
    if groups is not None:
        lines.insert(6, f"groups    {summary['groups']} ({summary['group_field']})")
        lines[-1] = f"per class:{'flows':>{width + 2}}{'groups':>8}"
        lines += [f"  {n:<{width}}  {c:>8}{groups[n]:>8}" for n, c in ranked]
    else:
        lines += [f"  {name:<{width}}  {count:>8}" for name, count in ranked]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        if args.command == "info":
            flows = load_from_args(args, progress=sys.stderr.isatty())
            summary = flows.summary()
            print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
            if flows.groups is not None and (few := few_groups(flows, len(SPLIT))):
                log.warning(
                    "classes with fewer %s groups than the %d parts of a fold cannot appear "
                    "in every part: %s",
                    flows.group_field,
                    len(SPLIT),
                    ", ".join(few),
                )
        elif args.command == "download":
            result = download_dataset(
                args.name,
                args.root,
                url=args.url,
                sha256=args.sha256,
                do_extract=not args.no_extract,
                progress=not args.quiet,
            )
            print(f"archive  {result['archive']} ({result['size']} bytes)")
            print(f"sha256   {result['sha256']} ({result['sha256_origin']})")
            for path in result["extracted"]:
                print(f"data     {path}")
        elif args.command == "export-synthetic":
            result = export_mirage19(
                args.out, scale=args.scale, seed=args.seed, progress=not args.quiet
            )
            print(json.dumps(result, indent=2))
        elif args.command == "from-pcap":
            result = pcap_to_table(
                args.inputs,
                args.out,
                LabelRule(
                    constant=args.label,
                    regex=args.label_regex,
                    folder=args.label_folder,
                    csv=args.labels,
                ),
                FlowOptions(
                    max_packets=args.max_packets,
                    idle_timeout=args.idle_timeout,
                    active_timeout=args.active_timeout,
                    drop_zero_payload=args.drop_zero_payload,
                    min_packets=args.min_packets,
                ),
                overwrite=args.overwrite,
                progress=not args.quiet and sys.stderr.isatty(),
            )
            print(json.dumps(result, indent=2))
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
