"""G3 geometry metrics on a hand-built latent set (2-d latents, cosines worked out by hand)."""

import numpy as np
import pytest

from jtcaug.evaluation import geometry

# Anchors (label, latent). Cosines with the test samples t1 = (1, 0), label 0, and
# t2 = (0, 1), label 1:
#            t1                 t2
#   o1 0 (1, .5)   2/sqrt5 = .894   1/sqrt5 = .447
#   o2 1 (-.5, 1) -1/sqrt5          2/sqrt5 = .894
#   a1 0 (1, 1)    1/sqrt2 = .707   1/sqrt2 = .707
#   a2 1 (-1, 3)  -1/sqrt10         3/sqrt10 = .949
#   a3 1 (1, .2)   1/sqrt1.04 = .981  .2/sqrt1.04 = .196
ANCHORS = np.array([[1, 0.5], [-0.5, 1], [1, 1], [-1, 3], [1, 0.2]])
ANCHOR_LABELS = np.array([0, 1, 0, 1, 1])
IS_AUG = np.array([False, False, True, True, True])
TEST = np.array([[1.0, 0.0], [0.0, 1.0]])
TEST_LABELS = np.array([0, 1])
C_O1_T1 = 2 / np.sqrt(5)
C_O2_T2 = 2 / np.sqrt(5)
C_A1 = 1 / np.sqrt(2)
C_A2_T2 = 3 / np.sqrt(10)
C_A3_T1 = 1 / np.sqrt(1.04)


def test_neighbour_metrics_hand_built():
    m = geometry.neighbour_metrics(TEST, TEST_LABELS, ANCHORS, ANCHOR_LABELS, IS_AUG, k=2)
    # All anchors: t1 -> a3 (label 1), o1 (0): 1 same; t2 -> a2 (1), o2 (1): 2 same.
    assert m.same_label_all == pytest.approx(1.5)
    assert m.similarity_all == pytest.approx((C_A3_T1 + C_O1_T1 + C_A2_T2 + C_O2_T2) / 4)
    # Augmented only: t1 -> a3 (1), a1 (0); t2 -> a2 (1), a1 (0): 1 same each.
    assert m.same_label_aug == pytest.approx(1.0)
    assert m.similarity_aug == pytest.approx((C_A3_T1 + C_A1 + C_A2_T2 + C_A1) / 4)
    # Closest same-label: t1 aug a1 vs orig o1; t2 aug a2 vs orig o2 (cosine distances).
    ratio_t1 = (1 - C_A1) / (1 - C_O1_T1)
    ratio_t2 = (1 - C_A2_T2) / (1 - C_O2_T2)
    assert m.distance_ratio == pytest.approx((ratio_t1 + ratio_t2) / 2)
    assert m.n_ratio == 2
    assert m.k == 2


def test_metrics_ignore_latent_scale():
    scaled = ANCHORS * np.array([[3.0], [0.5], [2.0], [7.0], [1.5]])
    a = geometry.neighbour_metrics(TEST, TEST_LABELS, ANCHORS, ANCHOR_LABELS, IS_AUG, k=2)
    b = geometry.neighbour_metrics(TEST * 4, TEST_LABELS, scaled, ANCHOR_LABELS, IS_AUG, k=2)
    assert a.to_dict() == pytest.approx(b.to_dict())


def test_test_sample_on_an_original_anchor_is_left_out_of_the_ratio():
    test = np.array([[1.0, 0.5], [0.0, 1.0]])  # t1 sits exactly on o1
    m = geometry.neighbour_metrics(test, TEST_LABELS, ANCHORS, ANCHOR_LABELS, IS_AUG, k=2)
    assert m.n_ratio == 1
    assert m.distance_ratio == pytest.approx((1 - C_A2_T2) / (1 - C_O2_T2))


def test_anchor_set_stacks_originals_then_copies():
    z = np.arange(6, dtype=np.float64).reshape(3, 2)
    y = np.array([0, 1, 1])
    anchors, labels, is_aug = geometry.anchor_set(z, y, [z + 10, z + 20])
    assert anchors.shape == (9, 2)
    np.testing.assert_array_equal(anchors[3:6], z + 10)
    np.testing.assert_array_equal(labels, [0, 1, 1] * 3)
    np.testing.assert_array_equal(is_aug, [False] * 3 + [True] * 6)


def test_pair_distances_and_kde():
    a = np.zeros((4, 2))
    b = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0], [1.0, 0.0]])
    d = geometry.pair_distances(a, b)
    np.testing.assert_allclose(d, [5.0, 1.0, 2.0, 1.0])
    grid = np.linspace(-10, 16, 261)
    density = geometry.distance_kde(d, grid)
    assert density.shape == grid.shape
    assert np.all(density >= 0)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=0.05)
    assert 0.0 < grid[np.argmax(density)] < 3.0  # the mass sits at the three small distances


def test_kde_of_identical_distances_is_refused():
    with pytest.raises(ValueError, match="KDE is undefined"):
        geometry.distance_kde(np.zeros(5), np.linspace(0, 1, 5))


def test_tsne_embedding_shape_and_determinism():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 1, (15, 8)), rng.normal(6, 1, (15, 8))])
    e1 = geometry.tsne_embedding(z, seed=3)
    e2 = geometry.tsne_embedding(z, seed=3)
    assert e1.shape == (30, 2)
    np.testing.assert_array_equal(e1, e2)
    # The two clusters stay apart in 2-d.
    c0, c1 = e1[:15].mean(0), e1[15:].mean(0)
    spread = max(e1[:15].std(0).max(), e1[15:].std(0).max())
    assert np.linalg.norm(c0 - c1) > 2 * spread


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=4), "k = 4"),
        (dict(anchor_is_augmented=IS_AUG[:3]), "anchor_is_augmented"),
        (dict(test_latents=np.array([[np.nan, 1.0], [0.0, 1.0]])), "NaN"),
        (dict(test_latents=np.ones((2, 3))), "latent sizes"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(test_latents=TEST, test_labels=TEST_LABELS, anchor_latents=ANCHORS,
                anchor_labels=ANCHOR_LABELS, anchor_is_augmented=IS_AUG, k=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        geometry.neighbour_metrics(**args)
