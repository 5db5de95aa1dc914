"""Throughput of every augmentation on a (1024, 20, 3) batch, jitted and vmapped.

Run: ``python benchmarks/bench_aug.py [--batch 1024] [--repeats 7]``. Prints samples/s for the
18 functions and the three policies (median over repeats, after a warm-up call that compiles),
then tsaug's nearest equivalents on the same batch (numpy) with the jtcaug/tsaug ratio.
Goals on a 2-core CPU: every jtcaug function >= 1M samples/s; >= 10x its tsaug counterpart.
"""

from __future__ import annotations

import argparse
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
GOAL_SAMPLES_PER_S = 1_000_000
GOAL_RATIO = 10.0


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
    """Median seconds per call; each repeat loops until ``min_seconds`` to beat timer noise."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    xb, yb, stats, x_np = make_batch(args.batch)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {tuple(xb.shape)}")
    step = jax.jit(aug.augment_batch, static_argnames=("how", "alpha"))
    hows = [*aug.NAMES, "ensemble", "random_stack", "masked_stack:0.5"]
    rates = {}
    print(f"{'augmentation':<20} {'family':<10} {'samples/s':>14}  goal")
    for how in hows:
        seconds = time_call(
            lambda seed, how=how: step(jax.random.key(seed), xb, yb, stats, how=how),
            args.repeats,
        )
        rates[how] = args.batch / seconds
        family = aug.FAMILY.get(how, "policy")
        ok = "ok" if rates[how] >= GOAL_SAMPLES_PER_S else "BELOW 1M"
        print(f"{how:<20} {family:<10} {rates[how]:>14,.0f}  {ok}")
    try:
        import tsaug
    except ImportError:
        print("\ntsaug not importable (pip install -e '.[bench]'); comparison skipped")
        return
    print(f"\ntsaug {tsaug.__version__} on the same batch (numpy, (N, T, C))")
    print(f"{'jtcaug':<18} {'tsaug':<10} {'jtcaug/s':>12} {'tsaug/s':>12} {'ratio':>8}")
    x_ts = x_np.astype(np.float64)
    for name, (cls_name, kwargs) in TSAUG_PAIRS.items():
        augmenter = getattr(tsaug, cls_name)(**kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds = time_call(
                lambda seed, a=augmenter: a.augment(x_ts), max(3, args.repeats // 2)
            )
        ts_rate = args.batch / seconds
        ratio = rates[name] / ts_rate
        flag = "ok" if ratio >= GOAL_RATIO else "BELOW 10x"
        print(f"{name:<18} {cls_name:<10} {rates[name]:>12,.0f} {ts_rate:>12,.0f} "
              f"{ratio:>7.1f}x {flag}")


if __name__ == "__main__":
    main()
