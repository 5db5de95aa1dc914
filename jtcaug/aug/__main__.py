"""Command line for the augmentation library.

``python -m jtcaug.aug gallery --out FILE.png [--alpha A] [--seed S]`` draws every augmentation
applied to one example flow of the synthetic dataset (with its class statistics), original
(black) vs augmented (red), per feature, like the paper's Tables 1-3. Each row shows the
first of a few keys under which the augmentation changes the flow (most leave it unchanged
under some keys: a TCP-aware event has probability 0.1 alpha per packet).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from jtcaug.io import atomic_write_with

FEATURE_LABELS = ("size (norm.)", "direction", "IAT (norm.)")


def example_flows(dataset: str = "synthetic", seed: int = 0):
    """Two full-length training flows of one fold and the fold's stats.

    Returns ``(flows (2, T, 3), labels (2,), stats, class_names)``: the first flow is the
    gallery subject (the first full-length flow of the largest class), the second its CutMix
    partner (a full-length flow of another class).
    """
    from jtcaug.data import load, make_fold

    fold = make_fold(load(dataset, scale=0.05, seed=seed), 0)
    full = (fold.x_train[:, :, 1] != 0).all(axis=1)
    largest = int(np.bincount(fold.y_train).argmax())
    subject = int(np.flatnonzero(full & (fold.y_train == largest))[0])
    partner = int(np.flatnonzero(full & (fold.y_train != largest))[0])
    pick = [subject, partner]
    return fold.x_train[pick], fold.y_train[pick], fold.stats, fold.class_names


def render_gallery(out: Path, alpha: float = 0.5, seed: int = 0) -> Path:
    """Writes the gallery PNG atomically and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jtcaug import aug

    flows, labels, stats, class_names = example_flows(seed=seed)
    names = aug.NAMES
    fig, axes = plt.subplots(len(names), 3, figsize=(12, 1.6 * len(names)), sharex=True)
    t = np.arange(flows.shape[1])
    all_draws = _all_draws(flows, labels, stats, alpha, seed)
    for row, name in enumerate(names):
        augmented, tries = _first_change(flows[0], all_draws[row])
        for col in range(3):
            ax = axes[row, col]
            ax.plot(t, flows[0, :, col], color="black", lw=1.2, label="original")
            ax.plot(t, augmented[:, col], color="tab:red", marker="o", ms=2.5, lw=0.9,
                    label="augmented")
            ax.set_ylim(-1.15 if col == 1 else -0.05, 1.1)
            if row == 0:
                ax.set_title(FEATURE_LABELS[col], fontsize=10)
            if col == 0:
                label = f"{name}\n({aug.FAMILY[name]})" + (f"\nkey #{tries}" if tries else "")
                ax.set_ylabel(label, fontsize=8)
    axes[0, 2].legend(loc="upper right", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("packet index t")
    fig.suptitle(
        f"jtcaug augmentations of one synthetic {class_names[labels[0]]!r} flow "
        f"(alpha = {alpha}, seed {seed})"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    try:
        # The format is named: the temp file's own suffix is not .png.
        atomic_write_with(out, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    finally:
        plt.close(fig)
    return out


GALLERY_TRIES = 16


def _all_draws(flows, labels, stats, alpha: float, seed: int) -> np.ndarray:
    """``(18, GALLERY_TRIES, T, 3)``: every augmentation of the subject flow under
    ``GALLERY_TRIES`` keys per row, computed in one jitted program (one compilation for the
    whole figure rather than one per row or per operation)."""
    import jax
    import jax.numpy as jnp

    from jtcaug import aug

    xb, yb = jnp.asarray(flows), jnp.asarray(labels)

    @jax.jit
    def draws(key):
        ctx = stats.context(yb[0])
        rows = []
        for row, name in enumerate(aug.NAMES):
            keys = jax.random.split(jax.random.fold_in(key, row), GALLERY_TRIES)
            if name == "cutmix":
                rows.append(jax.vmap(lambda k: aug.cutmix(k, xb, yb)[0][0])(keys))
            else:
                fn = jax.vmap(aug.SAMPLE_FUNCTIONS[name], in_axes=(0, None, None, None))
                rows.append(fn(keys, xb[0], jnp.float32(alpha), ctx))
        return jnp.stack(rows)

    return np.asarray(draws(jax.random.key(seed)))


def _first_change(subject: np.ndarray, outs: np.ndarray) -> tuple[np.ndarray, int]:
    """``(output, key index)`` of the first key whose output differs from ``subject`` (the
    last key's if none does)."""
    changed = np.flatnonzero((outs != subject[None]).any(axis=(1, 2)))
    pick = int(changed[0]) if changed.size else len(outs) - 1
    return outs[pick], pick


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
