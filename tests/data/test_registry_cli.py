"""Dataset names, shared command-line flags and ``python -m jtcaug.data``."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from jtcaug.data import (
    DatasetError,
    MirageCuration,
    add_dataset_arguments,
    dataset_names,
    load,
    load_from_args,
)
from jtcaug.data.__main__ import main


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_dataset_arguments(parser)
    return parser.parse_args(list(argv))


def test_names_and_default():
    assert {"synthetic", "synthetic-mirage19", "synthetic-mirage22", "mirage19", "mirage22"} <= set(
        dataset_names()
    )
    assert _args().dataset == "synthetic"


def test_load_from_args_synthetic():
    flows = load_from_args(_args("--scale", "0.01", "--data-seed", "4"))
    assert flows.n_classes == 20 and flows.provenance["seed"] == 4
    assert flows.name == "synthetic-mirage19@0.01"
    alias = load("synthetic-mirage19", scale=0.01, seed=4)
    np.testing.assert_array_equal(alias.sizes, flows.sizes)


def test_load_from_args_flow_table(shared_data):
    args = _args(
        "--dataset", f"flows:{shared_data / 'tiissrc23'}",
        "--signed-size-field", "direction_length", "--time-field", "timestamp",
        "--label-field", "label", "--label-names", "labels.json",
    )  # fmt: skip
    flows = load_from_args(args)
    assert flows.n_flows == 960 and flows.n_classes == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "cesnet"], "unknown dataset 'cesnet'"),
        (["--dataset", "flows:"], "unknown dataset"),
        (["--dataset", "mirge19", "--scale", "0.5"], "unknown dataset 'mirge19'"),
        (["--dataset", "synthetic", "--size-field", "s"], "--size-field apply to flows:PATH"),
        (["--dataset", "mirage19", "--scale", "0.5"], "synthetic datasets only"),
        (["--dataset", "synthetic", "--min-packets", "3"], "mirage19 / mirage22 only"),
        (["--dataset", "flows:x.json"], "flows:x.json: no such file"),
        (["--dataset", "synthetic", "--layout", "nfstream"], "--layout apply to flows:PATH"),
        (["--dataset", "synthetic", "--group-field", "g"], "--group-field applies to flows"),
        (["--dataset", "mirage19", "--group-field", "dev"], "records only 'capture_file'"),
        (["--dataset", "synthetic", "--splits", "tcbench"], "only --splits tcbench with a"),
        (["--scale", "-1"], "scale must be a positive"),
    ],
)
def test_bad_names_and_flags(argv, message):
    with pytest.raises(DatasetError, match=message):
        load_from_args(_args(*argv))


def test_missing_real_dataset_explains_what_to_do(tmp_path):
    with pytest.raises(DatasetError) as err:
        load("mirage22", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "mirage22" / "MIRAGE-COVID-CCMA-2022") in message
    assert "python -m jtcaug.data download mirage22" in message
    assert "synthetic" in message and "\n" not in message


def test_mirage_found_via_env_var(exported_tree, monkeypatch):
    monkeypatch.setenv("JTCAUG_DATA", str(exported_tree.parent))
    flows = load("mirage19", curation=MirageCuration(min_class_flows=0))
    assert flows.name == "mirage19" and flows.n_classes == 20


def test_cli_info_json(capsys):
    assert main(["info", "synthetic-mirage22", "--scale", "0.001", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classes"] == 9 and summary["flows"] == 90
    assert summary["min_flows_per_class"] == summary["max_flows_per_class"] == 10
    assert summary["rho"] == 1.0 and len(summary["per_class"]) == 9
    assert summary["mean_packets_per_flow"] > 100


def test_cli_info_table_on_exported_tree(exported_tree, capsys):
    code = main(
        ["info", "mirage19", "--data-dir", str(exported_tree.parent), "--min-class-flows", "0"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "classes   20" in out and "rho" in out and "de.motain.iliga" in out


def test_cli_errors_are_one_line_on_stderr(capsys, tmp_path):
    assert main(["info", "mirage19", "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: dataset mirage19 not found")
    assert captured.err.count("\n") == 1
    assert main(["export-synthetic", "--out", str(tmp_path), "--scale", "0"]) == 2


def test_cli_subprocess_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jtcaug.data", "info", "flows:" + str(tmp_path / "none.json"),
         "--signed-size-field", "s", "--time-field", "t"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "no such file" in proc.stderr


def test_cli_export_then_info(tmp_path, capsys):
    assert main(["export-synthetic", "--out", str(tmp_path), "--scale", "0.01", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kept_flows"] == 641 and result["files"] == 20
    assert (
        main(["info", "mirage19", "--data-dir", str(tmp_path), "--min-class-flows", "0", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["flows"] == 641
