"""``--dry-run``: the plan of a campaign and its estimated wall time, measured on this machine.

The estimate comes from a short calibration: for each kind of configuration (no
augmentation, augmented) one unit of K folds, cut to a few training steps, is compiled and
timed on this machine's devices. Nothing is written to OUT.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from experiments.grid import RunSpec, make_units
from experiments.store import ResultStore

# Steps of the calibration epoch: enough for a stable per-step time, few enough to be quick.
CALIBRATION_STEPS = 8
# Runs usually stop early: patience epochs after their last improvement. The typical
# estimate assumes this many patience periods per run (the paper's patience is 20).
TYPICAL_PATIENCE_PERIODS = 2


def dry_run_lines(campaign, args: argparse.Namespace, the_plan, runs_per_unit: int,
                  shard: tuple[int, int], out_dir) -> list[str]:
    """What ``--dry-run`` prints (the dataset is loaded and a unit calibrated)."""
    import jax

    import jtcaug.data

    runs = the_plan.runs
    units = make_units(runs, runs_per_unit)
    if shard != (0, 1):
        units = units[shard[0] :: shard[1]]
        runs = [r for u in units for r in u.runs]
    per_config = Counter(r.config.name for r in runs)
    lines = [f"{campaign.title}", f"out: {out_dir}"]
    store = ResultStore(out_dir)
    if (out_dir / "manifest.json").is_file():
        done = sum(store.is_finished(r) for r in runs)
        lines.append(f"already finished there: {done} of {len(runs)} runs")
    lines.append(f"grid: {len(per_config)} configurations, {len(runs)} runs"
                 + (f" (shard {shard[0]}/{shard[1]})" if shard != (0, 1) else "")
                 + f", model {the_plan.manifest.get('model') or 'resnet1d'}")
    for config in the_plan.grid:
        if per_config.get(config.name):
            train = config.train
            lines.append(
                f"  {config.name:<24} {config.group:<10} aug={train.get('aug', 'none')} "
                f"policy={train.get('policy', 'none')} folds={per_config[config.name]}"
            )
    devices = jax.devices()
    lines.append(f"units: {len(units)} of up to K = {runs_per_unit} runs (one configuration, "
                 "consecutive folds, one compiled program each)")
    lines.append(f"executor: {args.executor}"
                 + (f" at {args.ray_address}" if args.ray_address else "")
                 + f"; this machine: {len(devices)} {devices[0].platform} device(s)"
                 + (f" ({devices[0].device_kind})" if devices[0].platform != "cpu" else ""))
    flows = jtcaug.data.load_from_args(args)
    timing = calibrate(flows, runs, runs_per_unit, args.folds)
    lines += estimate_lines(units, timing, args)
    if getattr(campaign, "next_stage", None) is not None:
        lines.append("this is the first stage only: later stages are built from its results "
                     "as they finish, and are not counted above")
    lines.append("nothing was written (drop --dry-run to start)")
    return lines


def _kind(spec: RunSpec) -> str:
    return "none" if spec.config.train.get("aug", "none") == "none" else "augmented"


def calibrate(flows, runs, runs_per_unit: int, n_folds: int) -> dict[str, dict]:
    """Per kind of configuration: compile seconds and seconds per training step of a unit
    of ``runs_per_unit`` runs, and the full-size steps per epoch of each run."""
    import jax

    import jtcaug.data
    from jtcaug.train import TrainConfig, fold_arrays, make_mesh, train_runs
    from jtcaug.train.parallel import stack_folds

    k = max(1, min(runs_per_unit, n_folds))
    folds = [jtcaug.data.make_fold(flows, i, n_folds=max(n_folds, 80)) for i in range(k)]
    arrays = [jax.device_get(fold_arrays(f)) for f in folds]
    timing = {}
    for kind in ("none", "augmented"):
        spec = next((r for r in runs if _kind(r) == kind), None)
        if spec is None:
            continue
        config = TrainConfig(**{**spec.train_kwargs(), "max_epochs": 1})
        policy = config.parsed_policy
        per_step = policy.originals_per_step(config.batch_size)
        full_steps = -(-policy.training_set_size(len(folds[0].y_train)) // per_step)
        cut = [_truncate(a, CALIBRATION_STEPS * per_step) for a in arrays]
        n_devices = min(len(jax.devices()), k)
        while k % n_devices:
            n_devices -= 1
        mesh = make_mesh(runs=n_devices)
        keys = np.stack([np.asarray(jax.random.PRNGKey(i)) for i in range(k)])
        if policy.kind == "preaugment":
            data, per_run = cut[0], False
            keys = keys[:n_devices]
        else:
            data, per_run = stack_folds(cut), True
        times = []
        for _ in range(2):
            started = time.perf_counter()
            train_runs(keys, data, config, mesh, data_per_run=per_run)
            times.append(time.perf_counter() - started)
        steps = -(-policy.training_set_size(min(len(a.y_train) for a in cut)) // per_step)
        timing[kind] = {
            "compile_s": max(0.0, times[0] - times[1]),
            "step_s": times[1] / steps,
            "steps_per_epoch": full_steps,
            "n_val": len(folds[0].y_val),
            "per_step_rows": per_step,
        }
    return timing


def _truncate(a, rows: int):
    cut = {f"x_{s}": getattr(a, f"x_{s}") for s in ("train", "val", "test")}
    cut |= {f"y_{s}": getattr(a, f"y_{s}") for s in ("train", "val", "test")}
    small = {"train": rows, "val": 256, "test": 256}
    for split, n in small.items():
        cut[f"x_{split}"] = cut[f"x_{split}"][:n]
        cut[f"y_{split}"] = cut[f"y_{split}"][:n]
    return type(a)(**cut, stats=a.stats)


def estimate_lines(units, timing: dict, args: argparse.Namespace) -> list[str]:
    """The estimated wall time of the units, as an upper bound and a typical figure."""
    max_epochs = args.max_epochs or 500
    typical = min(max_epochs, (TYPICAL_PATIENCE_PERIODS + 1) * 20)
    seconds_max = seconds_typical = 0.0
    compiled = set()
    for unit in units:
        t = timing[_kind(unit.runs[0])]
        # Validation each epoch: a forward pass, about a third of a training step's work.
        epoch = t["step_s"] * (t["steps_per_epoch"] + t["n_val"] / t["per_step_rows"] / 3)
        seconds_max += epoch * max_epochs
        seconds_typical += epoch * typical
        if unit.config.name not in compiled:
            compiled.add(unit.config.name)
            seconds_max += t["compile_s"]
            seconds_typical += t["compile_s"]
    lines = ["calibration (a unit cut to a few steps, on this machine):"]
    for kind, t in timing.items():
        lines.append(f"  {kind:<9} {1000 * t['step_s']:.1f} ms per step of the unit, "
                     f"{t['steps_per_epoch']} steps per epoch, compile {t['compile_s']:.0f} s")
    lines.append(f"estimated wall time: {_duration(seconds_typical)} if runs stop after "
                 f"~{typical} epochs; at most {_duration(seconds_max)} ({max_epochs} epochs "
                 "each); a compile cache hit saves the compile time")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
