"""The result store: concurrent writers, damaged files, permissions."""

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments import report, store
from experiments.campaign import Campaign, Plan
from experiments.grid import CampaignError
from experiments.store import ResultStore
from jtcaug.io import HOST, STALE_AFTER_S

from .fakes import fake_output
from .test_execution import GRID, dead_pid, manifest, run_campaign, runs

REPO = Path(__file__).resolve().parents[2]


def _claim_in_subprocess(out: Path, seed: int, start_at: float) -> subprocess.Popen:
    code = f"""
import json, sys, time
from experiments.store import ResultStore
from jtcaug.io import HOST, STALE_AFTER_S
from experiments.grid import CampaignError
manifest = {{"campaign": "t", "seed": {seed}, "grid": []}}
time.sleep(max(0.0, {start_at} - time.time()))
try:
    ResultStore({str(out)!r}).claim(manifest)
    print("claimed")
except CampaignError as exc:
    print("refused:", exc)
"""
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)


def test_two_processes_with_different_settings_cannot_both_claim_out(tmp_path):
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        start = time.time() + 1.0
        procs = [_claim_in_subprocess(out, seed, start) for seed in (0, 1)]
        lines = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        assert lines[0] == "claimed", lines
        assert lines[1].startswith("refused:") and "seed: " in lines[1], lines
        kept = json.loads((out / "manifest.json").read_text())
        assert kept["seed"] in (0, 1)


