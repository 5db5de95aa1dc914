"""MIRAGE raw-JSON reader and curation, on the real sample files and on crafted ones."""

import io
import json
import math
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jtcaug.data import DatasetError, MirageCuration, read_mirage
from jtcaug.data.mirage import drop_zero_payload

NO_CLASS_LIMIT = MirageCuration(min_packets=10, min_class_flows=0)
SAMPLE_DEVICE = "Nexus7_bc_ee_7b_a4_09_47"


def curate_by_hand(flow: dict) -> list[tuple[float, int, float]]:
    """(size, direction, iat) of the kept packets, straight from the spec's wording."""
    packets = flow["packet_data"]
    kept, since_kept = [], 0.0
    for size, direction, iat in zip(
        packets["L4_payload_bytes"], packets["packet_dir"], packets["iat"], strict=True
    ):
        since_kept += iat
        if size > 0:
            kept.append((size, 1 if direction == 0 else -1, since_kept if kept else 0.0))
            since_kept = 0.0
    return kept


@pytest.fixture(scope="module")
def sample_dir(shared_data) -> Path:
    return shared_data / "mirage19-sample"


@pytest.fixture(scope="module")
def sample_files(sample_dir) -> list[Path]:
    return sorted((sample_dir / SAMPLE_DEVICE).glob("*.json"))


def test_sample_counts_before_and_after_curation(sample_dir, sample_files):
    expected_kept = {}
    raw_total = 0
    for path in sample_files:
        app = path.name.split("_")[1]
        doc = json.loads(path.read_text())
        raw_total += len(doc)
        long_flows = [
            f
            for f in doc.values()
            if f["flow_metadata"]["BF_label"] == app and len(curate_by_hand(f)) > 10
        ]
        expected_kept[app] = len(long_flows)
    assert raw_total == 33  # shared/data/README: 5 + 28 flows
    flows = read_mirage(sample_dir, curation=NO_CLASS_LIMIT)
    got = dict(zip(flows.class_names, flows.class_counts().tolist(), strict=True))
    assert got == expected_kept
    assert flows.provenance["raw_flows"] == raw_total
    assert flows.provenance["short_flows"] == raw_total - sum(expected_kept.values())


def test_sample_packets_match_hand_curation(sample_dir, sample_files):
    flows = read_mirage(sample_dir, curation=NO_CLASS_LIMIT)
    hand = []
    for path in sample_files:  # sorted file names: the reader's canonical order
        app = path.name.split("_")[1]
        for flow in json.loads(path.read_text()).values():
            kept = curate_by_hand(flow)
            if flow["flow_metadata"]["BF_label"] == app and len(kept) > 10:
                hand.append(kept)
    assert len(hand) == flows.n_flows
    for i, kept in enumerate(hand):
        n = min(len(kept), flows.t_max)
        np.testing.assert_array_equal(flows.sizes[i, :n], [k[0] for k in kept[:n]])
        np.testing.assert_array_equal(flows.directions[i, :n], [k[1] for k in kept[:n]])
        np.testing.assert_allclose(flows.iats[i, :n], [k[2] for k in kept[:n]], rtol=1e-12)
        assert flows.n_packets[i] == len(kept)
        assert (flows.directions[i, n:] == 0).all() and (flows.sizes[i, n:] == 0).all()


def test_zero_payload_iat_accumulation_worked_example(sample_dir):
    # The one comics flow with > 10 payload packets starts [0, 0, 0, 184, 0, 0, 1460, ...]:
    # the 1460-byte packet follows two pure ACKs, so its IAT is iat[4] + iat[5] + iat[6].
    path = next((sample_dir / SAMPLE_DEVICE).glob("*comics*"))
    packets = json.loads(path.read_text())["192.168.20.105,50125,54.239.24.208,443,6"][
        "packet_data"
    ]
    assert packets["L4_payload_bytes"][:7] == [0, 0, 0, 184, 0, 0, 1460]
    assert packets["packet_dir"][3] == 0 and packets["packet_dir"][6] == 1
    flows = read_mirage(sample_dir, curation=NO_CLASS_LIMIT)
    comics = flows.class_names.index("com.iconology.comics")
    (row,) = np.flatnonzero(flows.labels == comics)
    assert flows.sizes[row, 0] == 184 and flows.iats[row, 0] == 0.0
    assert flows.sizes[row, 1] == 1460
    expected = packets["iat"][4] + packets["iat"][5] + packets["iat"][6]
    assert flows.iats[row, 1] == pytest.approx(expected, rel=1e-12)
    assert flows.directions[row, 0] == 1 and flows.directions[row, 1] == -1  # 0 -> +1, 1 -> -1


