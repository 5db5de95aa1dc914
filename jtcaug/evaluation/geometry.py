"""Latent-space geometry of augmentations (campaign G3), numpy in, numbers out.

Anchors are latents the model saw in training: the originals and augmented copies of the
training samples. For each test sample we look at its nearest anchors by cosine similarity
(scikit-learn ``NearestNeighbors``), and compare original with augmented latents by t-SNE
(scikit-learn) and the KDE of their Euclidean distances (scipy).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import gaussian_kde
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors

N_NEIGHBOURS = 10
# Cosine distances below this count as zero: the test sample coincides with an anchor
# (floating point leaves ~1e-16 where the exact distance is 0).
ON_ANCHOR = 1e-9


@dataclasses.dataclass(frozen=True)
class NeighbourMetrics:
    """Test-sample neighbourhoods averaged over the test set.

    Attributes:
      same_label_all: mean number of the k nearest anchors (originals + augmented) sharing
        the test sample's label (Fig. 5 a-b, x axis).
      similarity_all: mean cosine similarity of those k anchors (Fig. 5 a-b, y axis).
      same_label_aug: as ``same_label_all`` with augmented anchors only (Fig. 5 c-d).
      similarity_aug: as ``similarity_all`` with augmented anchors only.
      distance_ratio: mean over test samples of (cosine distance to the closest augmented
        same-label anchor) / (cosine distance to the closest original same-label anchor);
        test samples lacking either kind of anchor, or sitting exactly on an original one,
        are left out (``n_ratio`` counts the rest).
      n_ratio: number of test samples behind ``distance_ratio``.
      k: neighbours per test sample.
    """

    same_label_all: float
    similarity_all: float
    same_label_aug: float
    similarity_aug: float
    distance_ratio: float
    n_ratio: int
    k: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_latents(latents: np.ndarray, labels: np.ndarray, what: str) -> tuple:
    z = np.asarray(latents, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2:
        raise ValueError(f"{what} latents must be (N, D), got shape {z.shape}")
    if y.shape != z.shape[:1]:
        raise ValueError(f"{what} labels must be ({z.shape[0]},), got shape {y.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"{what} latents contain NaN or infinite values")
    return z, y


def _knn_label_agreement(
    anchors: np.ndarray,
    anchor_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    k: int,
) -> tuple[float, float]:
    """Mean same-label count and mean cosine similarity of each test sample's k nearest anchors."""
    nn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(anchors)
    distance, index = nn.kneighbors(test)
    same = (anchor_labels[index] == test_labels[:, None]).sum(axis=1)
    return float(same.mean()), float((1.0 - distance).mean())


def _closest_same_label(
    anchors: np.ndarray, anchor_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray
) -> np.ndarray:
    """``(M,)`` cosine distance of each test sample to its closest same-label anchor (NaN: none)."""
    out = np.full(test.shape[0], np.nan)
    for label in np.unique(test_labels):
        pool = anchors[anchor_labels == label]
        if pool.shape[0] == 0:
            continue
        rows = test_labels == label
        distance, _ = NearestNeighbors(n_neighbors=1, metric="cosine").fit(pool).kneighbors(
            test[rows]
        )
        out[rows] = distance[:, 0]
    return out


