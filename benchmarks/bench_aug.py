"""Throughput of every augmentation on a (1024, 20, 3) batch, jitted and vmapped.

Run: ``python benchmarks/bench_aug.py [--batch 1024] [--repeats 7] [--loop 64]``. Prints
samples/s for the 18 functions and the combinations (median over repeats, after a warm-up
call that compiles), then tsaug's nearest equivalents on the same batch (numpy) with the
jtcaug/tsaug ratio, timed again back to back with jtcaug in each repeat (``paired_ratios``).
There is no per-function speed goal: what matters is the training step (bench_train.py).

Two figures per function:
- ``per call``: one jitted ``augment_batch`` call per batch from Python, keys made beforehand.
  It includes a fixed cost per executed program, printed as the ``per-call floor`` (a jitted
  one-op program on the batch), which also grows with the program's kernels; that cost is
  most of the cheap functions' time here. Under jax's default asynchronous dispatch it
  includes handing the program to a worker thread and waking the caller
  (``--sync-dispatch`` shows the difference).
- ``in jit``: ``--loop`` batches per call inside one jitted ``lax.scan``, each step augmenting
  the previous step's output with a fresh key (chained, so XLA cannot hoist work out of the
  loop). This is how the trainer runs augmentations: inside its jitted step, with a whole
  epoch's steps scanned in one call. Like a training step's loop, it is not compiled as one
  single-threaded kernel (``loop_is_one_kernel``). The default of 64 steps leaves under 1 us
  of the per-call cost in each step.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug import aug

# tsaug counterpart of each jtcaug function (nearest semantics; tsaug has no class sigma).
TSAUG_PAIRS = {
    "gaussian_noise": ("AddNoise", {"scale": 0.05}),
    "bernoulli_mask": ("Dropout", {"p": 0.25, "fill": 0.0}),
    "wrap": ("TimeWarp", {"n_speed_change": 3, "max_speed_ratio": 2.0}),
    "horizontal_flip": ("Reverse", {}),
}
LOOP = 64  # steps per in-jit call: see the module docstring
N_KEYS = 64
# Keeps XLA:CPU from compiling the benchmark's small scan as one single-threaded kernel, a
# thing it does not do to a training step's loop (loop_is_one_kernel).
UNHOISTED_LOOPS_FLAG = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"


def make_batch(batch: int, t_len: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(11, t_len + 1, batch)
    valid = np.arange(t_len)[None, :] < lengths[:, None]
    x = np.stack(
        [
            rng.uniform(0, 1, (batch, t_len)),
            rng.choice([-1.0, 1.0], (batch, t_len)),
            rng.uniform(0, 1, (batch, t_len)),
        ],
        axis=-1,
    ).astype(np.float32) * valid[..., None]
    y = rng.integers(0, 20, batch).astype(np.int32)
    stats = aug.Stats.from_training(x, y, 20, iat_q99=1.0)
    return jnp.asarray(x), jnp.asarray(y), stats, x


def time_call(fn, repeats: int, min_seconds: float = 0.2) -> float:
    """Median seconds per call of ``fn(i)``; each repeat loops until ``min_seconds``."""
    jax.block_until_ready(fn(0))  # compile
    per_call = []
    for r in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            jax.block_until_ready(fn(r * 1000 + n))
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        per_call.append(elapsed / n)
    return statistics.median(per_call)


def jtcaug_timers(how: str, xb, yb, stats, loop_steps: int = LOOP):
    """Seconds-per-batch timers of ``augment_batch`` with ``how``: ``(per_call, in_jit,
    hoisted)``, each timer taking ``repeats``; ``in_jit`` runs ``loop_steps`` batches per call;
    ``hoisted`` says whether XLA compiled that loop as one kernel (``loop_is_one_kernel``)."""
    # A Python list: indexing a device array would dispatch an op of its own per call.
    keys = list(jax.random.split(jax.random.key(0), N_KEYS))
    step = jax.jit(functools.partial(aug.augment_batch, how=how))

    @jax.jit
    def loop(key, xb, yb, stats):
        def body(carry, step_key):
            return aug.augment_batch(step_key, *carry, stats, how=how), None

        return jax.lax.scan(body, (xb, yb), jax.random.split(key, loop_steps))[0]

    compiled = loop.lower(keys[0], xb, yb, stats).compile()

    def per_call(repeats: int) -> float:
        return time_call(lambda i: step(keys[i % N_KEYS], xb, yb, stats), repeats)

    def in_jit(repeats: int) -> float:
        return time_call(lambda i: compiled(keys[i % N_KEYS], xb, yb, stats), repeats) / loop_steps

    return per_call, in_jit, loop_is_one_kernel(compiled.as_text())


def loop_is_one_kernel(compiled_text: str) -> bool:
    """Whether XLA:CPU hoisted the benchmark's scan into one kernel.

    Newer XLA:CPU (jax 0.12 here) compiles a while loop it deems small into a single kernel
    (``xla_cpu_small_call``): one thread and none of the per-fusion parallelism. The trainer's
    step loop (model and optimizer included) is not small: compiled on jax 0.12 with inject:1,
    its scan over steps has no such kernel. So ``main`` turns the hoisting off
    (``UNHOISTED_LOOPS_FLAG``) unless ``--hoisted-loops``, which measures XLA's own choice.
    """
    return any(
        'xla_cpu_small_call="true"' in line and 'op_name="jit(loop)/while"' in line
        for line in compiled_text.splitlines()
    )


def unhoist_loops() -> bool:
    """Adds ``UNHOISTED_LOOPS_FLAG`` to XLA_FLAGS; False where the user's XLA_FLAGS already
    set backend options (theirs win). Must run before jax starts its backend."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_extra_options" in flags:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {UNHOISTED_LOOPS_FLAG}".strip()
    return True


