"""``from-pcap``: captures built at test time to flows, labels and bad captures."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from jtcaug.data import DatasetError, load
from jtcaug.data.__main__ import main
from jtcaug.data.frompcap import LabelRule, pcap_to_table
from jtcaug.data.pcap import FlowOptions, build_flows

from .pcapgen import (
    CLIENT6,
    SERVER6,
    frame,
    quic_session,
    tcp_session,
    write_pcap,
    write_pcapng,
)


def _flows(path, **options):
    return build_flows(path, FlowOptions(**options))


def _assert_flow(capture, k, expected):
    sizes, dirs, times = zip(*expected, strict=True)
    assert capture.sizes[k] == list(sizes)
    assert capture.dirs[k] == list(dirs)
    np.testing.assert_allclose(capture.times[k], times)
    assert capture.n_packets[k] == len(expected)


def test_tcp_handshake_data_retransmission_and_acks(tmp_path):
    packets, expected = tcp_session()
    capture = _flows(write_pcap(tmp_path / "a.pcap", packets))
    assert len(capture.sizes) == 1
    _assert_flow(capture, 0, expected)
    # The retransmitted response is a packet like any other.
    assert capture.sizes[0].count(1448) == 2
    assert capture.tuples[0][0] == 6 and capture.tuples[0][2] == 40000


def test_drop_zero_payload_accumulates_iats(tmp_path):
    packets, expected = tcp_session()
    path = write_pcap(tmp_path / "a.pcap", packets)
    capture = _flows(path, drop_zero_payload=True)
    assert capture.sizes[0] == [100, 1448, 1448] and capture.dirs[0] == [1, -1, -1]
    assert capture.n_packets[0] == len(expected)  # every packet counts
    out = tmp_path / "t.parquet"
    pcap_to_table([path], out, LabelRule(constant="web"), FlowOptions(drop_zero_payload=True))
    iat = pq.read_table(out).column("iat").to_pylist()[0]
    # The 1448 B packet's IAT spans nothing dropped; the retransmission's spans an ACK.
    np.testing.assert_allclose(iat, [0.0, 0.030, 0.250], atol=1e-6)


def test_udp_quic_and_ipv6_flows(tmp_path):
    quic, quic_expected = quic_session()
    tcp6, tcp6_expected = tcp_session(t0=3000.0, client=CLIENT6, server=SERVER6)
    capture = _flows(write_pcap(tmp_path / "a.pcap", quic + tcp6))
    assert [t[0] for t in capture.tuples] == [17, 6]
    _assert_flow(capture, 0, quic_expected)
    _assert_flow(capture, 1, tcp6_expected)
    out = tmp_path / "t.parquet"
    pcap_to_table([tmp_path / "a.pcap"], out, LabelRule(constant="x"))
    table = pq.read_table(out).to_pydict()
    assert table["client_ip"] == ["10.0.0.1", CLIENT6] and table["server_port"] == [443, 443]


def test_two_interleaved_flows(tmp_path):
    a, a_expected = tcp_session(t0=100.0, dport=443)
    b, b_expected = tcp_session(t0=100.005, dport=8443)
    merged = sorted(a + b, key=lambda p: p[0])
    capture = _flows(write_pcap(tmp_path / "a.pcap", merged))
    assert [t[4] for t in capture.tuples] == [443, 8443]
    _assert_flow(capture, 0, a_expected)
    _assert_flow(capture, 1, b_expected)


def test_idle_flow_splits_and_active_timeout(tmp_path):
    first, first_expected = tcp_session(t0=0.0)
    second, second_expected = tcp_session(t0=500.0)  # same 5-tuple, 500 s later
    path = write_pcap(tmp_path / "a.pcap", first + second)
    capture = _flows(path, idle_timeout=120.0)
    assert len(capture.sizes) == 2
    _assert_flow(capture, 0, first_expected)
    _assert_flow(capture, 1, second_expected)
    assert len(_flows(path, idle_timeout=1000.0).sizes) == 1
    # An active timeout of 0.1 s cuts the first session after its 0.1 s-old packets.
    assert len(_flows(path, idle_timeout=1000.0, active_timeout=0.1).sizes) > 2


def test_max_packets_keeps_the_first_n(tmp_path):
    packets, expected = tcp_session()
    capture = _flows(write_pcap(tmp_path / "a.pcap", packets), max_packets=4)
    assert capture.sizes[0] == [e[0] for e in expected[:4]]
    assert capture.n_packets[0] == len(expected)


def test_pcapng_and_nanosecond_pcap_read_alike(tmp_path):
    packets, expected = tcp_session()
    for path in (
        write_pcapng(tmp_path / "a.pcapng", packets),
        write_pcap(tmp_path / "n.pcap", packets, nano=True),
    ):
        _assert_flow(_flows(path), 0, expected)


def test_table_is_read_by_flows_without_flags_and_groups_by_capture(tmp_path):
    root = tmp_path / "captures"
    for cls, port in (("web", 443), ("chat", 5222)):
        for k in range(3):
            packets, _ = tcp_session(t0=10.0 * k, dport=port, sport=40000 + k)
            (root / cls).mkdir(parents=True, exist_ok=True)
            write_pcap(root / cls / f"run{k}.pcap", packets)
    out = tmp_path / "flows.parquet"
    assert main(["from-pcap", str(root), "--out", str(out), "--label-folder", "--quiet"]) == 0
    flows = load(f"flows:{out}")
    assert flows.class_names == ("chat", "web") and flows.n_flows == 6
    np.testing.assert_array_equal(flows.sizes[0, :5], [0, 0, 0, 100, 1448])
    grouped = load(f"flows:{out}", group_field="capture_file")
    assert sorted(grouped.group_names)[0] == "chat/run0.pcap"
    # The regex rule on the relative path gives the same labels.
    again = tmp_path / "again.parquet"
    pcap_to_table([root], again, LabelRule(regex=r"^(?P<label>\w+)/"))
    assert (
        pq.read_table(again).column("label").to_pylist()
        == pq.read_table(out).column("label").to_pylist()
    )


def test_label_csv_by_five_tuple_either_way_and_by_flow_id(tmp_path):
    a, _ = tcp_session(t0=0.0, dport=443)
    b, _ = tcp_session(t0=1.0, dport=8443)
    path = write_pcap(tmp_path / "a.pcap", a + b)
    labels = tmp_path / "labels.csv"
    # The first row names the flow server-first; both orientations match.
    labels.write_text(
        "src_ip,src_port,dst_ip,dst_port,proto,label\n93.184.216.34,443,10.0.0.1,40000,tcp,web\n"
    )
    out = tmp_path / "t.parquet"
    summary = pcap_to_table([path], out, LabelRule(csv=labels))
    assert summary["flows"] == 1 and summary["unlabelled_flows"] == 1
    labels.write_text("flow_id,label\na.pcap#1,alt\n")
    summary = pcap_to_table([path], out, LabelRule(csv=labels), overwrite=True)
    assert summary["per_label"] == {"alt": 1}


# ---------------------------------------------------------------------------------------------
# Bad captures and labels: one line, exit 2.


def _cli_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_truncated_capture(tmp_path, capsys):
    packets, _ = tcp_session()
    path = write_pcap(tmp_path / "a.pcap", packets)
    path.write_bytes(path.read_bytes()[:-30])
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(tmp_path / "o.parquet"),
                              "--label", "x"])  # fmt: skip
    assert "truncated capture" in err and "a.pcap" in err
    ng = write_pcapng(tmp_path / "b.pcapng", packets)
    ng.write_bytes(ng.read_bytes()[:-30])
    with pytest.raises(DatasetError, match="truncated or damaged pcapng"):
        _flows(ng)


def test_unknown_link_type(tmp_path, capsys):
    packets, _ = tcp_session()
    path = write_pcap(tmp_path / "a.pcap", packets, linktype=147)
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(tmp_path / "o.parquet"),
                              "--label", "x"])  # fmt: skip
    assert "link type 147 is not handled" in err


def test_empty_capture_and_not_a_capture(tmp_path, capsys):
    path = write_pcap(tmp_path / "a.pcap", [])
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(tmp_path / "o.parquet"),
                              "--label", "x"])  # fmt: skip
    assert "holds no packets" in err
    junk = tmp_path / "j.pcap"
    junk.write_text("hello")
    with pytest.raises(DatasetError, match="not a pcap or pcapng"):
        _flows(junk)


def test_capture_with_no_complete_flow(tmp_path, capsys):
    import dpkt

    arp = bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=dpkt.arp.ARP()))
    path = write_pcap(tmp_path / "a.pcap", [(1.0, arp), (2.0, arp)])
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(tmp_path / "o.parquet"),
                              "--label", "x"])  # fmt: skip
    assert "no complete flow" in err and "'not IP': 2" in err


def test_label_csv_matching_nothing(tmp_path, capsys):
    packets, _ = tcp_session()
    path = write_pcap(tmp_path / "a.pcap", packets)
    labels = tmp_path / "labels.csv"
    labels.write_text("flow_id,label\nother.pcap#0,web\nother.pcap#1,web\n")
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(tmp_path / "o.parquet"),
                              "--labels", str(labels)])  # fmt: skip
    assert "its 2 rows match none of the 1 flows" in err


def test_label_rules_and_outputs_are_checked(tmp_path, capsys):
    packets, _ = tcp_session()
    path = write_pcap(tmp_path / "a.pcap", packets)
    out = tmp_path / "o.parquet"
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(out)])
    assert "exactly one label rule" in err
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(out), "--label-regex", "zz"])
    assert "matches no label in 1 of 1 captures" in err
    out.write_text("x")
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(out), "--label", "x"])
    assert err == f"error: --out {out}: exists; remove it or pass --overwrite"
    assert main(["from-pcap", str(path), "--out", str(out), "--label", "x", "--overwrite",
                 "--quiet"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["flows"] == 1 and summary["per_label"] == {"x": 1}
    below_a_file = out / "t.parquet"
    err = _cli_error(capsys, ["from-pcap", str(path), "--out", str(below_a_file), "--label", "x"])
    assert err.startswith(f"error: --out {below_a_file}: cannot write there")


def test_vlan_tag_and_fragments_and_other_protocols(tmp_path):
    plain = frame("10.0.0.1", "10.0.0.2", 1000, 53, b"x" * 30, udp=True)
    tagged = plain[:12] + b"\x81\x00\x00\x05" + plain[12:]
    fragment = bytearray(frame("10.0.0.1", "10.0.0.2", 1000, 53, b"y" * 30, udp=True))
    fragment[14 + 6 : 14 + 8] = b"\x00\x10"  # fragment offset 16 * 8 bytes
    icmp = bytearray(plain)
    icmp[14 + 9] = 1
    capture = _flows(write_pcap(tmp_path / "a.pcap", [(1.0, tagged), (1.1, bytes(fragment)),
                                                      (1.2, bytes(icmp))]))  # fmt: skip
    assert capture.sizes == [[30]]
    assert capture.counts["IP fragment"] == 1 and capture.counts["not TCP/UDP"] == 1
