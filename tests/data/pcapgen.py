"""Captures built at test time with dpkt (no binary fixtures)."""

from __future__ import annotations

import socket

import dpkt

CLIENT4, SERVER4 = "10.0.0.1", "93.184.216.34"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8::2"
SYN, ACK, PSH, FIN = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_FIN


def frame(src, dst, sport, dport, payload=b"", *, udp=False, flags=ACK, seq=0):
    """An Ethernet frame of one TCP (or UDP) packet between two IPv4 or IPv6 hosts."""
    if udp:
        l4 = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
        l4.ulen = len(l4)
        proto = dpkt.ip.IP_PROTO_UDP
    else:
        l4 = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, seq=seq, data=payload)
        proto = dpkt.ip.IP_PROTO_TCP
    if ":" in src:
        ip = dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src),
            dst=socket.inet_pton(socket.AF_INET6, dst),
            nxt=proto,
            hlim=64,
            data=l4,
        )
        ip.plen = len(l4)
        ether_type = dpkt.ethernet.ETH_TYPE_IP6
    else:
        ip = dpkt.ip.IP(
            src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=l4
        )
        ip.len = len(ip)
        ether_type = dpkt.ethernet.ETH_TYPE_IP
    eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=ether_type, data=ip)
    return bytes(eth)


def write_pcap(path, packets, *, linktype=dpkt.pcap.DLT_EN10MB, nano=False):
    """``packets``: ``(timestamp s, frame bytes)`` pairs."""
    with open(path, "wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=linktype, nano=nano)
        for ts, buf in packets:
            writer.writepkt(buf, ts=ts)
    return path


def write_pcapng(path, packets):
    with open(path, "wb") as fh:
        writer = dpkt.pcapng.Writer(fh)
        for ts, buf in packets:
            writer.writepkt(buf, ts=ts)
    return path


def tcp_session(t0=1000.0, client=CLIENT4, server=SERVER4, sport=40000, dport=443):
    """Handshake, request (100 B), response (1448 B), a retransmitted response, ACKs, FIN.

    Returns ``(packets, expected)`` where ``expected`` lists ``(size, direction, time)``.
    """
    c2s = (client, server, sport, dport)
    s2c = (server, client, dport, sport)
    plan = [
        (0.000, c2s, b"", SYN),
        (0.010, s2c, b"", SYN | ACK),
        (0.011, c2s, b"", ACK),
        (0.020, c2s, b"q" * 100, PSH | ACK),
        (0.050, s2c, b"r" * 1448, ACK),
        (0.051, c2s, b"", ACK),
        (0.300, s2c, b"r" * 1448, ACK),  # retransmission of the response
        (0.301, c2s, b"", ACK),
        (0.400, c2s, b"", FIN | ACK),
    ]
    packets, expected = [], []
    for dt, (src, dst, sp, dp), payload, flags in plan:
        packets.append((t0 + dt, frame(src, dst, sp, dp, payload, flags=flags)))
        expected.append((len(payload), 1 if src == client else -1, t0 + dt))
    return packets, expected


def quic_session(t0=2000.0, client=CLIENT4, server=SERVER4):
    """A UDP/443 exchange of QUIC-sized datagrams (the server speaks first after 1 RTT)."""
    packets, expected = [], []
    for k, (dt, c2s, n) in enumerate([(0.0, True, 1200), (0.03, False, 1200), (0.031, True, 60),
                                      (0.2, False, 900)]):  # fmt: skip
        src, dst = (client, server) if c2s else (server, client)
        sp, dp = (51000, 443) if c2s else (443, 51000)
        packets.append((t0 + dt, frame(src, dst, sp, dp, bytes([k]) * n, udp=True)))
        expected.append((n, 1 if c2s else -1, t0 + dt))
    return packets, expected
