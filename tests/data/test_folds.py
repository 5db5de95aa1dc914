"""Folds: determinism, stratification, train-only normalization, padding-free statistics."""

import chex
import numpy as np
import pytest

from jtcaug import DIR, IAT, SIZE
from jtcaug.data import DatasetError, Flows, generate, make_fold, normalize
from jtcaug.data.folds import iat_quantile


def test_same_fold_same_split_across_loads(small_synthetic):
    again = generate("synthetic-mirage19", scale=0.05, seed=0)
    a, b = make_fold(small_synthetic, 7), make_fold(again, 7)
    for part in ("idx_train", "idx_val", "idx_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    # n_folds only bounds the index: fold 7 of 10 is fold 7 of 80.
    np.testing.assert_array_equal(make_fold(again, 7, n_folds=10).idx_test, a.idx_test)
    assert not np.array_equal(make_fold(again, 8).idx_test, a.idx_test)


def test_split_is_a_stratified_partition(small_synthetic):
    fold = make_fold(small_synthetic, 0)
    parts = np.concatenate([fold.idx_train, fold.idx_val, fold.idx_test])
    np.testing.assert_array_equal(np.sort(parts), np.arange(small_synthetic.n_flows))
    counts = small_synthetic.class_counts()
    for part, share in ((fold.y_val, 0.15), (fold.y_test, 0.15), (fold.y_train, 0.70)):
        got = np.bincount(part, minlength=small_synthetic.n_classes)
        assert np.all(np.abs(got - share * counts) <= 1.0), (got, share * counts)
    np.testing.assert_array_equal(fold.y_test, small_synthetic.labels[fold.idx_test])


def test_fold_arrays_shapes_and_types(small_synthetic):
    fold = make_fold(small_synthetic, 1, t_len=20)
    chex.assert_shape(fold.x_train, (fold.idx_train.size, 20, 3))
    chex.assert_type([fold.x_train, fold.x_val, fold.x_test], np.float32)
    chex.assert_type([fold.y_train, fold.y_val, fold.y_test], np.int32)
    assert fold.n_classes == 20 and fold.dataset == small_synthetic.name and fold.fold == 1
    assert fold.stats.sigma.shape == (20, 20, 3)
    for x in (fold.x_train, fold.x_val, fold.x_test):
        assert x.min() >= -1 and x.max() <= 1
        padding = x[..., DIR] == 0
        assert (x[padding] == 0).all()


def test_normalization_is_fitted_on_train_only(small_synthetic):
    fold = make_fold(small_synthetic, 2)
    train = small_synthetic.subset(fold.idx_train)
    assert fold.iat_q99 == pytest.approx(iat_quantile(train, 20))
    # Blow up every non-training IAT: training arrays and q99 must not move.
    iats = small_synthetic.iats.copy()
    others = np.concatenate([fold.idx_val, fold.idx_test])
    iats[others] = np.where(small_synthetic.directions[others] != 0, iats[others] * 1e3, 0.0)
    changed = Flows(
        sizes=small_synthetic.sizes,
        directions=small_synthetic.directions,
        iats=iats,
        n_packets=small_synthetic.n_packets,
        labels=small_synthetic.labels,
        class_names=small_synthetic.class_names,
        name=small_synthetic.name,
    )
    fold2 = make_fold(changed, 2)
    assert fold2.iat_q99 == fold.iat_q99
    np.testing.assert_array_equal(fold2.x_train, fold.x_train)
    assert not np.array_equal(fold2.x_test, fold.x_test)


def test_stats_exclude_padding(small_synthetic):
    fold = make_fold(small_synthetic, 3)
    x, y = fold.x_train.astype(np.float64), fold.y_train
    cls, pos, feat = 4, 15, IAT
    values = x[(y == cls) & (x[:, pos, DIR] != 0), pos, feat]
    assert values.size >= 2 and values.size < (y == cls).sum()  # some flows are padded there
    np.testing.assert_allclose(fold.stats.sigma[cls, pos, feat], values.std(), rtol=1e-5)
    pooled = x[y == cls][..., SIZE][x[y == cls][..., DIR] != 0]
    np.testing.assert_allclose(fold.stats.sigma_global[cls, SIZE], pooled.std(), rtol=1e-5)
    assert float(fold.stats.iat_q99) == pytest.approx(fold.iat_q99)


def test_normalize_worked_values():
    flows = Flows(
        sizes=np.array([[100.0, 2000.0, 1460.0] + [0.0] * 17]),
        directions=np.array([[1, -1, 1] + [0] * 17]),
        iats=np.array([[0.0, 1e-3, 10.0] + [0.0] * 17]),
        n_packets=np.array([3]),
        labels=np.array([0]),
        class_names=("a",),
        name="tiny",
    )
    x = normalize(flows, iat_q99=1.0, t_len=20)
    np.testing.assert_allclose(x[0, :3, SIZE], [100 / 1460, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(x[0, :3, DIR], [1, -1, 1])
    # (log10(clip(iat, 1e-7, 1)) + 7) / (log10(1) + 7)
    np.testing.assert_allclose(x[0, :3, IAT], [0.0, 4 / 7, 1.0], rtol=1e-6)
    assert (x[0, 3:] == 0).all()


def test_bad_fold_requests(small_synthetic):
    with pytest.raises(DatasetError, match="fold 80 out of range"):
        make_fold(small_synthetic, 80)
    with pytest.raises(DatasetError, match="out of range"):
        make_fold(small_synthetic, -1)
    with pytest.raises(DatasetError, match="must be an integer"):
        make_fold(small_synthetic, 1.5)
    with pytest.raises(DatasetError, match="t_len"):
        make_fold(small_synthetic, 0, t_len=64)
    tiny = small_synthetic.subset(np.flatnonzero(small_synthetic.labels == 0)[:2])
    with pytest.raises(DatasetError, match=">= 3 flows per class"):
        make_fold(tiny, 0)
