"""tcbench parquet reader, on a small file shaped like ``mirage19_filtered_minpkts10``."""

import numpy as np
import pandas as pd
import pytest

from jtcaug.data import DatasetError, load, make_fold, read_tcbench


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


def _many_rows(n_per_app: int = 6) -> pd.DataFrame:
    """Rows with shuffled row_ids, so positions and row_ids differ."""
    apps = ["com.waze", "com.trello", "background"] * n_per_app
    row_ids = np.random.default_rng(0).permutation(len(apps)) + 100
    return pd.DataFrame(
        {
            "row_id": row_ids,
            "app": apps,
            "pkts_size": [[100, 200, 300]] * len(apps),
            "pkts_dir": [[0, 1, 0]] * len(apps),
            "timetofirst": [[0.0, 0.1, 0.2]] * len(apps),
        }
    )


def _write_splits(path, frame, splits):
    """tcbench's layout: one row per split, lists of row_id, split_index."""
    pd.DataFrame(
        [
            {"train_indexes": tr, "val_indexes": va, "test_indexes": te, "split_index": k}
            for k, (tr, va, te) in splits
        ]
    ).to_parquet(path.with_name(path.stem + "_splits.parquet"))


def test_tcbench_splits_give_fold_i_as_split_i(tmp_path):
    frame = _many_rows()
    path = _write(tmp_path, frame)
    app_rows = frame[frame.app != "background"].row_id.tolist()
    split0 = (app_rows[:8], app_rows[8:10], app_rows[10:])
    split1 = (app_rows[4:], app_rows[:2], app_rows[2:4])
    _write_splits(path, frame, [(1, split1), (0, split0)])  # stored out of order
    flows = load(f"tcbench:{path}", splits="tcbench")
    assert len(flows.splits) == 2
    position = {r: i for i, r in enumerate(app_rows)}
    for fold_index, split in ((0, split0), (1, split1)):
        fold = make_fold(flows, fold_index)
        for got, want in zip((fold.idx_train, fold.idx_val, fold.idx_test), split, strict=True):
            np.testing.assert_array_equal(got, sorted(position[r] for r in want))
    with pytest.raises(DatasetError, match="holds 2 splits"):
        make_fold(flows, 2)
    assert flows.summary()["predefined_splits"] == 2


def test_bad_tcbench_split_files(tmp_path):
    frame = _many_rows()
    path = _write(tmp_path, frame)
    with pytest.raises(DatasetError, match="no split file mirage19_filtered_minpkts10_splits"):
        load(f"tcbench:{path}", splits="tcbench")
    background = frame[frame.app == "background"].row_id.tolist()
    _write_splits(path, frame, [(0, ([background[0]], [], []))])
    with pytest.raises(DatasetError, match="split 0: train_indexes names 1 rows"):
        load(f"tcbench:{path}", splits="tcbench")
    app_rows = frame[frame.app != "background"].row_id.tolist()
    _write_splits(path, frame, [(0, (app_rows[:3], app_rows[2:4], []))])
    with pytest.raises(DatasetError, match="a row appears in two parts"):
        load(f"tcbench:{path}", splits="tcbench")
