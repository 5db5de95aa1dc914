"""Training speed: the jitted step at B=1024 (no augmentation vs inject:1), the Transformer
backbone's step next to the ResNet's, a full epoch on a MIRAGE-19-sized synthetic fold, and
eager PyTorch on the same batch when torch is importable.

    python benchmarks/bench_train.py [--steps 20] [--repeats 5] [--scale 1.0] [--no-epoch]
                                     [--models-only]

Prints samples/s and ratios measured in this run (compare figures from one run only: the
machine's load changes between runs). Goals (2-core CPU): inject:1 costs at most 15% more
per sample than no augmentation at equal total batch, and the JAX step is at least 2x the
eager PyTorch step (issue 4); the Transformer trains at least half as many samples/s as the
ResNet (issue 20). ``--models-only`` times just the two backbones' plain steps.

The JAX steps are timed as training runs them: ``--steps`` steps per call, under one
``lax.scan`` (``loop.run_epoch`` scans an epoch's steps the same way). For reference the
"none" step is also timed as one jitted call per step: every call then maps and faults in
XLA:CPU's fresh temporary buffer (~80 MB at B=1024), a cost an epoch pays once. PyTorch
runs in the same interleaved repeats as the JAX variants, because a VM's speed drifts by tens
of percent between minutes.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jtcaug.train import TrainConfig, batching, fold_arrays, loop, runner
from jtcaug.train.config import Policy
from jtcaug.train.state import create_train_state, train_step

BATCH = 1024
INJECT_AUGS = ("translation", "wrap", "permutation")
SINGLE = "none, 1 call per step"
TORCH = "eager PyTorch"
TRANSFORMER = "transformer, none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic fold scale")
    parser.add_argument("--no-epoch", action="store_true", help="skip the full-epoch timing")
    parser.add_argument("--models-only", action="store_true",
                        help="time only the ResNet's and the Transformer's plain steps")
    args = parser.parse_args()

    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, load {_load()}")
    fold = _fold(args.scale)
    x = np.asarray(fold.x_train)
    y = np.asarray(fold.y_train)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(y), BATCH, replace=len(y) < BATCH)
    xb, yb = jnp.asarray(x[rows]), jnp.asarray(y[rows])

    print(
        f"\n-- jitted train step, {BATCH} rows per step, {args.steps} steps per call under "
        f"lax.scan (median of {args.repeats})"
    )
    variants = {"none": _stepper(fold, xb, yb, "none", Policy("none"), args.steps)}
    # The Transformer in the same interleaved repeats, so that load drift hits both alike.
    variants[TRANSFORMER] = _stepper(fold, xb, yb, "none", Policy("none"), args.steps,
                                     model="transformer")
    if not args.models_only:
        for aug in INJECT_AUGS:
            variants[f"inject:1 {aug}"] = _stepper(fold, xb, yb, aug, Policy("inject", 1),
                                                   args.steps)
        variants[SINGLE] = _stepper(fold, xb, yb, "none", Policy("none"), args.steps,
                                    scan=False)
        torch_run = _torch_runner(np.asarray(xb), np.asarray(yb), fold.n_classes, args.steps)
        if torch_run is not None:
            # In the same interleaved repeats as JAX, so that load drift hits both alike.
            variants[TORCH] = torch_run
    speeds = _interleaved_speeds(variants, args)
    torch_sps = speeds.pop(TORCH, None)
    transformer_sps = speeds.pop(TRANSFORMER)
    none_sps = speeds["none"]
    for name, sps in speeds.items():
        extra = "" if name == "none" else f"  {none_sps / sps - 1:+.1%} per sample vs none"
        print(f"{name:<24}{sps:>12,.0f} samples/s{extra}")
    print(
        f"{TRANSFORMER:<24}{transformer_sps:>12,.0f} samples/s  transformer/resnet1d "
        f"{transformer_sps / none_sps:.2f}x per sample (goal >= 0.5x)"
    )
    if args.models_only:
        return
    if torch_sps is None:
        print(f"{TORCH:<24}torch not importable, skipped")
    else:
        ratio = none_sps / torch_sps
        single = speeds[SINGLE] / torch_sps
        print(
            f"{TORCH:<24}{torch_sps:>12,.0f} samples/s  JAX/torch {ratio:.2f}x "
            f"(one call per step: {single:.2f}x)"
        )

    if not args.no_epoch:
        print(f"\n-- full epoch on the synthetic fold: {len(y):,} training rows")
        for aug, policy in (("none", "none"), ("translation", "inject:1")):
            seconds, trained = _epoch_seconds(fold, aug, policy)
            rate = trained / seconds
            print(
                f"{aug + ' / ' + policy:<24}{seconds:>10.2f} s/epoch  {trained:,} rows trained "
                f"(augmented included), {rate:,.0f} rows/s, validation included"
            )


def _fold(scale: float):
    from jtcaug import data

    return data.make_fold(data.load("synthetic", scale=scale), 0)


def _stepper(fold, xb, yb, aug: str, policy: Policy, n_steps: int, scan: bool = True,
             model: str = "resnet1d"):
    """A compiled, warmed-up ``run() -> rows trained`` of ``n_steps`` train steps of
    ``model``: one jitted call scanning them (``scan``, as an epoch does), or one jitted call
    per step."""
    config = TrainConfig(aug=aug, policy=str(policy), batch_size=BATCH, model=model)
    n_orig = policy.originals_per_step(BATCH)
    stats = fold.stats
    step = functools.partial(
        train_step, n_classes=fold.n_classes, config=config, total_steps=10_000
    )

    def one(state, key, xb, yb):
        xs, ys = batching.build_batch(key, xb, yb, stats, policy, aug, None)
        return step(state, xs, ys)

    @functools.partial(jax.jit, donate_argnums=0)
    def scanned(state, key, xb, yb):
        def body(state, i):
            return one(state, jax.random.fold_in(key, i), xb, yb)

        return jax.lax.scan(body, state, jnp.arange(n_steps))

    update = jax.jit(one, donate_argnums=0)
    holder = {
        "state": create_train_state(jax.random.PRNGKey(0), fold.n_classes, 20, config, 10_000)
    }
    xo, yo = xb[:n_orig], yb[:n_orig]
    key = jax.random.PRNGKey(1)
    counter = iter(range(10**9))

    def run() -> int:
        if scan:
            holder["state"], loss = scanned(
                holder["state"], jax.random.fold_in(key, next(counter)), xo, yo
            )
        else:
            for _ in range(n_steps):
                holder["state"], loss = update(
                    holder["state"], jax.random.fold_in(key, next(counter)), xo, yo
                )
        jax.block_until_ready(loss)
        return n_steps * policy.step_batch_size(BATCH)

    run()  # compile + warm up
    return run


def _interleaved_speeds(variants: dict, args) -> dict:
    """Median samples/s per variant; repeats alternate between variants so that load
    changes on a shared machine hit every variant alike."""
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            # Let the previous variant's worker threads (XLA's spin before sleeping) go idle,
            # so that they do not take cores from the next one (PyTorch's in particular).
            time.sleep(0.25)
            start = time.perf_counter()
            rows = run()
            times[name].append(rows / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in times.items()}


def _epoch_seconds(fold, aug: str, policy: str) -> tuple[float, int]:
    """Median wall time of 3 epochs of the jitted epoch function (after one warm-up epoch)
    and the rows one epoch trains on."""
    config = TrainConfig(aug=aug, policy=policy, max_epochs=500)
    data = fold_arrays(fold)
    ls = runner._init(jax.random.PRNGKey(0), data, config)
    pool = runner._pool(ls.key, data, config)
    one = jnp.ones((), jnp.int32)
    ls = runner._advance(ls, data, pool, config, one)
    jax.block_until_ready(ls)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        ls = runner._advance(ls, data, pool, config, one)
        jax.block_until_ready(ls)
        times.append(time.perf_counter() - start)
    lay = loop.layout(config, data)
    return statistics.median(times), lay.steps_per_epoch * lay.policy.step_batch_size(BATCH)


def _torch_runner(xb: np.ndarray, yb: np.ndarray, n_classes: int, n_steps: int):
    """A warmed-up ``run() -> rows trained`` of ``n_steps`` eager PyTorch steps of the same
    model and optimizer on the same batch; None when torch is not importable."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.manual_seed(0)

    def conv_bn(c_in, c_out, k, stride):
        return nn.Sequential(
            nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
            nn.BatchNorm1d(c_out),
        )

    class Block(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.a = conv_bn(c_in, c_out, 3, 2)
            self.b = conv_bn(c_out, c_out, 3, 1)
            self.short = conv_bn(c_in, c_out, 1, 2)

        def forward(self, h):
            return torch.relu(self.b(torch.relu(self.a(h))) + self.short(h))

    model = nn.Sequential(
        conv_bn(3, 64, 3, 1),
        nn.ReLU(),
        Block(64, 64),
        Block(64, 128),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(128, n_classes),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10_000)
    x = torch.from_numpy(np.array(xb)).permute(0, 2, 1).contiguous()  # writable, channels first
    y = torch.from_numpy(yb.astype(np.int64))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    def run() -> int:
        for _ in range(n_steps):
            step()
        return n_steps * len(yb)

    for _ in range(3):
        step()
    return run


def _load() -> str:
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
