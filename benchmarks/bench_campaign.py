"""Campaign throughput: the unit engine's layouts against one run at a time, on a G1 slice.

    python benchmarks/bench_campaign.py [--scale 1.0] [--folds 4] [--epochs 2]
        [--layouts seq,1x1,1x2,1x4,2x1,2x2] [--ray]   (--layouts "": Ray part only)

The slice is G1's baseline, translation and wrap (inject:1) on ``--folds`` folds of the
MIRAGE-19-sized synthetic dataset, every run capped at ``--epochs`` epochs (no early stop,
so every layout does the same work). Layouts, all timed in this process:

- ``seq``: one run after another through ``jtcaug.train.run`` (what campaigns did before
  units), on one device;
- ``DxK``: units of K runs per device over D devices (``run_stacked``), the CPU split into
  2 JAX devices (``--xla_force_host_platform_device_count``); ``1xK`` uses one device, which
  still has both cores for its own threads.

Each layout runs the slice twice, the passes interleaved across layouts: the first pass pays
the compilations, the second is the steady state that a long campaign sees. Printed per
layout: runs per hour (steady), compile seconds, and the ratio to ``seq``; then the projected
wall time of the full default G1 (1,580 runs) at ``--g1-epochs`` epochs per run.

``--ray`` also times the slice through ``python -m experiments.g1 --executor ray`` against
``--executor local`` (both as subprocesses with a warm compile cache, interleaved twice), at
``--epochs`` and twice that, so the overhead splits into a fixed and a proportional part;
inside a private network namespace (``unshare -n``, root only) so Ray binds to loopback.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
).strip()

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402

from jtcaug.data import load, make_fold  # noqa: E402
from jtcaug.train import TrainConfig, run  # noqa: E402
from jtcaug.train.stacked import run_stacked  # noqa: E402

CONFIGS = {
    "none": {"aug": "none", "policy": "none"},
    "translation": {"aug": "translation", "policy": "inject:1"},
    "wrap": {"aug": "wrap", "policy": "inject:1"},
}
# The default G1: 80 folds of the baseline and 18 augmentations, plus 6 x 10 static-alpha runs.
G1_RUNS = {"none": 80, "augmented": 18 * 80 + 60}
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--layouts", default="seq,1x1,1x2,1x4,2x1,2x2")
    parser.add_argument("--g1-epochs", type=int, default=40,
                        help="epochs per run assumed for the full-G1 projection")
    parser.add_argument("--ray", action="store_true", help="also time the Ray executor")
    args = parser.parse_args()
    for name, value in (("--folds", args.folds), ("--epochs", args.epochs)):
        if value < 1:
            parser.error(f"{name} must be >= 1")

    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    if layouts:
        time_layouts(args, layouts)
    if args.ray:
        time_ray(args)


def time_layouts(args, layouts: list[str]) -> None:
    """The slice under each layout, in this process, two interleaved passes."""
    devices = jax.devices()
    print(f"jax {jax.__version__}, {len(devices)} {devices[0].platform} devices "
          f"(CPU split in 2), {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    flows = load("synthetic", scale=args.scale)
    folds = [make_fold(flows, i) for i in range(args.folds)]
    print(f"slice: {', '.join(CONFIGS)} x {args.folds} folds "
          f"({len(folds[0].y_train)} training rows a fold), {args.epochs} epochs per run")

    timings: dict[str, list[dict[str, float]]] = {name: [] for name in layouts}
    for _ in range(2):
        for name in layouts:
            timings[name].append(time_slice(name, folds, args.epochs))
            print(f"  {name:>4} pass {len(timings[name])}: "
                  f"{sum(timings[name][-1].values()):.1f} s", flush=True)

    n_runs = len(CONFIGS) * args.folds
    reference = sum(timings["seq"][1].values()) if "seq" in timings else None
    print(f"\n{'layout':>6} {'runs/hour':>10} {'compile s':>10} {'vs seq':>7}")
    for name in layouts:
        steady = sum(timings[name][1].values())
        compile_s = sum(timings[name][0].values()) - steady
        ratio = f"{reference / steady:.2f}x" if reference else "-"
        print(f"{name:>6} {3600 * n_runs / steady:>10.0f} {compile_s:>10.0f} {ratio:>7}")

    best = min(layouts, key=lambda name: sum(timings[name][1].values()))
    per_epoch = {
        "none": timings[best][1]["none"] / args.folds / args.epochs,
        "augmented": (timings[best][1]["translation"] + timings[best][1]["wrap"])
        / (2 * args.folds * args.epochs),
    }
    g1_s = sum(G1_RUNS[kind] * per_epoch[kind] * args.g1_epochs for kind in G1_RUNS)
    print(f"\nfull default G1 (1,580 runs) with layout {best}, at {args.g1_epochs} epochs per "
          f"run: {g1_s / 3600:.1f} h on this machine (compilations not included)")
    if reference:
        seq_epoch = {
            "none": timings["seq"][1]["none"] / args.folds / args.epochs,
            "augmented": (timings["seq"][1]["translation"] + timings["seq"][1]["wrap"])
            / (2 * args.folds * args.epochs),
        }
        seq_s = sum(G1_RUNS[k] * seq_epoch[k] * args.g1_epochs for k in G1_RUNS)
        print(f"  one run at a time: {seq_s / 3600:.1f} h")


def time_slice(layout: str, folds, epochs: int) -> dict[str, float]:
    """Seconds per configuration of the slice under ``layout``."""
    seconds = {}
    for name, train in CONFIGS.items():
        config = TrainConfig(**train, max_epochs=epochs, patience=epochs + 1)
        keys = [jax.random.PRNGKey(100 + i) for i in range(len(folds))]
        started = time.perf_counter()
        if layout == "seq":
            for fold, key in zip(folds, keys, strict=True):
                run(fold, config, key=key, progress=False)
        else:
            n_devices, per_device = (int(part) for part in layout.split("x"))
            k = n_devices * per_device
            for i in range(0, len(folds), k):
                run_stacked(folds[i : i + k], config, keys[i : i + k],
                            devices=jax.devices()[:n_devices])
        seconds[name] = time.perf_counter() - started
    return seconds


def time_ray(args) -> None:
    """The slice through the campaign CLI, local vs Ray executor, in a private netns.

    The slice runs at ``--epochs`` and at twice that, so the Ray overhead splits into a
    fixed part (start-up, shutdown) and a part proportional to the work (per unit, or slower
    workers): ``ray = local * (1 + proportional) + fixed``.
    """
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("\nray: skipped (needs root and unshare for a private network namespace)")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env.pop("XLA_FLAGS", None)

    def timed(executor: str, epochs: int, tag: str) -> float:
        out = work / f"{executor}-{epochs}-{tag}"
        command = [
            sys.executable, "-m", "experiments.g1", "--dataset", "synthetic", "--scale",
            str(args.scale), "--folds", str(args.folds), "--max-epochs", str(epochs),
            "--augs", "translation,wrap", "--magnitude-folds", "0", "--no-progress",
            "--compile-cache", str(work / "cache"), "--executor", executor, "--out", str(out),
        ]
        if executor == "ray":
            # One unit at a time on both cores, as the local executor runs them.
            command += ["--cpus-per-unit", str(os.cpu_count())]
        script = f"ip link set lo up; {' '.join(command)}"
        started = time.perf_counter()
        subprocess.run(["unshare", "-n", "bash", "-c", script], cwd=REPO, env=env, check=True,
                       capture_output=True, timeout=7200)
        return time.perf_counter() - started

    lengths = (args.epochs, 2 * args.epochs)
    timed("local", args.epochs, "warm")
    walls = {(ex, e): [] for ex in ("local", "ray") for e in lengths}
    for i in range(2):
        for epochs in lengths:
            for executor in ("local", "ray"):
                walls[executor, epochs].append(timed(executor, epochs, str(i)))
    print("\nslice through the CLI (default units, warm compile cache, best of 2):")
    print(f"{'epochs':>7} {'local s':>8} {'ray s':>8}  ray overhead")
    best = {key: min(values) for key, values in walls.items()}
    for epochs in lengths:
        local, remote = best["local", epochs], best["ray", epochs]
        print(f"{epochs:>7} {local:>8.1f} {remote:>8.1f}  {remote - local:+.1f} s "
              f"({100 * (remote / local - 1):+.1f}%)")
    (l1, r1), (l2, r2) = ((best["local", e], best["ray", e]) for e in lengths)
    proportional = ((r2 - l2) - (r1 - l1)) / (l2 - l1)
    fixed = (r1 - l1) - proportional * l1
    print(f"ray = local * (1 {proportional:+.3f}) {fixed:+.1f} s: a fixed {fixed:.1f} s per "
          f"invocation and {100 * proportional:+.1f}% of the work")
    shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
