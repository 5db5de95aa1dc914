"""The resumable unit engine, driven by a fake run function."""

import functools
import json

import numpy as np
import pandas as pd
import pytest

from experiments import execution, grid
from experiments.campaign import make_manifest
from experiments.execution import RunRecord, UnitTask, per_run
from experiments.executors import LocalExecutor
from experiments.grid import CampaignError, ConfigSpec
from experiments.results import collect_results
from experiments.store import ResultStore, atomic_write_with
from jtcaug.io import HOST

from .fakes import CountingRunFn, fake_output

GRID = [
    ConfigSpec("none", "baseline", {"aug": "none", "policy": "none", "alpha": None}),
    ConfigSpec("translation", "single", {"aug": "translation", "policy": "inject:1",
                                         "alpha": None}),
    ConfigSpec("wrap", "single", {"aug": "wrap", "policy": "inject:1", "alpha": None}),
    ConfigSpec("wrap_alpha0.5", "magnitude", {"aug": "wrap", "policy": "inject:1",
                                              "alpha": 0.5}, max_folds=2),
]
N_FOLDS = 3


def manifest(grid=GRID, folds=N_FOLDS, **changes):
    m = make_manifest(campaign="test", dataset={"dataset": "synthetic", "scale": 0.01},
                          n_folds=folds, preset="quick", seed=0, max_epochs=2, grid=grid)
    m.update(changes)
    return m


def runs(grid=GRID, folds=N_FOLDS):
    return grid_runs(grid, folds)


def grid_runs(configs, folds):
    return grid.expand_runs(configs, folds, seed=0, max_epochs=2)


def execute(out, make_unit_fn, the_manifest=None, the_runs=None, warnings=None,
            runs_per_unit=1):
    task = UnitTask(str(out), make_unit_fn)
    return execution.execute(
        ResultStore(out), the_manifest or manifest(), the_runs or runs(), task, LocalExecutor(),
        runs_per_unit=runs_per_unit, progress=False,
        warn=(warnings.append if warnings is not None else lambda m: None),
    )


def run_campaign(out, run_fn, warnings=None, runs_per_unit=1, **kw):
    return execute(out, lambda: per_run(run_fn), manifest(**kw), runs(), warnings,
                   runs_per_unit)


def results(out):
    return collect_results(ResultStore(out), runs())


def test_expand_runs_is_fold_major_with_fold_caps():
    specs = runs()
    assert [s.run_id for s in specs[:4]] == [
        "none__fold000", "translation__fold000", "wrap__fold000", "wrap_alpha0.5__fold000"]
    assert len(specs) == 3 * 3 + 2
    assert "wrap_alpha0.5__fold002" not in {s.run_id for s in specs}
    # Split pairing (the default): every run has its own key; the config's seed stays equal
    # (one compilation per configuration).
    assert len({s.key_seed for s in specs}) == len(specs)
    assert specs[0].train_kwargs()["seed"] == specs[4].train_kwargs()["seed"] == 0
    assert specs[0].train_kwargs()["max_epochs"] == 2
    # Seed pairing: configs of a fold share the key, folds differ.
    paired = grid.expand_runs(GRID, N_FOLDS, seed=0, max_epochs=2, pairing="seeds")
    assert paired[0].key_seed == paired[1].key_seed != paired[4].key_seed


def test_duplicate_or_unsafe_config_names_are_refused():
    with pytest.raises(CampaignError, match="repeated: none"):
        grid.expand_runs([GRID[0], GRID[0]], 1, 0, None)
    with pytest.raises(CampaignError, match="must match"):
        ConfigSpec("bad/name", "x", {})


def test_full_campaign_writes_one_result_per_run(tmp_path):
    summary = run_campaign(tmp_path, CountingRunFn())
    assert summary.completed == summary.total == 11
    assert not summary.failed
    assert len(list((tmp_path / "runs").glob("*.json"))) == 11
    frame = results(tmp_path)
    assert len(frame) == 11
    assert frame["run_id"].is_unique
    row = frame.set_index("run_id").loc["wrap_alpha0.5__fold001"]
    assert row["alpha"] == 0.5 and row["policy"] == "inject:1" and row["group"] == "magnitude"
    assert 0.0 <= row["weighted_f1"] <= 1.0
    assert "recall[tiny]" in frame.columns and "train_count[big]" in frame.columns
    assert json.loads((tmp_path / "manifest.json").read_text())["folds"] == N_FOLDS


def test_rerun_skips_finished_runs_without_building_the_run_fn(tmp_path):
    run_campaign(tmp_path, CountingRunFn())

    def never():
        raise AssertionError("run function built although nothing is pending")

    summary = execute(tmp_path, never)
    assert summary.skipped == 11 and summary.completed == 0


