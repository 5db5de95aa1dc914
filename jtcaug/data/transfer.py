"""Train here, test there: a fold whose test split is another dataset.

Training and validation come from fold ``i`` of the first dataset, exactly as ``make_fold``
draws them; the test split is the whole second dataset, normalized with the training
split's constants. Classes are matched by name. Test flows of a class the training split
never saw cannot be scored as any known class: they are kept out of ``x_test`` and counted
per class in ``Fold.unseen_test_counts`` (their rows in ``Fold.idx_test_unseen``), so the
caller reports them apart instead of losing or mis-scoring them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jtcaug import T_DEFAULT
from jtcaug.data.flows import DatasetError, Flows
from jtcaug.data.folds import N_FOLDS, Fold, make_fold, normalize


def match_labels(train_names: tuple[str, ...], test_flows: Flows) -> np.ndarray:
    """``(N_test,)`` int64 training class id of every test flow, -1 where unseen.

    Raises:
      DatasetError: the two datasets share no class name.
    """
    index = {name: i for i, name in enumerate(train_names)}
    of_test_class = np.array([index.get(n, -1) for n in test_flows.class_names], np.int64)
    if test_flows.n_flows and not (of_test_class >= 0).any():
        raise DatasetError(
            f"test dataset {test_flows.name} shares no class with the training set: "
            f"training has {list(train_names)}, test has {list(test_flows.class_names)}"
        )
    return of_test_class[test_flows.labels]


def make_transfer_fold(
    train_flows: Flows,
    test_flows: Flows,
    fold: int,
    *,
    n_folds: int = N_FOLDS,
    t_len: int = T_DEFAULT,
) -> Fold:
    """Fold ``fold`` of ``train_flows`` with ``test_flows`` as its test split.

    Returns a ``Fold`` with ``x_train``/``x_val`` (and their labels, indices, stats, IAT
    quantile) from ``make_fold(train_flows, fold)``; ``x_test`` ``(M, t_len, 3)`` holds the
    test flows whose class the training set knows, ``y_test`` their training class ids,
    ``idx_test`` their rows in ``test_flows``; ``test_dataset`` names ``test_flows``.
    """
    if not 1 <= t_len <= test_flows.t_max:
        raise DatasetError(
            f"t_len must lie in [1, {test_flows.t_max}] for test dataset {test_flows.name}, "
            f"got {t_len}"
        )
    if test_flows.n_flows == 0:
        raise DatasetError(f"test dataset {test_flows.name} holds no flows")
    mapped = match_labels(train_flows.class_names, test_flows)
    base = make_fold(train_flows, fold, n_folds=n_folds, t_len=t_len)
    seen = np.flatnonzero(mapped >= 0).astype(np.int64)
    unseen = np.flatnonzero(mapped < 0).astype(np.int64)
    unseen_counts = np.bincount(test_flows.labels[unseen], minlength=test_flows.n_classes)
    return dataclasses.replace(
        base,
        x_test=normalize(test_flows.subset(seen), base.iat_q99, t_len),
        y_test=mapped[seen].astype(np.int32),
        idx_test=seen,
        test_dataset=test_flows.name,
        unseen_test_counts={
            name: int(c) for name, c in zip(test_flows.class_names, unseen_counts, strict=True) if c
        },
        idx_test_unseen=unseen,
    )