def per_call_floor(xb, repeats: int) -> float:
    """Samples/s of a one-op jitted program on the batch (``x * 2``), one call per batch.

    What any function's per-call figure is capped at on this machine: the fixed cost of
    dispatching and executing one XLA program, with next to no work in it. The op is a
    multiply, not a copy: XLA's CPU client runs a program that its cost model puts under 1000
    flops inline on the calling thread, skipping the hand-off to a worker thread that every
    augmentation pays under asynchronous dispatch.
    """
    double = jax.jit(lambda x: x * jnp.float32(2.0))
    return xb.shape[0] / time_call(lambda i: double(xb), repeats)


def paired_ratios(timers, tsaug_augment, batch: int, repeats: int):
    """tsaug's samples/s and the jtcaug/tsaug ratios ``(per call, in jit)``, paired.

    Each repeat times tsaug, then jtcaug per call, then jtcaug in jit, back to back, and the
    ratios are the medians of the per-repeat ratios. The dev machine's speed drifts within a
    run (tsaug's Dropout ran at 429K and 607K samples/s in two runs minutes apart), so a ratio
    of figures taken seconds apart is steadier than one of figures taken minutes apart.
    """
    per_call_timer, in_jit_timer = timers
    ts_rates, call_ratios, jit_ratios = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(max(3, repeats)):
            ts_rate = batch / time_call(tsaug_augment, 1)
            ts_rates.append(ts_rate)
            call_ratios.append(batch / per_call_timer(1) / ts_rate)
            jit_ratios.append(batch / in_jit_timer(1) / ts_rate)
    ratios = (statistics.median(call_ratios), statistics.median(jit_ratios))
    return statistics.median(ts_rates), ratios


