"""Folds and preprocessing (docs/augmentations.md: sample representation, class statistics).

Fold ``i`` of a dataset is a stratified 70/15/15 train/validation/test split drawn from a
seed derived from the dataset's identity and ``i`` only, so the same fold pairs runs across
every augmentation and configuration. Normalization constants (the IAT 99th percentile) and
the per-class statistics come from the training split alone.

Two variants follow the ``Flows``: with groups (``--group-field``) every group lands whole in
one part, the parts stratified by class as far as the groups allow (``split_groups``); with
predefined splits (tcbench's split file) fold ``i`` is split ``i`` of that file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np

from jtcaug import DIR, IAT, N_FEATURES, SIZE, T_DEFAULT
from jtcaug.aug.stats import Stats
from jtcaug.data.flows import DatasetError, Flows

log = logging.getLogger("jtcaug.data")

N_FOLDS = 80
SPLIT = (0.70, 0.15, 0.15)  # train, validation, test
SIZE_CLIP = 1460.0
IAT_FLOOR = 1e-7
# A training split whose IATs are (almost) all zero would make the log-scale degenerate;
# its q99 is raised to this floor (seconds) so the IAT channel is constant, not NaN.
MIN_IAT_Q99 = 1e-6
# A class needs one flow in each of the three parts.
MIN_FLOWS_PER_CLASS = 3


@dataclass(frozen=True, eq=False)
class Fold:
    """One train/validation/test fold, normalized and ready for training.

    Attributes:
      x_train, x_val, x_test: ``(N_*, T, 3)`` float32 normalized samples (size, dir, iat).
      y_train, y_val, y_test: ``(N_*,)`` int32 labels.
      idx_train, idx_val, idx_test: ``(N_*,)`` int64 row indices into the source ``Flows``.
      iat_q99: the training split's IAT 99th percentile (seconds).
      stats: per-class statistics of the normalized training split.
      class_names, n_classes, dataset (the ``Flows`` name), fold (its index).
      test_dataset: the name of the dataset the test split comes from when it is not
        ``dataset`` (``make_transfer_fold``), else None.
      unseen_test_counts: ``{class name: flows}`` of test-dataset classes the training
        split does not know; those flows are in no array above (they cannot be scored).
      idx_test_unseen: ``(M,)`` int64 rows of the test dataset holding those flows.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    idx_train: np.ndarray
    idx_val: np.ndarray
    idx_test: np.ndarray
    iat_q99: float
    stats: Stats
    class_names: tuple[str, ...]
    n_classes: int
    dataset: str
    fold: int
    test_dataset: str | None = None
    unseen_test_counts: dict[str, int] = field(default_factory=dict)
    idx_test_unseen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def fold_seed(identity: str, fold: int) -> int:
    """128-bit seed of fold ``fold`` of the dataset with ``identity`` (stable across runs)."""
    digest = hashlib.sha256(f"jtcaug-fold\0{identity}\0{fold}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def split_indices(
    labels: np.ndarray, seed: int, split: tuple[float, float, float] = SPLIT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split: per class, a seeded permutation cut into train/val/test.

    Each class gives ``round(p_val * n)`` and ``round(p_test * n)`` flows (at least one
    each) to validation and test and the rest to training. Returns sorted index arrays.
    """
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n = members.size
        n_val = max(1, int(round(split[1] * n)))
        n_test = max(1, int(round(split[2] * n)))
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def split_groups(
    labels: np.ndarray,
    groups: np.ndarray,
    seed: int,
    split: tuple[float, float, float] = SPLIT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grouped stratified split: every group goes whole to train, validation or test.

    Groups are visited in a seeded random order; each goes to the part whose per-class
    targets (``split`` times the class sizes) it fills the least so far, weighted by the
    group's flows per class; ties favour train, then validation. So a class's first group
    trains, its second and third go to validation and test, and later ones balance the
    shares. Returns sorted ``(N_*,)`` int64 index arrays.
    """
    labels = np.asarray(labels, np.int64)
    groups = np.asarray(groups, np.int64)
    n_classes = int(labels.max()) + 1 if labels.size else 0
    present, dense = np.unique(groups, return_inverse=True)
    counts = np.zeros((present.size, n_classes), np.float64)
    np.add.at(counts, (dense, labels), 1.0)
    targets = np.asarray(split, np.float64)[:, None] * counts.sum(axis=0)[None, :]
    filled = np.zeros_like(targets)
    part_of = np.zeros(present.size, np.int64)
    rng = np.random.default_rng(seed)
    for g in rng.permutation(present.size):
        classes = np.flatnonzero(counts[g])
        weight = counts[g, classes]
        want = targets[:, classes]
        deficit = (want - filled[:, classes]) / np.maximum(want, 1e-12)
        part = int(np.argmax(deficit @ weight))
        part_of[g] = part
        filled[part, classes] += weight
    where = part_of[dense]
    return tuple(np.flatnonzero(where == p).astype(np.int64) for p in range(3))


def iat_quantile(flows: Flows, t_len: int, q: float = 0.99) -> float:
    """``q``-quantile of the IATs of the first ``t_len`` real packets (seconds)."""
    iats = flows.iats[:, :t_len][flows.directions[:, :t_len] != 0]
    if iats.size == 0:
        raise DatasetError(f"{flows.name}: no packets to compute an IAT quantile from")
    return max(float(np.quantile(iats, q)), MIN_IAT_Q99)


def normalize(flows: Flows, iat_q99: float, t_len: int = T_DEFAULT) -> np.ndarray:
    """``(N, t_len, 3)`` float32 samples (docs/augmentations.md, "Sample representation").

    size: ``clip(size, 0, 1460) / 1460``; direction: +1 / -1, 0 on padding; iat:
    ``(log10(clip(iat, 1e-7, q99)) + 7) / (log10(q99) + 7)``. Padding is all-zero.
    """
    if t_len > flows.t_max:
        raise DatasetError(f"{flows.name}: t_len {t_len} exceeds the stored T_max {flows.t_max}")
    if not (np.isfinite(iat_q99) and iat_q99 > IAT_FLOOR):
        raise DatasetError(f"iat_q99 must be a finite number > {IAT_FLOOR} s, got {iat_q99}")
    present = flows.directions[:, :t_len] != 0
    x = np.zeros((flows.n_flows, t_len, N_FEATURES), np.float32)
    x[..., SIZE] = np.clip(flows.sizes[:, :t_len], 0.0, SIZE_CLIP) / SIZE_CLIP
    x[..., DIR] = flows.directions[:, :t_len]
    log_iat = np.log10(np.clip(flows.iats[:, :t_len], IAT_FLOOR, iat_q99))
    scaled = (log_iat - np.log10(IAT_FLOOR)) / (np.log10(iat_q99) - np.log10(IAT_FLOOR))
    x[..., IAT] = np.where(present, scaled, 0.0)
    return x


def make_fold(flows: Flows, fold: int, *, n_folds: int = N_FOLDS, t_len: int = T_DEFAULT) -> Fold:
    """Fold ``fold`` (0-based, < ``n_folds``) of ``flows``, normalized to ``(N, t_len, 3)``.

    The split depends only on ``flows.identity`` and ``fold``; ``n_folds`` bounds the index.
    Flows with groups get a grouped split (``split_groups``); flows with predefined splits
    use split ``fold`` of them (then their count bounds the index too).
    """
    if isinstance(fold, bool) or not isinstance(fold, int | np.integer):
        raise DatasetError(f"fold must be an integer, got {fold!r}")
    if not 0 <= fold < n_folds:
        raise DatasetError(f"fold {fold} out of range: expected 0 <= fold < {n_folds}")
    if not 1 <= t_len <= flows.t_max:
        raise DatasetError(f"t_len must lie in [1, {flows.t_max}], got {t_len}")
    idx_train, idx_val, idx_test = fold_indices(flows, int(fold))
    train = flows.subset(idx_train)
    q99 = iat_quantile(train, t_len)
    x_train = normalize(train, q99, t_len)
    y_train = train.labels
    stats = Stats.from_training(x_train, y_train, flows.n_classes, q99)
    return Fold(
        x_train=x_train,
        y_train=y_train,
        x_val=normalize(flows.subset(idx_val), q99, t_len),
        y_val=flows.labels[idx_val],
        x_test=normalize(flows.subset(idx_test), q99, t_len),
        y_test=flows.labels[idx_test],
        idx_train=idx_train,
        idx_val=idx_val,
        idx_test=idx_test,
        iat_q99=q99,
        stats=stats,
        class_names=flows.class_names,
        n_classes=flows.n_classes,
        dataset=flows.name,
        fold=int(fold),
    )


def fold_indices(flows: Flows, fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted train/validation/test row indices of fold ``fold`` (module docstring)."""
    if flows.splits is not None:
        if fold >= len(flows.splits):
            raise DatasetError(
                f"fold {fold} out of range: {flows.name}'s split file holds "
                f"{len(flows.splits)} splits (folds 0..{len(flows.splits) - 1})"
            )
        return flows.splits[fold]
    seed = fold_seed(flows.identity, fold)
    if flows.groups is not None:
        few = few_groups(flows, 3)
        if few:
            log.warning(
                "%s: classes with fewer %s groups than the 3 parts cannot appear in every part: %s",
                flows.name,
                flows.group_field,
                ", ".join(few),
            )
        return split_groups(flows.labels, flows.groups, seed)
    counts = flows.class_counts()
    small = [
        f"{name} ({c})"
        for name, c in zip(flows.class_names, counts, strict=True)
        if c < MIN_FLOWS_PER_CLASS
    ]
    if small:
        raise DatasetError(
            f"{flows.name}: a stratified 70/15/15 split needs >= {MIN_FLOWS_PER_CLASS} flows "
            f"per class; too few in {', '.join(small)}"
        )
    return split_indices(flows.labels, seed)


def few_groups(flows: Flows, n_parts: int) -> list[str]:
    """``"name (k)"`` for every class with fewer than ``n_parts`` groups."""
    per_class = flows.group_counts()
    return [
        f"{name} ({k})" for name, k in zip(flows.class_names, per_class, strict=True) if k < n_parts
    ]
