"""Named layouts of the field's exports, units, padding and group fields in ``flows:``."""

import argparse
import json
import logging

import numpy as np
import pandas as pd
import pytest

from jtcaug.data import (
    DatasetError,
    add_dataset_arguments,
    add_test_dataset_arguments,
    load,
    load_from_args,
    load_test_from_args,
    read_flow_table,
)
from jtcaug.data.layouts import FieldMapping, layout_mapping

# Two flows of 3 and 2 packets; sizes in bytes, directions +1/-1, IATs in seconds.
SIZES = [[100, 1448, 51], [300, 40]]
DIRS = [[1, -1, 1], [1, -1]]
IATS = [[0.0, 0.25, 0.5], [0.0, 0.002]]
LABELS = ["web", "chat"]


def _write(path, records):
    if path.suffix == ".json":
        path.write_text(json.dumps(records))
    elif path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records))
    elif path.suffix == ".csv":
        frame = pd.DataFrame(records)
        for col in frame.columns:
            if isinstance(records[0][col], list):
                frame[col] = [json.dumps(v) for v in frame[col]]
        frame.to_csv(path, index=False)
    else:
        pd.DataFrame(records).to_parquet(path)
    return path


def _pad(seq, n, value):
    return list(seq) + [value] * (n - len(seq))


def nfstream_records():
    return [
        {
            "label": lab,
            "splt_ps": _pad(s, 10, -1),
            "splt_direction": _pad([0 if d > 0 else 1 for d in dirs], 10, -1),
            "splt_piat_ms": _pad([i * 1000 for i in iat], 10, -1),
        }
        for lab, s, dirs, iat in zip(LABELS, SIZES, DIRS, IATS, strict=True)
    ]


def cesnet_records():
    return [
        {
            "APP": lab,
            "PPI": [
                _pad([i * 1000 for i in iat], 30, 0),
                _pad(dirs, 30, 0),
                _pad(s, 30, 0),
            ],
        }
        for lab, s, dirs, iat in zip(LABELS, SIZES, DIRS, IATS, strict=True)
    ]


def tcbench_records():
    return [
        {
            "app": lab,
            "pkts_size": list(s),
            "pkts_dir": [0 if d > 0 else 1 for d in dirs],
            "timetofirst": list(np.cumsum(iat)),
        }
        for lab, s, dirs, iat in zip(LABELS, SIZES, DIRS, IATS, strict=True)
    ]


def jtcaug_records():
    return [
        {
            "label": lab,
            "size": list(s),
            "direction": list(dirs),
            "iat": list(iat),
            "capture_file": f"c{k}.pcap",
        }
        for k, (lab, s, dirs, iat) in enumerate(zip(LABELS, SIZES, DIRS, IATS, strict=True))
    ]


LAYOUT_RECORDS = {
    "nfstream": nfstream_records,
    "cesnet-ppi": cesnet_records,
    "tcbench": tcbench_records,
    "jtcaug": jtcaug_records,
}


def _check(flows):
    order = [flows.class_names.index(lab) for lab in LABELS]
    np.testing.assert_array_equal(flows.labels, order)
    for row, (s, d, i) in enumerate(zip(SIZES, DIRS, IATS, strict=True)):
        n = len(s)
        assert flows.n_packets[row] == n
        np.testing.assert_array_equal(flows.sizes[row, :n], s)
        np.testing.assert_array_equal(flows.directions[row, : n + 1], [*d, 0])
        np.testing.assert_allclose(flows.iats[row, :n], i, atol=1e-12)


@pytest.mark.parametrize("layout", sorted(LAYOUT_RECORDS))
@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet"])
def test_each_layout_in_each_format(tmp_path, layout, suffix):
    path = _write(tmp_path / f"t{suffix}", LAYOUT_RECORDS[layout]())
    _check(read_flow_table(path, layout_mapping(layout)))
    # Without flags, the layout is recognised from the fields.
    _check(read_flow_table(path))


def test_layout_flag_and_overrides_through_the_cli(tmp_path):
    records = nfstream_records()
    for rec in records:
        rec["app_label"] = rec.pop("label")
    path = _write(tmp_path / "nf.parquet", records)
    parser = argparse.ArgumentParser()
    add_dataset_arguments(parser)
    args = parser.parse_args(
        ["--dataset", f"flows:{path}", "--layout", "nfstream", "--label-field", "app_label"]
    )
    _check(load_from_args(args))


@pytest.mark.parametrize(("unit", "scale"), [("s", 1.0), ("ms", 1e3), ("us", 1e6)])
def test_iat_units(tmp_path, unit, scale):
    records = [
        {"label": lab, "s": s, "d": d, "t": [v * scale for v in np.cumsum(i)]}
        for lab, s, d, i in zip(LABELS, SIZES, DIRS, IATS, strict=True)
    ]
    path = _write(tmp_path / "t.json", records)
    mapping = FieldMapping(size_field="s", dir_field="d", time_field="t", iat_unit=unit)
    _check(read_flow_table(path, mapping))