def print_combination_overhead(rates: dict[str, tuple[float, float]]) -> None:
    """In-jit time per sample of each combination against its members' own, from this run.

    A ratio of two figures taken minutes apart at most, so less at the mercy of a drifting
    machine than the absolute rates. random_stack applies every member to every sample, so
    its floor is the sum of the members' times; ensemble's is their mean.
    """
    members = [1.0 / rates[name][1] for name in aug.DEFAULT_POOL]
    floors = {
        "ensemble": sum(members) / len(members),
        "random_stack": sum(members),
        "masked_stack:0.5": 0.5 * sum(members),
    }
    pool = "+".join(aug.DEFAULT_POOL)
    print(f"in jit, combination time per sample / its members' own time ({pool}):")
    for how, floor in floors.items():
        if how in rates:
            print(f"  {how:<18} {1.0 / rates[how][1] / floor:5.2f}x its floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--loop", type=int, default=LOOP, help="batches per call of the in-jit loop"
    )
    parser.add_argument(
        "--sync-dispatch",
        action="store_true",
        help="turn off jax's asynchronous dispatch on CPU (jax_cpu_enable_async_dispatch): "
        "each call then runs on the calling thread, with no hand-off to wait for",
    )
    parser.add_argument(
        "--hoisted-loops",
        action="store_true",
        help="let XLA:CPU compile the in-jit loop as one single-threaded kernel where it "
        "deems it small (jax 0.12), as it does not for a training step (loop_is_one_kernel)",
    )
    args = parser.parse_args()
    for name in ("batch", "repeats", "loop"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    # Nothing before this point has started jax's backend, which reads XLA_FLAGS once.
    unhoisted = False if args.hoisted_loops else unhoist_loops()
    if args.sync_dispatch:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    xb, yb, stats, x_np = make_batch(args.batch)
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {tuple(xb.shape)}, "
        f"{'synchronous' if args.sync_dispatch else 'asynchronous'} dispatch, "
        f"in-jit loops of {args.loop} steps "
        f"{'kept unhoisted' if unhoisted else 'as XLA compiles them'}"
    )
    hows = [*aug.NAMES, "ensemble", "random_stack", "masked_stack:0.5", "trivial", "rand:2"]
    rates, one_kernel = {}, []
    print(f"{'augmentation':<18} {'family':<11} {'per call/s':>12} {'in jit/s':>12}")
    timers = {}
    for how in hows:
        per_call_timer, in_jit_timer, hoisted = jtcaug_timers(how, xb, yb, stats, args.loop)
        timers[how] = (per_call_timer, in_jit_timer)
        per_call = args.batch / per_call_timer(args.repeats)
        in_jit = args.batch / in_jit_timer(args.repeats)
        rates[how] = (per_call, in_jit)
        one_kernel += [how] if hoisted else []
        family = aug.FAMILY.get(how, "combination")
        mark = "*" if hoisted else " "
        print(f"{how:<18} {family:<11} {per_call:>12,.0f} {in_jit:>11,.0f}{mark}", flush=True)
    if one_kernel:
        print(
            f"* XLA:CPU compiled this benchmark loop as one single-threaded kernel "
            f"({len(one_kernel)} of {len(hows)}; see loop_is_one_kernel), which it does not do "
            "to a training step's loop. Unhoisted figures: rerun without --hoisted-loops and "
            "without other xla_backend_extra_options in XLA_FLAGS"
        )
    floor_rate = per_call_floor(xb, args.repeats)
    print(
        f"per-call floor: a jitted one-op program (x * 2 on the batch), one call per "
        f"batch: {floor_rate:,.0f} samples/s"
    )
    print_combination_overhead(rates)
    try:
        import tsaug
    except ImportError:
        print("\ntsaug not importable (pip install -e '.[bench]'); comparison skipped")
        return
    print(
        f"\ntsaug {tsaug.__version__} on the same batch (numpy, (N, T, C)); each ratio is the "
        "median of per-repeat ratios, jtcaug and tsaug timed back to back in every repeat"
    )
    header = f"{'jtcaug':<18} {'tsaug':<10} {'tsaug/s':>12} {'per call':>10} {'in jit':>10}"
    print(header)
    x_ts = x_np.astype(np.float64)
    floor_ratios = []
    for name, (cls_name, kwargs) in TSAUG_PAIRS.items():
        augmenter = getattr(tsaug, cls_name)(**kwargs)
        ts_rate, ratios = paired_ratios(
            timers[name], lambda seed, a=augmenter: a.augment(x_ts), args.batch, args.repeats
        )
        print(f"{name:<18} {cls_name:<10} {ts_rate:>12,.0f} "
              f"{ratios[0]:>9.1f}x {ratios[1]:>9.1f}x")
        floor_ratios.append(f"{cls_name} {floor_rate / ts_rate:.1f}x")
    # No per-call ratio can beat the per-call floor's, whatever the function does.
    print(f"per-call floor / tsaug (the most a per-call ratio can be): {', '.join(floor_ratios)}")


if __name__ == "__main__":
    main()
