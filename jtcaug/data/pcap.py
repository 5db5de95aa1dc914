"""Packet captures to flows: the core of ``python -m jtcaug.data from-pcap``.

Bidirectional flows on the 5-tuple (protocol, both addresses, both ports) of TCP and UDP
over IPv4 and IPv6. The sender of a flow's first packet is its client (direction +1). A
flow ends when it idles longer than ``idle_timeout`` or lasts longer than
``active_timeout`` (seconds); the next packet of that 5-tuple starts a new flow. Each flow
keeps its first ``max_packets`` packets: L4 payload size (bytes, from the IP length
fields, so a short snap length does not shrink it), direction and time; ``n_packets``
counts them all. With ``drop_zero_payload``, packets without payload (bare ACKs, SYNs) are
not stored and the time between stored packets spans them, as in the MIRAGE curation.
Retransmissions are packets like any other.

Classic pcap (micro- and nanosecond, either byte order) is read record by record from a
memory map, which checks every record for truncation; pcapng goes through ``dpkt``. Link
types: Ethernet (with 802.1Q/802.1ad tags), raw IP, Linux cooked (SLL, SLL2), BSD loopback.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jtcaug.data.flows import DatasetError

PROTO_TCP, PROTO_UDP = 6, 17
# Link-layer header types (tcpdump.org/linktypes.html) handled here.
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_RAW_BSD = (12, 14)
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_IPV4, LINKTYPE_IPV6 = 113, 276, 228, 229
_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
# IPv6 extension headers that sit between the fixed header and TCP/UDP.
_IPV6_EXT = {0, 43, 60, 135, 139, 140}
_IPV6_FRAGMENT = 44


@dataclass(frozen=True)
class FlowOptions:
    """How packets become flows (module docstring).

    Attributes:
      max_packets: packets stored per flow (>= 1).
      idle_timeout, active_timeout: seconds (> 0).
      drop_zero_payload: do not store packets without L4 payload.
      min_packets: flows with fewer stored packets are left out (>= 1).
    """

    max_packets: int = 100
    idle_timeout: float = 120.0
    active_timeout: float = 1800.0
    drop_zero_payload: bool = False
    min_packets: int = 1

    def __post_init__(self) -> None:
        if self.max_packets < 1 or self.min_packets < 1:
            raise DatasetError(
                f"--max-packets and --min-packets must be >= 1, got {self.max_packets}, "
                f"{self.min_packets}"
            )
        if not (self.idle_timeout > 0 and self.active_timeout > 0):
            raise DatasetError(
                f"--idle-timeout and --active-timeout must be > 0 s, got {self.idle_timeout}, "
                f"{self.active_timeout}"
            )


@dataclass
class CaptureFlows:
    """The flows of one capture, in order of their first packet.

    ``tuples``: ``(proto, client ip, client port, server ip, server port)`` per flow, ips
    as text; ``start``: first packet time (s since the epoch); ``sizes``/``dirs``/``times``:
    per flow, the stored packets (bytes, +1/-1, s since the epoch); ``n_packets``: every
    packet of the flow. ``counts`` tallies the packets read and those skipped, by reason.
    """

    path: Path
    tuples: list = field(default_factory=list)
    start: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    dirs: list = field(default_factory=list)
    times: list = field(default_factory=list)
    n_packets: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Capture files -> (link type, records).


def open_capture(path: Path) -> tuple[int, int, Iterator[tuple[float, bytes]]]:
    """``(link type, size in bytes, iterator of (timestamp s, frame bytes))``.

    Raises ``DatasetError`` for a file that is not a capture, an empty one (no packets are
    an error only later, when no flow comes out) and, while iterating, a truncated record.
    """
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise DatasetError(f"{path}: cannot read: {err.strerror}") from err
    with fh:
        head = fh.read(24)
        size = fh.seek(0, 2)
    if head[:4] in _PCAP_MAGIC:
        if len(head) < 24:
            raise DatasetError(f"{path}: truncated pcap file header ({len(head)} of 24 bytes)")
        endian, tick = _PCAP_MAGIC[head[:4]]
        linktype = struct.unpack(endian + "I", head[20:24])[0] & 0x0FFFFFFF
        return linktype, size, _pcap_records(path, endian, tick, size)
    if head[:4] == _PCAPNG_MAGIC:
        return _open_pcapng(path, size)
    raise DatasetError(
        f"{path}: not a pcap or pcapng capture (starts with {head[:4].hex() or 'nothing'})"
    )


def _pcap_records(path: Path, endian: str, tick: float, size: int) -> Iterator[tuple[float, bytes]]:
    if size <= 24:
        return
    record = struct.Struct(endian + "IIII")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = 24
        unpack = record.unpack_from
        while pos < size:
            if pos + 16 > size:
                raise DatasetError(
                    f"{path}: truncated capture: record header at byte {pos} is cut short"
                )
            sec, frac, caplen, _ = unpack(mm, pos)
            pos += 16
            if pos + caplen > size:
                raise DatasetError(
                    f"{path}: truncated capture: packet at byte {pos - 16} claims {caplen} "
                    f"bytes, {size - pos} remain"
                )
            yield sec + frac * tick, mm[pos : pos + caplen]
            pos += caplen


def _open_pcapng(path: Path, size: int):
    try:
        import dpkt
    except ImportError as err:
        raise DatasetError(
            f"{path}: reading pcapng needs dpkt: pip install 'jtcaug[pcap]'"
        ) from err

    fh = open(path, "rb")
    try:
        reader = dpkt.pcapng.Reader(fh)
    except (ValueError, dpkt.Error, struct.error) as err:
        fh.close()
        raise DatasetError(f"{path}: unreadable or truncated pcapng file: {err}") from err

    def records():
        try:
            with fh:
                yield from reader
        except (ValueError, dpkt.Error, struct.error) as err:
            raise DatasetError(f"{path}: truncated or damaged pcapng block: {err}") from err

    return reader.datalink(), size, records()


# ---------------------------------------------------------------------------------------------
# Frames -> (proto, src, sport, dst, dport, payload bytes).


def decoder(linktype: int, path: Path) -> Callable[[bytes], tuple | str]:
    """A function of one frame: the L4 tuple and payload size, or the reason it is skipped."""
    if linktype == LINKTYPE_ETHERNET:
        return _ethernet
    if linktype in (LINKTYPE_RAW, *LINKTYPE_RAW_BSD, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return lambda buf: _ip(buf, 0)
    if linktype == LINKTYPE_LINUX_SLL:
        return lambda buf: _by_ethertype(buf, 16, buf[14:16])
    if linktype == LINKTYPE_LINUX_SLL2:
        return lambda buf: _by_ethertype(buf, 20, buf[0:2])
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return lambda buf: _ip(buf, 4)
    raise DatasetError(
        f"{path}: link type {linktype} is not handled (Ethernet 1, raw IP 101/12/14/228/229, "
        "Linux SLL 113/276, loopback 0/108)"
    )


def _ethernet(buf: bytes):
    ethertype, off = buf[12:14], 14
    while ethertype in (b"\x81\x00", b"\x88\xa8"):  # 802.1Q / 802.1ad tags
        ethertype, off = buf[off + 2 : off + 4], off + 4
    return _by_ethertype(buf, off, ethertype)


def _by_ethertype(buf: bytes, off: int, ethertype: bytes):
    if ethertype == b"\x08\x00" or ethertype == b"\x86\xdd":
        return _ip(buf, off)
    return "not IP"


def _ip(buf: bytes, off: int):
    if len(buf) < off + 20:
        return "short frame"
    version = buf[off] >> 4
    if version == 4:
        ihl = (buf[off] & 0x0F) * 4
        total, frag, proto = (
            (buf[off + 2] << 8) | buf[off + 3],
            ((buf[off + 6] << 8) | buf[off + 7]) & 0x1FFF,
            buf[off + 9],
        )
        if frag:
            return "IP fragment"
        if total == 0:  # segmentation offload: the NIC fills the length in later
            total = len(buf) - off
        src, dst = buf[off + 12 : off + 16], buf[off + 16 : off + 20]
        l4, l4_len = off + ihl, total - ihl
    elif version == 6:
        if len(buf) < off + 40:
            return "short frame"
        proto = buf[off + 6]
        l4_len = (buf[off + 4] << 8) | buf[off + 5]
        src, dst = buf[off + 8 : off + 24], buf[off + 24 : off + 40]
        l4 = off + 40
        while proto in _IPV6_EXT or proto == _IPV6_FRAGMENT:
            if len(buf) < l4 + 8:
                return "short frame"
            if proto == _IPV6_FRAGMENT:
                if ((buf[l4 + 2] << 8) | buf[l4 + 3]) & 0xFFF8:
                    return "IP fragment"
                ext = 8
            else:
                ext = (buf[l4 + 1] + 1) * 8
            proto = buf[l4]
            l4, l4_len = l4 + ext, l4_len - ext
    else:
        return "not IP"
    if proto == PROTO_TCP:
        if len(buf) < l4 + 14:
            return "short frame"
        payload = l4_len - (buf[l4 + 12] >> 4) * 4
    elif proto == PROTO_UDP:
        if len(buf) < l4 + 8:
            return "short frame"
        payload = l4_len - 8
    else:
        return "not TCP/UDP"
    sport = (buf[l4] << 8) | buf[l4 + 1]
    dport = (buf[l4 + 2] << 8) | buf[l4 + 3]
    return proto, bytes(src), sport, bytes(dst), dport, max(payload, 0)


# ---------------------------------------------------------------------------------------------
# Records -> flows.


def build_flows(
    path: Path,
    options: FlowOptions,
    *,
    progress: Callable[[int], None] | None = None,
) -> CaptureFlows:
    """Reads one capture into flows (module docstring); ``progress`` gets bytes read."""
    linktype, _, records = open_capture(path)
    decode = decoder(linktype, path)
    out = CaptureFlows(path=path)
    counts = {"packets": 0}
    active: dict = {}
    done: list = []
    idle, longest = options.idle_timeout, options.active_timeout
    keep_max, drop_zero = options.max_packets, options.drop_zero_payload
    step = 0
    for ts, buf in records:
        step += 1
        if progress is not None and not step % 65536:
            progress(step)
        decoded = decode(buf)
        if type(decoded) is str:
            counts[decoded] = counts.get(decoded, 0) + 1
            continue
        proto, src, sport, dst, dport, payload = decoded
        key = (proto, src, sport, dst, dport) if (src, sport) <= (dst, dport) else (
            proto, dst, dport, src, sport
        )  # fmt: skip
        flow = active.get(key)
        if flow is not None and (ts - flow[3] > idle or ts - flow[2] > longest):
            done.append(flow)
            flow = None
        if flow is None:
            # [client ip, client port, first ts, last ts, n, sizes, dirs, times, tuple]
            flow = [src, sport, ts, ts, 0, [], [], [], (proto, src, sport, dst, dport)]
            active[key] = flow
        flow[3] = ts
        flow[4] += 1
        if len(flow[5]) < keep_max and (payload or not drop_zero):
            flow[5].append(payload)
            flow[6].append(1 if (src == flow[0] and sport == flow[1]) else -1)
            flow[7].append(ts)
    counts["packets"] = step
    done.extend(active.values())
    done.sort(key=lambda f: f[2])
    short = 0
    for flow in done:
        if len(flow[5]) < options.min_packets:
            short += 1
            continue
        out.tuples.append(flow[8])
        out.start.append(flow[2])
        out.sizes.append(flow[5])
        out.dirs.append(flow[6])
        out.times.append(flow[7])
        out.n_packets.append(flow[4])
    counts["flows"] = len(done)
    counts["short flows"] = short
    out.counts = counts
    return out