def test_killed_campaign_resumes_to_identical_results(tmp_path):
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    run_campaign(reference_dir, CountingRunFn())

    with pytest.raises(KeyboardInterrupt):
        run_campaign(resumed_dir, CountingRunFn(stop_after=5))
    assert len(list((resumed_dir / "runs").glob("*.json"))) == 5
    # A write interrupted mid-file leaves only a temp file, never a finished-looking result;
    # its writer (a dead process) is named in it.
    (resumed_dir / "runs" / f".wrap__fold001.json.{store_host()}.{dead_pid()}.abc.tmp"
     ).write_text('{"trunc')

    second = CountingRunFn()
    summary = run_campaign(resumed_dir, second)
    assert summary.skipped == 5 and summary.completed == 6
    assert summary.stale_temp_files == 1
    assert len(second.calls) == 6  # only the runs that had not finished
    reference = results(reference_dir)
    resumed = results(resumed_dir)
    assert len(resumed) == 11 and resumed["run_id"].is_unique
    pd.testing.assert_frame_equal(reference, resumed)


def test_corrupt_result_is_reported_kept_aside_and_redone(tmp_path):
    run_campaign(tmp_path, CountingRunFn())
    bad = tmp_path / "runs" / "wrap__fold001.json"
    bad.write_text('{"format": 2, "run_id": "wrap__fold0')
    other = tmp_path / "runs" / "none__fold002.json"
    payload = json.loads(other.read_text())
    payload["config"]["train"]["policy"] = "inject:4"
    other.write_text(json.dumps(payload))

    warnings, fn = [], CountingRunFn()
    summary = run_campaign(tmp_path, fn, warnings=warnings)
    assert sorted(summary.corrupt) == ["none__fold002", "wrap__fold001"]
    assert sorted(fn.calls) == ["none__fold002", "wrap__fold001"]
    assert any("wrap__fold001.json: invalid JSON" in w for w in warnings)
    assert any("checksum mismatch" in w for w in warnings)
    assert len(list((tmp_path / "runs").glob("wrap__fold001.json.corrupt-*"))) == 1
    assert len(results(tmp_path)) == 11


def test_different_configuration_in_out_is_refused(tmp_path):
    run_campaign(tmp_path, CountingRunFn())
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    with pytest.raises(CampaignError, match=r"folds: 3 in OUT, 5 now"):
        run_campaign(tmp_path, CountingRunFn(), folds=5)
    grid = [*GRID[:2], ConfigSpec("wrap", "single", {"aug": "wrap", "policy": "inject:2",
                                                      "alpha": None})]
    with pytest.raises(CampaignError, match="configs only in OUT: wrap_alpha0.5.*changed: wrap"):
        execute(tmp_path, lambda: per_run(CountingRunFn()), manifest(grid=grid), runs(grid))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before


def test_results_without_manifest_are_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x__fold000.json").write_text("{}")
    with pytest.raises(CampaignError, match="no manifest.json"):
        run_campaign(tmp_path, CountingRunFn())


def test_bad_input_leaves_out_untouched(tmp_path):
    def bad_dataset():
        raise ValueError("unknown dataset 'nope'")

    with pytest.raises(ValueError, match="unknown dataset"):
        execute(tmp_path / "out", bad_dataset)
    assert not (tmp_path / "out").exists()


def test_failed_runs_are_reported_and_retried_next_time(tmp_path):
    warnings = []
    summary = run_campaign(tmp_path, CountingRunFn(fail_configs=("wrap",)), warnings=warnings)
    assert sorted(summary.failed) == ["wrap__fold000", "wrap__fold001", "wrap__fold002"]
    assert "NaN loss at epoch 3" in summary.failed["wrap__fold000"]
    assert summary.completed == 8
    assert any(line.startswith("FAILED wrap__fold000") for line in summary.lines())
    fn = CountingRunFn()
    again = run_campaign(tmp_path, fn)
    assert sorted(fn.calls) == ["wrap__fold000", "wrap__fold001", "wrap__fold002"]
    assert again.finished == 11 and not again.failed


def test_systematic_failure_stops_the_campaign(tmp_path):
    def broken(spec):
        raise TypeError("unexpected keyword argument")

    summary = run_campaign(tmp_path, broken)
    assert len(summary.failed) == execution.MAX_CONSECUTIVE_FAILURES
    assert summary.completed == 0


