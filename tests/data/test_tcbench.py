"""tcbench parquet reader, on a small file shaped like ``mirage19_filtered_minpkts10``."""

import numpy as np
import pandas as pd
import pytest

from jtcaug.data import DatasetError, load, read_tcbench


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_id": [0, 1, 2, 3],
            "app": ["com.waze", "background", "com.trello", "com.waze"],
            "pkts_size": [[100, 1448, 51], [10, 20], [300, 40, 40, 40], [5] * 40],
            "pkts_dir": [[0, 1, 0], [0, 1], [0, 1, 1, 0], [0, 1] * 20],
            "timetofirst": [
                [0.0, 0.25, 0.5], [0.0, 1.0], [0.0, 0.1, 0.1, 2.0],
                list(np.arange(40) * 0.01),
            ],
        }
    )  # fmt: skip


def _write(root, frame):
    path = root / "mirage19" / "preprocessed" / "imc23" / "mirage19_filtered_minpkts10.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path)
    return path


def test_reads_columns_and_drops_background(tmp_path):
    path = _write(tmp_path, _frame())
    flows = read_tcbench(tmp_path)  # the root works as well as the file
    assert flows.name == "tcbench-mirage19" and flows.class_names == ("com.trello", "com.waze")
    assert flows.labels.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(flows.sizes[0, :4], [100, 1448, 51, 0])
    np.testing.assert_array_equal(flows.directions[0, :4], [1, -1, 1, 0])
    np.testing.assert_allclose(flows.iats[0, :3], [0.0, 0.25, 0.25])
    np.testing.assert_allclose(flows.iats[1, :4], [0.0, 0.1, 0.0, 1.9])
    assert flows.n_packets.tolist() == [3, 4, 40] and flows.lengths[2] == 32
    assert flows.provenance["background_rows"] == 1
    cached = load(f"tcbench:{path}")
    np.testing.assert_array_equal(cached.iats, flows.iats)


def test_bad_tcbench_files(tmp_path):
    frame = _frame()
    frame.at[2, "timetofirst"] = [0.0, 0.5, 0.4, 1.0]
    with pytest.raises(DatasetError, match="row 2: timetofirst decreases"):
        read_tcbench(_write(tmp_path / "a", frame))
    frame = _frame()
    frame.at[0, "pkts_dir"] = [0, 1]
    with pytest.raises(DatasetError, match="row 0: pkts_size and pkts_dir differ"):
        read_tcbench(_write(tmp_path / "b", frame))
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['app'\]"):
        read_tcbench(_write(tmp_path / "c", _frame().drop(columns="app")))
    broken = _write(tmp_path / "d", _frame())
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DatasetError, match="unreadable Parquet"):
        read_tcbench(broken)
    with pytest.raises(DatasetError, match="expected exactly one"):
        read_tcbench(tmp_path)
