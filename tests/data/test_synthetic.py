"""The synthetic generator: determinism, shape of the data, export round trip."""

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score

from jtcaug.data import (
    DatasetError,
    MirageCuration,
    export_mirage19,
    generate,
    make_fold,
    read_mirage,
)
from jtcaug.data.synthetic import MIRAGE19_COUNTS


def _same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k))
        for k in ("sizes", "directions", "iats", "n_packets", "labels")
    )


def test_deterministic_per_seed(small_synthetic):
    assert _same(small_synthetic, generate("synthetic", scale=0.05, seed=0))
    assert not _same(small_synthetic, generate("synthetic", scale=0.05, seed=1))


def test_mirage19_preset_counts_and_imbalance(small_synthetic):
    counts = small_synthetic.class_counts()
    assert small_synthetic.n_classes == 20 and len(MIRAGE19_COUNTS) == 20
    expected = [round(MIRAGE19_COUNTS[name] * 0.05) for name in small_synthetic.class_names]
    np.testing.assert_array_equal(counts, expected)
    assert 6.5 <= counts.max() / counts.min() <= 7.5
    assert counts.min() >= 10


def test_scale_floor_keeps_ten_flows_per_class():
    flows = generate("synthetic-mirage22", scale=0.001)
    assert flows.n_classes == 9 and (flows.class_counts() == 10).all()
    with pytest.raises(DatasetError, match="scale must be a positive"):
        generate("synthetic", scale=0.0)
    with pytest.raises(DatasetError, match="unknown synthetic preset"):
        generate("synthetic-cesnet")


def test_lengths_and_handshake_prefix(small_synthetic):
    flows = small_synthetic
    assert flows.n_packets.min() >= 11  # more than 10 payload packets, as the curation keeps
    # The stored window of 32 raw packets (3 of them SYN / SYN-ACK / ACK) holds <= 29 payload.
    assert flows.n_packets.max() <= 29
    assert 14 <= flows.n_packets.mean() <= 24
    assert (flows.directions[:, 0] == 1).all()  # the client speaks first
    assert (flows.iats[:, 0] == 0).all() and (flows.sizes[flows.directions != 0] > 0).all()
    mss = np.isin(flows.sizes, (1448, 1460, 1400)) & (flows.directions == -1)
    assert mss[:, 1].mean() > 0.5  # a certificate burst follows the hello in most flows


def test_mirage22_preset_is_long_and_complete():
    flows = generate("synthetic-mirage22", scale=0.05)
    assert flows.n_classes == 9
    assert flows.n_packets.mean() > 1000 and (flows.lengths == flows.t_max).mean() > 0.99
    counts = flows.class_counts()
    assert 6.5 <= counts.max() / counts.min() <= 7.5


def test_classes_overlap_but_are_learnable(small_synthetic):
    fold = make_fold(small_synthetic, 0)
    forest = RandomForestClassifier(60, random_state=0, n_jobs=1, min_samples_leaf=2)
    forest.fit(fold.x_train.reshape(fold.x_train.shape[0], -1), fold.y_train)
    pred = forest.predict(fold.x_test.reshape(fold.x_test.shape[0], -1))
    score = f1_score(fold.y_test, pred, average="weighted")
    majority = np.full_like(fold.y_test, np.bincount(fold.y_train).argmax())
    floor = f1_score(fold.y_test, majority, average="weighted")
    assert floor < 0.05
    assert 0.45 < score < 0.93  # library traffic shared across apps caps the accuracy


def test_export_round_trips_through_the_mirage_reader(exported_tree):
    flows = generate("synthetic-mirage19", scale=0.02, seed=3)
    back = read_mirage(exported_tree, curation=MirageCuration(min_class_flows=0))
    assert back.class_names == flows.class_names
    assert _same(back, flows)
    prov = back.provenance
    assert prov["background_flows"] > 0 and prov["short_flows"] > 0
    assert prov["raw_flows"] == flows.n_flows + prov["background_flows"] + prov["short_flows"]


def test_export_layout_looks_like_mirage19(exported_tree):
    devices = sorted(p for p in exported_tree.iterdir())
    assert len(devices) == 2
    files = sorted(exported_tree.glob("*/*.json"))
    assert all(f.name.endswith("_MIRAGE-2019_traffic_dataset_labeled_biflows.json") for f in files)
    doc = json.loads(files[0].read_text())
    key, flow = next(iter(doc.items()))
    assert len(key.split(",")) == 5
    assert set(flow) == {"packet_data", "flow_features", "flow_metadata"}
    packets = flow["packet_data"]
    assert {"packet_dir", "L4_payload_bytes", "iat", "src_port", "dst_port"} <= set(packets)
    assert packets["L4_payload_bytes"][:3] == [0, 0, 0]  # SYN, SYN-ACK, ACK
    lengths = [len(f["packet_data"]["iat"]) for f in doc.values()]
    assert max(lengths) <= 32
    assert any(f["flow_metadata"]["BF_num_packets"] > 32 for d in _docs(files) for f in d)


def _docs(files):
    for path in files:
        yield list(json.loads(path.read_text()).values())


def test_export_refuses_to_overwrite(exported_tree):
    with pytest.raises(DatasetError, match="already exists"):
        export_mirage19(exported_tree.parent, scale=0.02, seed=3)
