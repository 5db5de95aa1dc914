"""A real Ray cluster (a head and a worker node) runs a tiny campaign while a worker process
is killed; every run ends exactly once, with the local executor's results.

The cluster, its workers and the driver run inside a network namespace of the test's own
(``unshare -n``, loopback only), so nothing listens beyond 127.0.0.1; the script stops the
cluster on exit and every step is bounded in time.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                       or shutil.which("ip") is None,
                       reason="needs root, unshare and ip for a private network namespace"),
]

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = ["-m", "experiments.g1", "--dataset", "synthetic", "--scale", "0.01", "--folds", "2",
            "--max-epochs", "2", "--batch-size", "64", "--augs", "translation",
            "--magnitude-folds", "0", "--runs-per-unit", "1", "--no-progress"]
CLUSTER = """
set -u
ip link set lo up
ray={ray}
trap '$ray stop --force >/dev/null 2>&1' EXIT
timeout 180 $ray start --head --node-ip-address=127.0.0.1 --port=6380 --num-cpus=1 \
  --temp-dir={ray_tmp} --include-dashboard=false --disable-usage-stats >{log}.head 2>&1 || exit 3
timeout 180 $ray start --address=127.0.0.1:6380 --node-ip-address=127.0.0.1 --num-cpus=1 \
  --disable-usage-stats >{log}.worker 2>&1 || exit 3
timeout 900 {python} {campaign} --executor ray --ray-address 127.0.0.1:6380 \
  --compile-cache {cache} --out {out} >{log}.driver 2>&1 &
driver=$!
for i in $(seq 1 1200); do
  pid=$(pgrep -f '^ray::_execute_unit' | head -1)
  if [ -n "$pid" ]; then kill -9 "$pid" && echo "killed worker process $pid"; break; fi
  sleep 0.25
done
wait $driver
echo "driver exit $?"
"""


def test_ray_campaign_survives_a_killed_worker_and_matches_local(tmp_path):
    # A short path of its own: Ray's socket paths must stay under the Unix limit, and the
    # session files of any other Ray on the machine are not ours.
    ray_tmp = Path(tempfile.mkdtemp(prefix="jtcaug-ray-"))
    try:
        _run_and_check(tmp_path, ray_tmp)
    finally:
        # A script killed by its timeout cannot run its trap: end what is left of the
        # cluster by its private temp dir, which every Ray process names on its command line.
        subprocess.run(["pkill", "-9", "-f", str(ray_tmp)], check=False)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _run_and_check(tmp_path, ray_tmp):
    # Token authentication on, with a token of the test's own that every process of the
    # cluster and the driver share, and a home of its own: a token that an earlier local
    # Ray left in ~/.ray/auth_token must not decide how the nodes authenticate.
    home = ray_tmp / "home"
    home.mkdir()
    env = dict(os.environ, JAX_PLATFORMS="cpu", RAY_USAGE_STATS_ENABLED="0",
               PYTHONUNBUFFERED="1", HOME=str(home), RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(32))
    env.pop("XLA_FLAGS", None)
    cache = tmp_path / "compile-cache"
    local = tmp_path / "local"
    subprocess.run([sys.executable, *CAMPAIGN, "--compile-cache", str(cache), "--out",
                    str(local)], cwd=REPO, env=env, check=True, timeout=900,
                   capture_output=True)
    script = CLUSTER.format(
        ray=Path(sys.executable).with_name("ray"), python=sys.executable,
        campaign=" ".join(CAMPAIGN), cache=cache, out=tmp_path / "ray", log=tmp_path / "log",
        ray_tmp=ray_tmp,
    )
    proc = subprocess.run(["unshare", "-n", "bash", "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("log.*")}
    assert "killed worker process" in proc.stdout, (proc.stdout, proc.stderr, logs)
    assert "driver exit 0" in proc.stdout, (proc.stdout, logs)
    assert "runs: 4/4 finished" in logs["log.driver"], logs

    results = {name: pd.read_parquet(tmp_path / name / "results.parquet").set_index("run_id")
               for name in ("local", "ray")}
    ray_runs = tmp_path / "ray" / "runs"
    # Each run ended exactly once: one result file each, nothing quarantined or left over.
    assert sorted(p.name for p in ray_runs.glob("*.json")) == sorted(
        f"{r}.json" for r in results["local"].index)
    assert not list(ray_runs.glob("*.corrupt-*")) and not list(ray_runs.glob(".*.tmp"))
    assert not any((ray_runs / ".claims").iterdir())
    assert results["ray"].index.is_unique and len(results["ray"]) == 4
    local, remote = results["local"], results["ray"].loc[results["local"].index]
    np.testing.assert_allclose(remote["weighted_f1"], local["weighted_f1"], atol=1e-6)
    assert (remote["epochs_run"] == local["epochs_run"]).all()