def test_arrays_are_saved_with_the_run_and_checked(tmp_path):
    def with_arrays(spec):
        out = fake_output(spec)
        return RunRecord(record=out.record, arrays={"tsne": np.full((3, 2), spec.fold, float)})

    run_campaign(tmp_path, with_arrays)
    arrays = ResultStore(tmp_path).load_arrays("wrap__fold002")
    np.testing.assert_array_equal(arrays["tsne"], np.full((3, 2), 2.0))
    (tmp_path / "runs" / "wrap__fold002.npz").unlink()
    warnings = []
    summary = run_campaign(tmp_path, with_arrays, warnings=warnings)
    assert summary.corrupt == ["wrap__fold002"]
    assert any("arrays file" in w for w in warnings)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "results.parquet"
    path.write_text("old")

    def failing(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(path, failing)
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def store_host():

    return HOST


def dead_pid():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


@pytest.mark.parametrize("runs_per_unit", [2, 3])
def test_units_of_k_runs_give_the_same_results_as_single_runs(tmp_path, runs_per_unit):
    seen = []

    def unit_fn(unit):
        seen.append([s.run_id for s in unit.runs])
        return [fake_output(s) for s in unit.runs]

    execute(tmp_path / "k", lambda: unit_fn, runs_per_unit=runs_per_unit)
    run_campaign(tmp_path / "one", CountingRunFn())
    # A unit holds runs of one configuration on consecutive folds, at most K of them.
    assert all(len(u) <= runs_per_unit and len({r.split("__")[0] for r in u}) == 1
               for u in seen)
    assert sorted(r for u in seen for r in u) == sorted(s.run_id for s in runs())
    pd.testing.assert_frame_equal(
        collect_results(ResultStore(tmp_path / "k"), runs()),
        collect_results(ResultStore(tmp_path / "one"), runs()),
    )


def test_a_unit_that_raises_fails_its_runs_and_the_campaign_goes_on(tmp_path):
    def unit_fn(unit):
        if unit.config.name == "wrap":
            raise RuntimeError("device lost")
        return [fake_output(s) for s in unit.runs]

    summary = execute(tmp_path, lambda: unit_fn, runs_per_unit=3)
    assert sorted(summary.failed) == ["wrap__fold000", "wrap__fold001", "wrap__fold002"]
    assert summary.failed["wrap__fold000"] == "RuntimeError: device lost"
    assert summary.completed == 8
    assert not any((tmp_path / "runs" / ".claims").iterdir())
    again = run_campaign(tmp_path, CountingRunFn(), runs_per_unit=3)
    assert again.completed == 3 and again.finished == 11


def _outcome_in_fresh_interpreter(task, unit):
    # A fresh interpreter stands for a Ray worker: JAX has not started there, and the task
    # travels pickled, as Ray sends it.
    import pickle
    import subprocess
    import sys

    script = (
        "import pickle, sys; task, unit = pickle.load(sys.stdin.buffer); "
        "outcome = task(unit); print(sorted(outcome.finished.values()))"
    )
    out = subprocess.run([sys.executable, "-c", script], input=pickle.dumps((task, unit)),
                         capture_output=True, timeout=120, check=True)
    return out.stdout.decode().strip()


def test_a_worker_process_splits_its_cpu_as_the_task_says(tmp_path):
    task = UnitTask(str(tmp_path), _count_devices_unit_fn, host_devices=3)
    unit = grid.make_units(runs()[:1], 1)[0]
    assert _outcome_in_fresh_interpreter(task, unit) == "[0.03]"


def test_a_worker_process_uses_the_drivers_compile_cache(tmp_path):
    cache = tmp_path / "cache"
    task = UnitTask(str(tmp_path), functools.partial(_cache_dir_unit_fn, str(cache)),
                    compile_cache=str(cache))
    unit = grid.make_units(runs()[:1], 1)[0]
    assert _outcome_in_fresh_interpreter(task, unit) == "[1.0]"
    assert cache.is_dir()
    without = UnitTask(str(tmp_path), functools.partial(_cache_dir_unit_fn, str(cache)))
    assert _outcome_in_fresh_interpreter(without, unit) == "[0.0]"


def _cache_dir_unit_fn(expected: str):
    import jax

    def unit_fn(unit):
        # Whether JAX caches compiled programs in ``expected`` travels back as the F1.
        outputs = [fake_output(spec) for spec in unit.runs]
        for output in outputs:
            output.record["metrics"]["weighted_f1"] = float(
                jax.config.jax_compilation_cache_dir == expected)
        return outputs

    return unit_fn


def _count_devices_unit_fn():
    import jax

    def unit_fn(unit):
        # The device count travels back as the run's F1 (hundredths).
        outputs = [fake_output(spec) for spec in unit.runs]
        for output in outputs:
            output.record["metrics"]["weighted_f1"] = len(jax.devices()) / 100
        return outputs

    return unit_fn