def test_truncated_series_counts_only_stored_packets(sample_dir):
    path = next((sample_dir / SAMPLE_DEVICE).glob("*slither*"))
    doc = json.loads(path.read_text())
    flow = doc["192.168.20.105,44091,147.135.15.105,454,6"]
    assert flow["flow_metadata"]["BF_num_packets"] == 1882
    assert len(flow["packet_data"]["iat"]) == 32  # MIRAGE-19 stores the first 32 packets
    n_payload = sum(1 for b in flow["packet_data"]["L4_payload_bytes"] if b > 0)
    flows = read_mirage(sample_dir, curation=NO_CLASS_LIMIT)
    kept = curate_by_hand(flow)
    matches = [
        i
        for i in range(flows.n_flows)
        if flows.n_packets[i] == n_payload
        and np.array_equal(flows.sizes[i, : len(kept)], [k[0] for k in kept])
    ]
    assert len(matches) == 1 and n_payload == 16


def test_default_class_threshold_leaves_nothing(sample_dir):
    with pytest.raises(DatasetError, match="no flows left after curation"):
        read_mirage(sample_dir)


def test_background_rule(tmp_path, sample_files):
    device = tmp_path / "dev"
    device.mkdir()
    comics = next(p for p in sample_files if "comics" in p.name)
    # The same capture under another app's name: every flow becomes background.
    renamed = comics.name.replace("com.iconology.comics", "com.other.app")
    shutil.copy(comics, device / renamed)
    slither = next(p for p in sample_files if "slither" in p.name)
    doc = json.loads(slither.read_text())
    relabelled = "192.168.20.105,33409,104.20.24.135,80,6"
    doc[relabelled]["flow_metadata"]["BF_label"] = "com.google.android.gms"
    (device / slither.name).write_text(json.dumps(doc))
    flows = read_mirage(tmp_path, curation=MirageCuration(min_packets=0, min_class_flows=0))
    assert flows.class_names == ("air.com.hypah.io.slither",)
    assert flows.provenance["background_flows"] == 5 + 1
    assert flows.n_flows == 28 - 1  # min_packets=0 keeps every slither flow with payload


def test_archives_read_like_the_tree(tmp_path, sample_dir, sample_files):
    tree = read_mirage(sample_dir, curation=NO_CLASS_LIMIT)
    tar_path = tmp_path / "MIRAGE-2019_traffic_dataset_downloadable_v2.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for path in reversed(sample_files):  # archive order must not matter
            tar.add(
                path,
                arcname=f"MIRAGE-2019_traffic_dataset_downloadable/{SAMPLE_DEVICE}/{path.name}",
            )
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for path in sample_files:
            zf.write(path, f"{SAMPLE_DEVICE}/{path.name}")
    zip_path = tmp_path / "outer.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("MIRAGE-COVID-CCMA-2022/Raw_JSON/Apps.zip", inner.getvalue())
    for source in (tar_path, zip_path):
        got = read_mirage(source, curation=NO_CLASS_LIMIT)
        assert got.class_names == tree.class_names
        for attr in ("sizes", "directions", "iats", "n_packets", "labels"):
            np.testing.assert_array_equal(getattr(got, attr), getattr(tree, attr))


def test_mirage22_unknown_activity_is_background(tmp_path):
    app = "com.discord"
    flows = {
        f"10.0.0.1,{port},1.1.1.1,443,6": _flow(app, 12, activity=activity)
        for port, activity in ((1000, "chat"), (1001, "Unknown"), (1002, "videocall"))
    }
    _write_capture(tmp_path, app, flows)
    got = read_mirage(tmp_path, variant="mirage22", curation=NO_CLASS_LIMIT)
    assert got.n_flows == 2 and got.provenance["background_flows"] == 1
    assert read_mirage(tmp_path, variant="mirage19", curation=NO_CLASS_LIMIT).n_flows == 3


def test_long_series_keep_prefix_and_true_count(tmp_path):
    app = "com.zoom"
    flow = _flow(app, 3000)
    flow["packet_data"]["L4_payload_bytes"][::2] = [0] * 1500  # half are pure ACKs
    _write_capture(tmp_path, app, {"k": flow})
    got = read_mirage(tmp_path, variant="mirage22", curation=NO_CLASS_LIMIT)
    assert got.n_packets.tolist() == [1500]
    assert (got.sizes[0] == 100).all() and got.lengths[0] == got.t_max
    # Each kept packet absorbs the IAT of the ACK before it.
    np.testing.assert_allclose(got.iats[0, 1:], 0.02)