def test_padding_in_the_middle_is_an_error(tmp_path):
    records = nfstream_records()
    records[0]["splt_direction"][1] = -1  # a pad before a real packet
    path = _write(tmp_path / "t.json", records)
    with pytest.raises(DatasetError, match=r"record 0: padding value -1 .* is followed by"):
        read_flow_table(path, layout_mapping("nfstream"))


def test_undeclared_padding_names_the_flag(tmp_path):
    path = _write(tmp_path / "t.json", nfstream_records())
    mapping = layout_mapping("nfstream", pad_value=None)
    mapping = FieldMapping(**{**mapping.__dict__, "pad_value": None})
    with pytest.raises(DatasetError, match="--pad-value"):
        read_flow_table(path, mapping)


@pytest.mark.parametrize("bad", [-3.0, float("nan")])
def test_mixed_units_are_a_clear_error(tmp_path, bad):
    records = jtcaug_records()
    records[1]["iat"][1] = bad
    path = _write(tmp_path / "t.jsonl", records)
    with pytest.raises(DatasetError, match=r"line 2: IAT field 'iat' .*mixed units"):
        read_flow_table(path, layout_mapping("jtcaug"))


def test_pad_value_that_is_a_direction_is_refused():
    with pytest.raises(DatasetError, match="is a direction of the zero-one"):
        FieldMapping(size_field="s", dir_field="d", dir_convention="zero-one", iat_field="i",
                     pad_value=0)  # fmt: skip


def test_cesnet_ppi_must_hold_three_rows(tmp_path):
    records = cesnet_records()
    records[0]["PPI"] = records[0]["PPI"][:2]
    for suffix in (".json", ".parquet"):
        path = _write(tmp_path / f"t{suffix}", records)
        with pytest.raises(DatasetError, match="must hold three lists"):
            read_flow_table(path, layout_mapping("cesnet-ppi"))


def test_table_matching_no_layout_asks_for_a_mapping(tmp_path):
    path = _write(tmp_path / "t.json", [{"x": 1, "y": [1, 2]}])
    with pytest.raises(DatasetError, match="needs a field mapping: --layout NAME"):
        load(f"flows:{path}")


# ---------------------------------------------------------------------------------------------
# Group fields.


def _grouped_table(tmp_path, n_per_class=6):
    records = []
    for k in range(n_per_class * 2):
        rec = jtcaug_records()[k % 2]
        rec["capture_file"] = f"cap{k % 4}.pcap"
        records.append(rec)
    return _write(tmp_path / "g.parquet", records)


def test_group_field_reaches_the_flows(tmp_path):
    path = _grouped_table(tmp_path)
    flows = load(f"flows:{path}", group_field="capture_file")
    assert flows.group_field == "capture_file" and len(flows.group_names) == 4
    assert flows.summary()["groups_per_class"] == {"chat": 2, "web": 2}
    assert load(f"flows:{path}").groups is None


def test_group_field_missing_on_some_flows(tmp_path):
    records = jtcaug_records() * 3
    records[4] = {**records[4], "capture_file": None}
    for suffix in (".json", ".parquet", ".csv"):
        path = _write(tmp_path / f"t{suffix}", records)
        with pytest.raises(DatasetError, match=r"'capture_file' is missing on 1 of 6 flows"):
            read_flow_table(path, layout_mapping("jtcaug", group_field="capture_file"))
    absent = [dict(r) for r in records]
    del absent[2]["capture_file"]
    path = _write(tmp_path / "absent.json", absent)
    with pytest.raises(DatasetError, match=r"record 2: missing field\(s\) \['capture_file'\]"):
        read_flow_table(path, layout_mapping("jtcaug", group_field="capture_file"))


def test_info_warns_about_classes_with_few_groups(tmp_path, capsys, caplog):
    from jtcaug.data.__main__ import main

    path = _grouped_table(tmp_path)
    with caplog.at_level(logging.WARNING, logger="jtcaug.data"):
        assert main(["info", f"flows:{path}", "--group-field", "capture_file"]) == 0
    out = capsys.readouterr().out
    assert "groups    4 (capture_file)" in out
    assert "  chat         6       2" in out
    assert "fewer capture_file groups than the 3 parts of a fold" in caplog.text


# ---------------------------------------------------------------------------------------------
# Test-dataset flags.


def test_test_dataset_flags_mirror_the_dataset_flags(tmp_path):
    path = _write(tmp_path / "nf.json", nfstream_records())
    parser = argparse.ArgumentParser()
    add_dataset_arguments(parser)
    add_test_dataset_arguments(parser)
    args = parser.parse_args(
        [
            "--dataset",
            "synthetic",
            "--test-dataset",
            f"flows:{path}",
            "--test-layout",
            "nfstream",
        ]  # fmt: skip
    )
    _check(load_test_from_args(args))
    assert load_test_from_args(parser.parse_args([])) is None
    with pytest.raises(DatasetError, match="need --test-dataset"):
        load_test_from_args(parser.parse_args(["--test-iat-unit", "ms"]))
