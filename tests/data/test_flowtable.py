"""Generic flow tables (``flows:PATH``): the real tiissrc23 files and crafted tables."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jtcaug.data import DatasetError, FieldMapping, load, read_flow_table

TIISSRC23 = dict(
    label_field="label",
    label_names="labels.json",
    signed_size_field="direction_length",
    time_field="timestamp",
)
SPLIT_FIELDS = dict(label_field="app", size_field="sizes", dir_field="dirs", iat_field="iats")


def test_tiissrc23_directory(shared_data):
    root = shared_data / "tiissrc23"
    flows = load(f"flows:{root}", mapping=FieldMapping(**TIISSRC23))
    assert flows.n_flows == 960
    names = json.loads((root / "labels.json").read_text())
    assert flows.class_names == tuple(sorted(names, key=names.get))
    # A directory reads its tables in name order: test.json, then valid.json.
    records = json.loads((root / "test.json").read_text())
    records += json.loads((root / "valid.json").read_text())
    expected_counts = np.bincount([r["label"] for r in records], minlength=5)
    np.testing.assert_array_equal(flows.class_counts(), expected_counts)
    for i in (0, 479, 480, 959):
        rec = records[i]
        signed = np.asarray(rec["direction_length"], np.float64)[: flows.t_max]
        times = np.asarray(rec["timestamp"], np.float64)[: flows.t_max]
        n = signed.size
        np.testing.assert_array_equal(flows.directions[i, :n], np.sign(signed))
        np.testing.assert_array_equal(flows.sizes[i, :n], np.abs(signed))
        np.testing.assert_allclose(flows.iats[i, :n], np.diff(times, prepend=times[0]))
        assert flows.labels[i] == rec["label"] and flows.n_packets[i] == len(rec["timestamp"])


def test_tiissrc23_single_file_and_glob(shared_data):
    root = shared_data / "tiissrc23"
    mapping = FieldMapping(**{**TIISSRC23, "label_names": str(root / "labels.json")})
    one = read_flow_table(root / "valid.json", mapping)
    assert one.n_flows == 480 and one.name == "flows:valid"
    both = read_flow_table(str(root / "*.json"), mapping)
    assert both.n_flows == 960  # labels.json is excluded as the --label-names file


def _records(n_flows: int = 6) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_flows):
        n = 3 + i
        out.append(
            {
                "app": ["web", "mail", "video"][i % 3],
                "sizes": rng.integers(0, 1500, n).tolist(),
                "dirs": [0, 1] * (n // 2) + [0] * (n % 2),
                "iats": [0.0] + rng.uniform(0, 1, n - 1).tolist(),
            }
        )
    return out


def _write(path: Path, records: list[dict]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(records))
    elif path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    elif path.suffix == ".csv":
        frame = pd.DataFrame(records)
        for col in ("sizes", "dirs", "iats"):
            frame[col] = frame[col].map(json.dumps)
        frame.to_csv(path, index=False)
    else:
        pd.DataFrame(records).to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet"])
def test_formats_agree(tmp_path, suffix):
    records = _records()
    flows = read_flow_table(_write(tmp_path / f"t{suffix}", records), FieldMapping(**SPLIT_FIELDS))
    assert flows.class_names == ("mail", "video", "web")
    for i, rec in enumerate(records):
        n = len(rec["sizes"])
        np.testing.assert_array_equal(flows.sizes[i, :n], rec["sizes"])
        # zero-one convention: 0 -> +1, 1 -> -1
        np.testing.assert_array_equal(flows.directions[i, :n], 1 - 2 * np.array(rec["dirs"]))
        np.testing.assert_allclose(flows.iats[i, :n], rec["iats"])
        assert flows.class_names[flows.labels[i]] == rec["app"]
        assert flows.lengths[i] == n and (flows.directions[i, n:] == 0).all()


def test_signed_direction_convention_and_first_iat(tmp_path):
    records = _records()
    for rec in records:
        rec["dirs"] = [1 if d == 0 else -1 for d in rec["dirs"]]
        rec["iats"][0] = 5.0  # the first IAT is 0 by definition
    flows = read_flow_table(_write(tmp_path / "t.jsonl", records), FieldMapping(**SPLIT_FIELDS))
    assert flows.directions[0, :3].tolist() == [1, -1, 1]
    assert (flows.iats[:, 0] == 0).all()


def test_integer_labels_without_names(tmp_path):
    records = _records()
    for i, rec in enumerate(records):
        rec["app"] = [7, 3][i % 2]
    flows = read_flow_table(_write(tmp_path / "t.json", records), FieldMapping(**SPLIT_FIELDS))
    assert flows.class_names == ("3", "7")
    assert flows.labels.tolist() == [1, 0, 1, 0, 1, 0]


def test_directory_reads_all_tables_in_name_order(tmp_path):
    records = _records()
    _write(tmp_path / "b.jsonl", records[3:])
    _write(tmp_path / "a.json", records[:3])
    (tmp_path / "notes.txt").write_text("ignored: not a table")
    flows = read_flow_table(tmp_path, FieldMapping(**SPLIT_FIELDS))
    assert flows.n_flows == 6
    np.testing.assert_array_equal(flows.sizes[3, :6], records[3]["sizes"])


def _bad(tmp_path: Path, mutate, suffix=".json", **mapping) -> str:
    records = _records()
    mutate(records)
    path = _write(tmp_path / f"bad{suffix}", records)
    with pytest.raises(DatasetError) as err:
        read_flow_table(path, FieldMapping(**{**SPLIT_FIELDS, **mapping}))
    assert path.name in str(err.value)
    return str(err.value)


def _set(index, field, value):
    def mutate(records):
        records[index][field] = value

    return mutate


def test_bad_tables_name_file_and_record(tmp_path):
    msg = _bad(tmp_path, _set(2, "iats", [0.0, -0.5, 0.1, 0.2, 0.3]))
    assert "record 2" in msg and "finite and >= 0" in msg
    msg = _bad(tmp_path, _set(1, "sizes", [1, 2]))
    assert "record 1" in msg and "differ in length" in msg
    msg = _bad(tmp_path, lambda r: r[4].pop("dirs"))
    assert "record 4" in msg and "missing field" in msg and "'dirs'" in msg
    msg = _bad(tmp_path, _set(3, "dirs", [0, 1, 2, 0, 1, 0]))
    assert "record 3" in msg and "direction field" in msg
    msg = _bad(tmp_path, _set(0, "iats", [0.0, float("nan"), 0.1]), suffix=".jsonl")
    assert "line 1" in msg and "finite" in msg
    msg = _bad(tmp_path, _set(5, "sizes", [1] * 7 + ["x"]), suffix=".jsonl")
    assert "line 6" in msg and "non-numeric" in msg
    msg = _bad(tmp_path, _set(2, "iats", [0.0, -1.0, 0.0, 0.0, 0.0]), suffix=".parquet")
    assert "row 2" in msg
    msg = _bad(tmp_path, _set(1, "sizes", []), suffix=".csv")
    assert "row 1" in msg


def test_bad_timestamps_and_signed_sizes(tmp_path):
    records = [
        {"label": "a", "ts": [0.0, 0.5, 0.4], "signed": [60, -1500, 60]},
        {"label": "b", "ts": [0.0, 1.0], "signed": [60, -60]},
    ]
    mapping = FieldMapping(signed_size_field="signed", time_field="ts")
    path = tmp_path / "t.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DatasetError, match=r"record 0: time field 'ts' decreases"):
        read_flow_table(path, mapping)
    records[0]["ts"] = [0.0, 0.4, 0.5]
    records[1]["signed"] = [60, 0]
    path.write_text(json.dumps(records))
    with pytest.raises(DatasetError, match=r"record 1: signed size field"):
        read_flow_table(path, mapping)


def test_unknown_label_and_label_names_file(tmp_path):
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"web": 0, "mail": 1}))
    path = _write(tmp_path / "t.json", _records())
    with pytest.raises(DatasetError, match=r"record 2: unknown label 'video'"):
        read_flow_table(path, FieldMapping(**SPLIT_FIELDS, label_names=names))
    names.write_text(json.dumps(["web"]))
    with pytest.raises(DatasetError, match="must be a JSON object"):
        read_flow_table(path, FieldMapping(**SPLIT_FIELDS, label_names=names))


def test_ambiguous_directions_need_a_convention(tmp_path):
    records = _records()
    for rec in records:
        rec["dirs"] = [1] * len(rec["dirs"])
    path = _write(tmp_path / "t.json", records)
    with pytest.raises(DatasetError, match="only holds 1"):
        read_flow_table(path, FieldMapping(**SPLIT_FIELDS))
    flows = read_flow_table(path, FieldMapping(**SPLIT_FIELDS, dir_convention="signed"))
    assert (flows.directions[flows.directions != 0] == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(size_field="s", iat_field="i"), "--dir-field"),
        (dict(signed_size_field="s", size_field="x", dir_field="d", iat_field="i"), "not both"),
        (dict(signed_size_field="s"), "exactly one of"),
        (dict(signed_size_field="s", iat_field="i", time_field="t"), "exactly one of"),
        (dict(signed_size_field="s", iat_field="i", dir_convention="up"), "--dir-convention"),
    ],
)
def test_inconsistent_mappings(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        FieldMapping(**kwargs)


def test_not_a_list_of_records_and_missing_paths(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"flows": []}))
    with pytest.raises(DatasetError, match="expected a JSON list"):
        read_flow_table(path, FieldMapping(**SPLIT_FIELDS))
    with pytest.raises(DatasetError, match="no such file"):
        read_flow_table(tmp_path / "nope.json", FieldMapping(**SPLIT_FIELDS))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds no flow table"):
        read_flow_table(empty, FieldMapping(**SPLIT_FIELDS))
