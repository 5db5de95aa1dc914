"""The training step of two source trees, timed back to back (same machine, same minutes).

    git worktree add /tmp/jtcaug-old <commit>      # or: git archive <commit> | tar -x -C DIR
    python benchmarks/compare_train_step.py --old /tmp/jtcaug-old [--new .] [--repeats 7]

Each tree runs in a worker process of its own (two ``jtcaug`` packages cannot share one
process). Both workers compile every variant first; then each repeat asks the old tree, then
the new one, to time one call of every variant, so that a change of machine load hits both
alike. Variants are bench_train.py's: the jitted step at B = 1024 with ``--steps`` steps per
call under ``lax.scan``, without augmentation and with inject:1 (512 originals + 512 copies)
of translation, wrap and permutation, plus inject:1 translation with an rbg key. Prints the
median samples/s per tree and variant, their ratio, and the median (and range) of the
per-repeat new/old ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCH = 1024
VARIANTS = ("none", "translation", "wrap", "permutation", "translation rbg")


def worker(steps: int) -> None:
    """Compiles every variant, then answers each ``VARIANT`` line on stdin with that
    variant's samples/s for one call."""
    import functools

    import jax
    import jax.numpy as jnp
    import numpy as np

    from jtcaug import data
    from jtcaug.train import TrainConfig, batching
    from jtcaug.train.config import Policy
    from jtcaug.train.state import create_train_state, train_step

    fold = data.make_fold(data.load("synthetic", scale=0.2), 0)
    rows = np.random.default_rng(0).choice(len(fold.y_train), BATCH)
    xb, yb = jnp.asarray(fold.x_train[rows]), jnp.asarray(fold.y_train[rows])

    def stepper(variant: str):
        aug, _, impl = variant.partition(" ")
        policy = Policy("none") if aug == "none" else Policy("inject", 1)
        key = jax.random.key(1, impl=impl or "threefry2x32")
        config = TrainConfig(aug=aug, policy=str(policy), batch_size=BATCH)
        step = functools.partial(
            train_step, n_classes=fold.n_classes, config=config, total_steps=10_000
        )
        n_orig = policy.originals_per_step(BATCH)
        xo, yo = xb[:n_orig], yb[:n_orig]

        def one(state, i):
            xs, ys = batching.build_batch(
                jax.random.fold_in(key, i), xo, yo, fold.stats, policy, aug, None
            )
            return step(state, xs, ys)

        scanned = jax.jit(lambda state: jax.lax.scan(one, state, jnp.arange(steps)))
        state = create_train_state(jax.random.PRNGKey(0), fold.n_classes, 20, config, 10_000)
        jax.block_until_ready(scanned(state))

        def run() -> float:
            start = time.perf_counter()
            jax.block_until_ready(scanned(state))
            return steps * policy.step_batch_size(BATCH) / (time.perf_counter() - start)

        return run

    runs = {variant: stepper(variant) for variant in VARIANTS}
    print(json.dumps({"ready": jax.__version__}), flush=True)
    for line in sys.stdin:
        time.sleep(0.2)  # lets the other worker's threads go idle
        print(json.dumps(runs[line.strip()]()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="root of the tree to compare against")
    parser.add_argument("--new", default=".", help="root of the tree under test (default .)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed call")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps)
        return
    procs = {}
    for name, root in (("old", args.old), ("new", args.new)):
        env = dict(os.environ, PYTHONPATH=os.path.abspath(root))
        procs[name] = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--old", "-",
             "--steps", str(args.steps)],
            cwd=os.path.abspath(root), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        ready = json.loads(procs[name].stdout.readline())
        print(f"{name}: {os.path.abspath(root)} compiled (jax {ready['ready']})", flush=True)
    rates = {name: {v: [] for v in VARIANTS} for name in procs}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            for name, proc in procs.items():
                proc.stdin.write(f"{variant}\n")
                proc.stdin.flush()
                rates[name][variant].append(json.loads(proc.stdout.readline()))
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"B={BATCH}, {args.steps} steps per call, median of {args.repeats} paired repeats, "
          f"load {load} on {os.cpu_count()} cores")
    print(f"{'variant (inject:1 unless none)':<32}{'old/s':>10}{'new/s':>10}{'new/old':>9}"
          f"{'paired':>9}{'range':>14}")
    for variant in VARIANTS:
        old = statistics.median(rates["old"][variant])
        new = statistics.median(rates["new"][variant])
        # Each repeat's new/old ratio compares calls seconds apart: steadier under drifting load.
        paired = [n / o for n, o in zip(rates["new"][variant], rates["old"][variant], strict=True)]
        spread = f"{min(paired):.2f}-{max(paired):.2f}"
        print(f"{variant:<32}{old:>10,.0f}{new:>10,.0f}{new / old:>9.3f}"
              f"{statistics.median(paired):>9.3f}{spread:>14}")


if __name__ == "__main__":
    main()