def neighbour_metrics(
    test_latents: np.ndarray,
    test_labels: np.ndarray,
    anchor_latents: np.ndarray,
    anchor_labels: np.ndarray,
    anchor_is_augmented: np.ndarray,
    k: int = N_NEIGHBOURS,
) -> NeighbourMetrics:
    """Neighbourhood metrics of test samples among training anchors (G3, Fig. 5).

    Args:
      test_latents: ``(M, D)`` latents of the test samples.
      test_labels: ``(M,)`` their labels.
      anchor_latents: ``(A, D)`` latents of the anchors (originals and augmented copies).
      anchor_labels: ``(A,)`` anchor labels (an augmented copy keeps its original's label).
      anchor_is_augmented: ``(A,)`` bool, True for augmented anchors.
      k: neighbours per test sample; needs at least k original and k augmented anchors.
    """
    test, y_test = _check_latents(test_latents, test_labels, "test")
    anchors, y_anchor = _check_latents(anchor_latents, anchor_labels, "anchor")
    is_aug = np.asarray(anchor_is_augmented, dtype=bool)
    if is_aug.shape != y_anchor.shape:
        raise ValueError(
            f"anchor_is_augmented must be ({y_anchor.shape[0]},), got shape {is_aug.shape}"
        )
    if test.shape[1] != anchors.shape[1]:
        raise ValueError(f"latent sizes differ: test {test.shape[1]}, anchors {anchors.shape[1]}")
    if test.shape[0] == 0:
        raise ValueError("neighbour_metrics needs at least one test sample")
    n_aug = int(is_aug.sum())
    if k < 1 or n_aug < k or anchors.shape[0] - n_aug < 1:
        raise ValueError(
            f"k = {k} neighbours need >= k augmented and >= 1 original anchors, got "
            f"{n_aug} augmented and {anchors.shape[0] - n_aug} original"
        )

    same_all, sim_all = _knn_label_agreement(anchors, y_anchor, test, y_test, k)
    same_aug, sim_aug = _knn_label_agreement(anchors[is_aug], y_anchor[is_aug], test, y_test, k)
    d_aug = _closest_same_label(anchors[is_aug], y_anchor[is_aug], test, y_test)
    d_orig = _closest_same_label(anchors[~is_aug], y_anchor[~is_aug], test, y_test)
    usable = np.isfinite(d_aug) & np.isfinite(d_orig) & (d_orig > ON_ANCHOR)
    ratio = float((d_aug[usable] / d_orig[usable]).mean()) if usable.any() else float("nan")
    return NeighbourMetrics(
        same_label_all=same_all,
        similarity_all=sim_all,
        same_label_aug=same_aug,
        similarity_aug=sim_aug,
        distance_ratio=ratio,
        n_ratio=int(usable.sum()),
        k=k,
    )


def anchor_set(
    train_latents: np.ndarray, train_labels: np.ndarray, augmented_latents: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacks originals and their augmented copies into anchors.

    Args:
      train_latents: ``(N, D)`` latents of the training samples.
      train_labels: ``(N,)`` their labels.
      augmented_latents: R arrays ``(N, D)``, the latents of R augmented copies (row i of
        each is a copy of training sample i).

    Returns:
      ``(A, D)`` anchors, ``(A,)`` labels and ``(A,)`` is-augmented flags, A = N (1 + R).
    """
    z, y = _check_latents(train_latents, train_labels, "train")
    for copy in augmented_latents:
        if np.shape(copy) != z.shape:
            raise ValueError(f"augmented latents must match train latents {z.shape}")
    stacked = np.concatenate([z, *augmented_latents], axis=0)
    labels = np.tile(y, 1 + len(augmented_latents))
    is_aug = np.repeat(np.arange(1 + len(augmented_latents)) > 0, z.shape[0])
    return stacked, labels, is_aug


def pair_distances(original: np.ndarray, augmented: np.ndarray) -> np.ndarray:
    """``(N,)`` Euclidean distance between ``f(x_i)`` and ``f(x'_i)``, both ``(N, D)``."""
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(augmented, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"original {a.shape} and augmented {b.shape} must be equal (N, D)")
    return np.linalg.norm(a - b, axis=1)


def distance_kde(distances: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE (scipy, Scott's bandwidth) of ``distances`` evaluated on ``grid``.

    Raises:
      ValueError: fewer than two distances, or no spread (the KDE is undefined; an
        augmentation that leaves every latent in place has no distribution to draw).
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"a KDE needs >= 2 distances, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("distances contain NaN or infinite values")
    if np.ptp(d) == 0:
        raise ValueError(f"all {d.size} distances equal {d[0]:.3g}: the KDE is undefined")
    return gaussian_kde(d)(np.asarray(grid, dtype=np.float64))


def tsne_embedding(latents: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """``(N, 2)`` t-SNE (scikit-learn, PCA init) of ``(N, D)`` latents; perplexity < N / 3."""
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 4:
        raise ValueError(f"t-SNE needs (N >= 4, D) latents, got shape {z.shape}")
    perplexity = min(perplexity, (z.shape[0] - 1) / 3.0)
    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed
    ).fit_transform(z)
