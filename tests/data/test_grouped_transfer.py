"""Grouped folds (``--group-field``) and train-here-test-there folds."""

import logging

import numpy as np
import pytest

from jtcaug.data import DatasetError, make_fold
from jtcaug.data.folds import split_groups
from jtcaug.data.transfer import make_transfer_fold


def _grouped(flows, per_class: int, seed: int = 0):
    """Every class's flows spread over ``per_class`` groups of uneven size."""
    rng = np.random.default_rng(seed)
    within = (rng.pareto(1.5, flows.n_flows) * per_class).astype(np.int64) % per_class
    groups = flows.labels.astype(np.int64) * per_class + within
    names = [f"g{i}" for i in range(flows.n_classes * per_class)]
    return flows.with_groups(groups, names, "session")


def test_groups_never_straddle_parts_and_classes_reach_every_part(small_synthetic):
    flows = _grouped(small_synthetic, per_class=12)
    fold = make_fold(flows, 3)
    part_of = {}
    for part, idx in enumerate((fold.idx_train, fold.idx_val, fold.idx_test)):
        for g in np.unique(flows.groups[idx]):
            assert part_of.setdefault(int(g), part) == part, f"group {g} straddles parts"
    every = np.concatenate([fold.idx_train, fold.idx_val, fold.idx_test])
    np.testing.assert_array_equal(np.sort(every), np.arange(flows.n_flows))
    for y in (fold.y_train, fold.y_val, fold.y_test):
        assert set(np.unique(y)) == set(range(flows.n_classes))
    share = fold.idx_train.size / flows.n_flows
    assert 0.55 < share < 0.85, share


def test_grouped_folds_are_seeded_by_fold_and_groups(small_synthetic):
    flows = _grouped(small_synthetic, per_class=12)
    a, b = make_fold(flows, 0), make_fold(_grouped(small_synthetic, per_class=12), 0)
    np.testing.assert_array_equal(a.idx_test, b.idx_test)
    assert not np.array_equal(make_fold(flows, 1).idx_test, a.idx_test)
    # Grouping changes the split of the very same flows.
    assert not np.array_equal(make_fold(small_synthetic, 0).idx_test, a.idx_test)


def test_split_groups_worked_example():
    # Class 0 in groups 0..3, class 1 in groups 4..6; one flow per group except group 0.
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    groups = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    train, val, test = split_groups(labels, groups, seed=1)
    for cls in (0, 1):
        for part in (train, val, test):
            assert (labels[part] == cls).any()
    assert set(groups[train]).isdisjoint(groups[val]) and set(groups[val]).isdisjoint(groups[test])


def test_few_groups_warn_and_still_train(small_synthetic, caplog):
    flows = _grouped(small_synthetic, per_class=2)
    with caplog.at_level(logging.WARNING, logger="jtcaug.data"):
        fold = make_fold(flows, 0)
    assert "fewer session groups than the 3 parts" in caplog.text
    assert set(np.unique(fold.y_train)) == set(range(flows.n_classes))


def test_info_summary_reports_groups_per_class(small_synthetic):
    summary = _grouped(small_synthetic, per_class=4).summary()
    assert summary["group_field"] == "session" and summary["groups"] == 80
    assert set(summary["groups_per_class"].values()) <= {3, 4}


# ---------------------------------------------------------------------------------------------
# Train here, test there.


def _renamed(flows, names):
    return type(flows)(
        sizes=flows.sizes,
        directions=flows.directions,
        iats=flows.iats,
        n_packets=flows.n_packets,
        labels=flows.labels,
        class_names=tuple(names),
        name=flows.name + "-there",
    )


def test_transfer_fold_matches_labels_by_name(small_synthetic):
    names = list(small_synthetic.class_names)
    # The test set orders its classes differently and knows two classes training lacks.
    renamed = names[::-1]
    renamed[0], renamed[1] = "new.app.one", "new.app.two"
    there = _renamed(small_synthetic, renamed)
    fold = make_transfer_fold(small_synthetic, there, 2)
    home = make_fold(small_synthetic, 2)
    np.testing.assert_array_equal(fold.x_train, home.x_train)
    np.testing.assert_array_equal(fold.idx_val, home.idx_val)
    assert fold.test_dataset == there.name and fold.dataset == small_synthetic.name
    counts = there.class_counts()
    assert fold.unseen_test_counts == {"new.app.one": counts[0], "new.app.two": counts[1]}
    assert fold.idx_test.size + fold.idx_test_unseen.size == there.n_flows
    # Every scored test flow carries the training id of its class name.
    train_id = {n: i for i, n in enumerate(small_synthetic.class_names)}
    expect = [train_id[renamed[c]] for c in there.labels[fold.idx_test]]
    np.testing.assert_array_equal(fold.y_test, expect)
    assert fold.x_test.shape == (fold.idx_test.size, 20, 3)


def test_transfer_without_shared_labels_is_an_error(small_synthetic):
    there = _renamed(small_synthetic, [f"other{i}" for i in range(small_synthetic.n_classes)])
    with pytest.raises(DatasetError, match="shares no class"):
        make_transfer_fold(small_synthetic, there, 0)