def test_drop_zero_payload_kernel_edge_cases():
    payload = np.array([0, 5, 0, 0, 7, 0, 0, 0, 9])
    dir01 = np.array([0, 1, 0, 0, 0, 1, 1, 1, 1])
    iat = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    offsets = np.array([0, 5, 8, 9])  # flow 1 has no payload at all
    sizes, dirs, iats, out_offsets = drop_zero_payload(payload, dir01, iat, offsets)
    assert sizes.tolist() == [5, 7, 9]
    assert dirs.tolist() == [-1, 1, -1]
    assert iats.tolist() == [0.0, 2.0 + 3.0 + 4.0, 0.0]
    assert out_offsets.tolist() == [0, 2, 2, 3]


# ---------------------------------------------------------------------------------------------
# Bad input.


def _flow(app: str, n: int, activity: str | None = None) -> dict:
    meta = {"BF_label": app, "BF_num_packets": n}
    if activity is not None:
        meta["BF_activity"] = activity
    return {
        "packet_data": {
            "packet_dir": [i % 2 for i in range(n)],
            "L4_payload_bytes": [100] * n,
            "iat": [0.0] + [0.01] * (n - 1),
        },
        "flow_features": {},
        "flow_metadata": meta,
    }


def _write_capture(root: Path, app: str, flows: dict | str) -> Path:
    device = root / "dev"
    device.mkdir(exist_ok=True)
    path = device / f"1500000000_{app}_MIRAGE-2019_traffic_dataset_labeled_biflows.json"
    path.write_text(flows if isinstance(flows, str) else json.dumps(flows))
    return path


def _broken(field: str, value) -> dict:
    flow = _flow("com.app", 12)
    if value is _DELETE:
        del flow["packet_data"][field]
    else:
        flow["packet_data"][field] = value
    return {"10.0.0.1,1,2.2.2.2,443,6": flow}


_DELETE = object()


@pytest.mark.parametrize(
    ("flows", "message"),
    [
        (_broken("iat", _DELETE), "missing field 'iat'"),
        (_broken("iat", [0.0] * 11), "differ in length"),
        (_broken("iat", [0.0, -1.0] + [0.0] * 10), "iat must be finite and >= 0"),
        (_broken("iat", [0.0, math.nan] + [0.0] * 10), "iat must be finite and >= 0"),
        (_broken("packet_dir", [2] * 12), "packet_dir must be 0 or 1"),
        (_broken("packet_dir", None), "must be lists"),
        (_broken("L4_payload_bytes", ["x"] * 12), "non-numeric"),
        ([1, 2, 3], "expected a JSON object"),
    ],
)
def test_bad_capture_files_name_file_and_flow(tmp_path, flows, message):
    path = _write_capture(tmp_path, "com.app", flows)
    with pytest.raises(DatasetError, match=message) as err:
        read_mirage(tmp_path, curation=NO_CLASS_LIMIT)
    assert path.name in str(err.value)
    if isinstance(flows, dict):
        assert "10.0.0.1,1,2.2.2.2,443,6" in str(err.value)


def test_truncated_json_names_the_file(tmp_path, sample_files):
    text = sample_files[0].read_text()
    path = _write_capture(tmp_path, "com.app", text[: len(text) // 2])
    with pytest.raises(DatasetError, match="malformed or truncated JSON") as err:
        read_mirage(tmp_path, curation=NO_CLASS_LIMIT)
    assert str(path) in str(err.value)


def test_truncated_archive_is_reported(tmp_path, sample_files):
    tar_path = tmp_path / "a.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for path in sample_files:
            tar.add(path, arcname=f"x/{SAMPLE_DEVICE}/{path.name}")
    blob = tar_path.read_bytes()
    tar_path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="unreadable or truncated archive"):
        read_mirage(tar_path, curation=NO_CLASS_LIMIT)


def test_empty_source_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no MIRAGE capture files"):
        read_mirage(tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        read_mirage(tmp_path / "missing")


def test_capture_file_is_the_group_when_asked(exported_tree):
    from jtcaug.data import load

    lenient = MirageCuration(min_class_flows=0)
    plain = load("mirage19", data_dir=exported_tree.parent, curation=lenient)
    grouped = load(
        "mirage19", data_dir=exported_tree.parent, curation=lenient, group_field="capture_file"
    )
    assert plain.groups is None and grouped.group_field == "capture_file"
    files = sorted(f"{p.parent.name}/{p.name}" for p in exported_tree.glob("*/*.json"))
    assert set(grouped.group_names) <= set(files)
    # One app per capture file: every group holds one class.
    pairs = np.unique(np.stack([grouped.groups, grouped.labels]), axis=1)
    assert np.unique(pairs[0]).size == pairs.shape[1]