def test_sweep_keeps_live_writers_temp_files_and_removes_dead_ones(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir(parents=True)
    live = runs_dir / f".a.json.{HOST}.{os.getpid()}.x1.tmp"
    dead = runs_dir / f".b.json.{HOST}.{dead_pid()}.x2.tmp"
    other_host = runs_dir / f".c.json.elsewhere.{os.getpid()}.x3.tmp"
    old = runs_dir / ".d.json.untagged.tmp"
    top = tmp_path / f".results.parquet.{HOST}.{dead_pid()}.x4.tmp"
    for path in (live, dead, other_host, old, top):
        path.write_text("partial")
    long_ago = time.time() - STALE_AFTER_S - 10
    os.utime(old, (long_ago, long_ago))
    assert ResultStore(tmp_path).sweep() == 3
    assert live.exists() and other_host.exists()
    assert not dead.exists() and not old.exists() and not top.exists()


def test_a_run_claimed_by_a_live_process_is_left_to_it(tmp_path):
    s = ResultStore(tmp_path)
    spec = runs()[0]
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        s.claims_dir.mkdir(parents=True)
        (s.claims_dir / spec.run_id).write_text(json.dumps(
            {"host": HOST, "pid": helper.pid, "time": time.time()}))
        summary = run_campaign(tmp_path, lambda sp: fake_output(sp))
        assert summary.elsewhere == 1 and summary.completed == len(runs()) - 1
        assert not s.is_finished(spec)
    finally:
        helper.kill()
        helper.wait()
    # Its claimer is gone now: the next driver takes the run over.
    again = run_campaign(tmp_path, lambda sp: fake_output(sp))
    assert again.completed == 1 and again.elsewhere == 0


def test_the_same_command_twice_at_once_trains_each_run_once(tmp_path):
    calls, lock = [], threading.Lock()

    def slow(spec):
        with lock:
            calls.append(spec.run_id)
        time.sleep(0.02)
        return fake_output(spec)

    threads = [threading.Thread(target=run_campaign, args=(tmp_path, slow)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == sorted(s.run_id for s in runs())


def test_a_stale_claim_is_taken_over_by_exactly_one_of_many(tmp_path):
    # Every thread finds the dead process's claim; each of them must not replace the
    # claim of another that took it over first.
    s = ResultStore(tmp_path)
    s.claim(manifest())
    spec = runs()[0]
    for _ in range(10):
        s.claims_dir.mkdir(parents=True, exist_ok=True)
        (s.claims_dir / spec.run_id).write_text(json.dumps(
            {"host": HOST, "pid": dead_pid(), "time": time.time()}))
        start, won = threading.Barrier(6), []

        def take(start, won):
            start.wait()
            if s.try_claim_run(spec):
                won.append(threading.get_ident())

        threads = [threading.Thread(target=take, args=(start, won)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        owner = json.loads((s.claims_dir / spec.run_id).read_text())
        assert owner["pid"] == os.getpid()
        s.release_run(spec)


def test_a_report_built_later_never_misses_runs_finished_before_it_ends(tmp_path):
    # The report reads the store inside its lock: a build that waited for the lock sees
    # the run finished meanwhile.
    run_campaign(tmp_path, lambda sp: fake_output(sp))
    last = runs()[-1]
    ResultStore(tmp_path).result_path(last).unlink()
    the_plan = Plan(GRID, manifest(), runs())
    campaign = Campaign("test", "Test", lambda a: GRID, lambda ri: [])
    s = ResultStore(tmp_path)
    with s.lock(store.REPORT_LOCK):
        builder = threading.Thread(target=report.write_campaign_report,
                                   args=(tmp_path, campaign, the_plan.manifest, the_plan.runs))
        builder.start()
        time.sleep(0.3)
        s.write(last, fake_output(last).record)
    builder.join()
    assert f"runs finished: {len(runs())} of {len(runs())}" in (tmp_path / "report.md").read_text()
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == len(runs())


def _edit_result(path: Path, edit, keep_checksum_valid: bool) -> None:
    payload = json.loads(path.read_text())
    edit(payload)
    if keep_checksum_valid:
        payload.pop("sha256")
        payload["sha256"] = store._digest(payload)
    path.write_text(json.dumps(payload))


def test_an_altered_result_file_is_quarantined_and_redone(tmp_path):
    run_campaign(tmp_path, lambda sp: fake_output(sp))
    path = tmp_path / "runs" / "wrap__fold001.json"
    text = path.read_text()
    f1 = json.loads(text)["record"]["metrics"]["weighted_f1"]
    # One digit of the F1 changed: still valid JSON, still in range.
    digits = repr(f1)
    changed = digits[:4] + ("1" if digits[4] != "1" else "2") + digits[5:]
    path.write_text(text.replace(digits, changed))
    warnings = []
    summary = run_campaign(tmp_path, lambda sp: fake_output(sp), warnings=warnings)
    assert summary.corrupt == ["wrap__fold001"] and summary.completed == 1
    assert any("checksum mismatch" in w for w in warnings)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["record"].update(metrics=[1, 2]), "record.metrics is not an object"),
        (lambda p: p["record"]["metrics"].update(per_class="x"), "metrics.per_class"),
        (lambda p: p["record"].update(epochs_run="four"), "record.epochs_run"),
        (lambda p: p["record"]["metrics"].update(accuracy="high"), "metrics.accuracy"),
        (lambda p: p.update(record=[]), "record is not an object"),
    ],
    ids=["metrics-list", "per-class-string", "epochs-string", "accuracy-string", "record-list"],
)
def test_malformed_records_are_quarantined_not_tracebacks(tmp_path, edit, message):
    run_campaign(tmp_path, lambda sp: fake_output(sp))
    _edit_result(tmp_path / "runs" / "none__fold000.json", edit, keep_checksum_valid=True)
    warnings = []
    summary = run_campaign(tmp_path, lambda sp: fake_output(sp), warnings=warnings)
    assert summary.corrupt == ["none__fold000"]
    assert any(message in w and "none__fold000.json" in w for w in warnings), warnings


@pytest.mark.parametrize("grid_value", [5, [1, 2], "x"])
def test_a_damaged_manifest_is_a_clear_error_and_can_be_rebuilt(tmp_path, grid_value):
    run_campaign(tmp_path, lambda sp: fake_output(sp))
    damaged = dict(manifest(), grid=grid_value)
    (tmp_path / "manifest.json").write_text(json.dumps(damaged))
    with pytest.raises(CampaignError, match="damaged.*--rebuild-manifest"):
        run_campaign(tmp_path, lambda sp: fake_output(sp))
    s = ResultStore(tmp_path)
    # Rebuilding with other options is refused: the result files do not match them.
    other = runs()[:2]
    with pytest.raises(CampaignError, match="do not match"):
        s.claim(dict(manifest(), seed=5), rebuild=True, runs=[
            type(r)(r.config, r.fold, 5, r.max_epochs) for r in other])
    s.claim(manifest(), rebuild=True, runs=runs())
    assert run_campaign(tmp_path, lambda sp: fake_output(sp)).skipped == len(runs())


def test_a_deleted_manifest_can_be_rebuilt_when_results_match(tmp_path):
    run_campaign(tmp_path, lambda sp: fake_output(sp))
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(CampaignError, match="no manifest.json"):
        run_campaign(tmp_path, lambda sp: fake_output(sp))
    assert ResultStore(tmp_path).claim(manifest(), rebuild=True, runs=runs()) is True
    assert run_campaign(tmp_path, lambda sp: fake_output(sp)).skipped == len(runs())


def test_out_or_runs_that_are_files_are_named_in_the_error(tmp_path):
    out_file = tmp_path / "out"
    out_file.write_text("not a directory")
    with pytest.raises(CampaignError, match=r"--out .*out exists and is not a directory"):
        run_campaign(out_file, lambda sp: fake_output(sp))
    out = tmp_path / "other"
    out.mkdir()
    (out / "runs").write_text("x")
    with pytest.raises(CampaignError, match="runs directory .* is not a directory"):
        run_campaign(out, lambda sp: fake_output(sp))


def test_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run_campaign(tmp_path, lambda sp: fake_output(sp))
        store.atomic_write_text(tmp_path / "x.txt", "x")
        store.atomic_write_with(tmp_path / "y.bin", lambda p: p.write_bytes(b"y"))
    finally:
        os.umask(old)
    for path in (tmp_path / "manifest.json", tmp_path / "runs" / "none__fold000.json",
                 tmp_path / "x.txt", tmp_path / "y.bin"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_deeply_nested_json_in_a_result_is_corrupt_not_a_crash(tmp_path):
    run_campaign(tmp_path, lambda sp: fake_output(sp))
    (tmp_path / "runs" / "wrap__fold000.json").write_text("[" * 100_000 + "]" * 100_000)
    warnings = []
    summary = run_campaign(tmp_path, lambda sp: fake_output(sp), warnings=warnings)
    assert summary.corrupt == ["wrap__fold000"]
