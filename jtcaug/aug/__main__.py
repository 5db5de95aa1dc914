"""Command line for the augmentation library.

``python -m jtcaug.aug gallery --out FILE.png [--alpha A] [--seed S]`` draws every augmentation
applied to one example flow, original (black) vs augmented (red), per feature, like the
paper's Tables 1-3.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

FEATURE_LABELS = ("size (norm.)", "direction", "IAT (norm.)")


def example_flows(t_len: int = 20) -> np.ndarray:
    """Two hand-shaped normalized flows ``(2, T, 3)``: a TLS-like exchange and a shorter one.

    The first is the gallery subject; the second is its CutMix partner.
    """
    first = np.zeros((t_len, 3), np.float32)
    sizes = [0.35, 0.9, 1.0, 1.0, 0.12, 0.05, 0.6, 1.0, 1.0, 0.8, 0.1, 0.45, 1.0, 0.95, 0.3,
             0.08, 0.7, 1.0, 0.55, 0.2]
    dirs = [1, -1, -1, -1, 1, 1, 1, -1, -1, -1, 1, 1, -1, -1, -1, 1, 1, -1, -1, 1]
    iats = [0.0, 0.45, 0.2, 0.18, 0.5, 0.3, 0.62, 0.4, 0.15, 0.14, 0.7, 0.35, 0.5, 0.2, 0.22,
            0.66, 0.3, 0.48, 0.25, 0.58]
    first[:, 0], first[:, 1], first[:, 2] = sizes[:t_len], dirs[:t_len], iats[:t_len]
    second = np.zeros((t_len, 3), np.float32)
    n = min(14, t_len)
    second[:n, 0] = np.linspace(0.9, 0.1, n)
    second[:n, 1] = np.where(np.arange(n) % 3 == 0, 1.0, -1.0)
    second[:n, 2] = np.linspace(0.1, 0.6, n)
    return np.stack([first, second])


def render_gallery(out: Path, alpha: float = 0.5, seed: int = 0) -> Path:
    """Writes the gallery PNG atomically and returns its path."""
    import jax
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jtcaug import aug

    flows = example_flows()
    labels = np.array([0, 1], np.int32)
    stats = aug.Stats.from_training(
        np.concatenate([flows, flows * np.float32(0.9)]), np.tile(labels, 2), 2, iat_q99=1.0
    )
    names = aug.NAMES
    fig, axes = plt.subplots(len(names), 3, figsize=(12, 1.6 * len(names)), sharex=True)
    t = np.arange(flows.shape[1])
    for row, name in enumerate(names):
        key = jax.random.fold_in(jax.random.key(seed), row)
        augmented, _ = aug.augment_batch(
            key, jnp.asarray(flows), jnp.asarray(labels), stats, name, alpha=alpha
        )
        augmented = np.asarray(augmented)[0]
        for col in range(3):
            ax = axes[row, col]
            ax.plot(t, flows[0, :, col], color="black", lw=1.2, label="original")
            ax.plot(t, augmented[:, col], color="tab:red", marker="o", ms=2.5, lw=0.9,
                    label="augmented")
            ax.set_ylim(-1.15 if col == 1 else -0.05, 1.1)
            if row == 0:
                ax.set_title(FEATURE_LABELS[col], fontsize=10)
            if col == 0:
                ax.set_ylabel(f"{name}\n({aug.FAMILY[name]})", fontsize=8)
    axes[0, 2].legend(loc="upper right", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("packet index t")
    fig.suptitle(f"jtcaug augmentations on one example flow (alpha = {alpha}, seed {seed})")
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=90)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jtcaug.aug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gallery = sub.add_parser("gallery", help="draw every augmentation on one example flow")
    gallery.add_argument("--out", type=Path, required=True, help="output PNG file")
    gallery.add_argument("--alpha", type=float, default=0.5, help="magnitude in [0, 1]")
    gallery.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        parser.error(f"--alpha must lie in [0, 1], got {args.alpha}")
    if args.out.suffix.lower() != ".png":
        parser.error(f"--out must name a .png file, got {args.out}")
    path = render_gallery(args.out, args.alpha, args.seed)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
