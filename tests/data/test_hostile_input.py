"""Hostile inputs to ``python -m jtcaug.data`` (issue 18, items 11, 13 and 14): one line on
stderr naming the problem, exit 2, no traceback and no warning first."""

import json
import subprocess
import sys
import warnings

import pytest

from jtcaug.data.__main__ import main

DEEP = "[" * 100_000 + "]" * 100_000


def _run_main(capsys, argv):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning fails the test
        rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    return lines[0]


def test_deeply_nested_flow_table(tmp_path, capsys):
    table = tmp_path / "deep.json"
    table.write_text(DEEP)
    rc, err = _run_main(capsys, ["info", f"flows:{table}", "--signed-size-field", "s",
                                 "--iat-field", "i"])  # fmt: skip
    assert rc == 2 and "nested too deeply" in _one_line(err) and str(table) in err


def test_deeply_nested_label_names(tmp_path, capsys):
    table = tmp_path / "t.json"
    table.write_text(json.dumps([{"label": "a", "s": [1, -1], "i": [0, 1]}] * 3))
    names = tmp_path / "names.txt"
    names.write_text(DEEP)
    rc, err = _run_main(capsys, ["info", f"flows:{table}", "--signed-size-field", "s",
                                 "--iat-field", "i", "--label-names", str(names)])  # fmt: skip
    assert rc == 2 and "nested too deeply" in _one_line(err) and "names.txt" in err


def test_deeply_nested_mirage_capture(tmp_path, capsys):
    device = tmp_path / "MIRAGE-2019_traffic_dataset_downloadable" / "Nexus7_x"
    device.mkdir(parents=True)
    (device / "1_com.app_MIRAGE-2019_traffic_dataset_labeled_biflows.json").write_text(DEEP)
    rc, err = _run_main(capsys, ["info", "mirage19", "--data-dir", str(tmp_path)])
    assert rc == 2 and "nested too deeply" in _one_line(err)


@pytest.mark.parametrize("field", ["size", "signed"])
def test_huge_size_is_a_clear_error_without_overflow_warning(tmp_path, capsys, field):
    rec = {"label": "a", "i": [0.0, 0.1]}
    if field == "size":
        rec |= {"s": [1e300, 2.0], "d": [1, -1]}
        flags = ["--size-field", "s", "--dir-field", "d"]
    else:
        rec |= {"s": [1e300, -2.0]}
        flags = ["--signed-size-field", "s"]
    table = tmp_path / "big.json"
    table.write_text(json.dumps([rec] * 3))
    rc, err = _run_main(capsys, ["info", f"flows:{table}", *flags, "--iat-field", "i"])
    line = _one_line(err)
    assert rc == 2 and "record 0" in line and "below 4294967296" in line


def test_huge_size_subprocess_prints_no_warning(tmp_path):
    table = tmp_path / "big.json"
    table.write_text(json.dumps([{"label": "a", "s": [1e300, -2.0], "i": [0, 1]}] * 3))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jtcaug.data",
            "info",
            f"flows:{table}",
            "--signed-size-field",
            "s",
            "--iat-field",
            "i",
            "--no-cache",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Warning" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["file", "below-a-file"])
def test_export_out_that_is_a_file_names_the_option(tmp_path, capsys, kind):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    out = blocker if kind == "file" else blocker / "sub"
    rc, err = _run_main(capsys, ["export-synthetic", "--out", str(out), "--scale", "0.01",
                                 "--quiet"])  # fmt: skip
    line = _one_line(err)
    assert rc == 2 and line.startswith(f"error: --out {out}") and "Errno" not in line
