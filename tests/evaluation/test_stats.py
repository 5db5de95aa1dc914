"""Campaign statistics against known values and against scipy on fixed data."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from jtcaug.evaluation import stats

# Fixed (folds x configs) weighted F1 scores, no ties within a fold.
SCORES = np.array(
    [
        [0.751, 0.780, 0.772, 0.760],
        [0.748, 0.791, 0.765, 0.770],
        [0.760, 0.785, 0.779, 0.758],
        [0.739, 0.776, 0.761, 0.763],
        [0.755, 0.782, 0.770, 0.752],
        [0.744, 0.790, 0.768, 0.766],
    ]
)


@pytest.mark.parametrize(
    "k, q_expected",
    # Demsar (2006), Table 5(a): two-tailed Nemenyi critical values q_0.05.
    [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)],
)
def test_nemenyi_q_matches_demsar_table(k, q_expected):
    assert stats.nemenyi_q(k, 0.05) == pytest.approx(q_expected, abs=1e-3)


def test_critical_distance_k4_n10():
    assert stats.nemenyi_q(4, 0.05) == pytest.approx(2.569, abs=1e-3)
    assert stats.critical_distance(4, 10, 0.05) == pytest.approx(1.483, abs=1e-3)


def test_critical_distance_shrinks_with_more_folds():
    assert stats.critical_distance(19, 80) < stats.critical_distance(19, 10)


def test_fold_ranks_paper_examples_with_ties_averaged():
    # Sec. 5.1: F1 0.9, 0.7, 0.8 -> ranks 1, 3, 2; F1 0.9, 0.9, 0.8 -> 1.5, 1.5, 3.
    ranks = stats.fold_ranks(np.array([[0.9, 0.7, 0.8], [0.9, 0.9, 0.8]]))
    np.testing.assert_array_equal(ranks, [[1.0, 3.0, 2.0], [1.5, 1.5, 3.0]])
    np.testing.assert_array_equal(stats.mean_ranks(np.array([[0.9, 0.7, 0.8], [0.9, 0.9, 0.8]])),
                                  [1.25, 2.25, 2.5])


def test_fold_ranks_rows_sum_to_triangular_number():
    ranks = stats.fold_ranks(SCORES)
    np.testing.assert_allclose(ranks.sum(axis=1), 4 * 5 / 2)
    np.testing.assert_array_equal(ranks[:, 1], 1.0)  # config 1 wins every fold


def test_friedman_against_scipy_and_formula():
    result = stats.friedman_test(SCORES)
    reference = scipy_stats.friedmanchisquare(*SCORES.T)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.pvalue == pytest.approx(reference.pvalue)
    # Without ties: chi2 = 12 N / (k (k + 1)) * sum_j (R_j - (k + 1) / 2)^2.
    n, k = SCORES.shape
    r = stats.mean_ranks(SCORES)
    expected = 12 * n / (k * (k + 1)) * np.sum((r - (k + 1) / 2) ** 2)
    assert result.statistic == pytest.approx(expected)


def test_friedman_needs_three_configs_and_two_folds():
    with pytest.raises(ValueError, match="3 configs"):
        stats.friedman_test(SCORES[:, :2])
    with pytest.raises(ValueError, match="2 folds"):
        stats.friedman_test(SCORES[:1])


def test_wilcoxon_against_scipy_and_exact_value():
    x, y = SCORES[:, 1], SCORES[:, 2]
    result = stats.wilcoxon_test(x, y)
    reference = scipy_stats.wilcoxon(x, y)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.pvalue == pytest.approx(reference.pvalue)
    # All 6 differences positive: exact two-sided p = 2 / 2^6.
    assert result.statistic == 0.0
    assert result.pvalue == pytest.approx(2 / 64)


def test_wilcoxon_identical_samples_give_p_one():
    result = stats.wilcoxon_test([0.7, 0.8, 0.9], [0.7, 0.8, 0.9])
    assert result.pvalue == 1.0


def test_mean_ci_student_t():
    ci = stats.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # sem = sqrt(2.5 / 5); t_{0.975, 4} = 2.7764.
    assert ci.mean == 3.0
    assert ci.half_width == pytest.approx(2.776445 * np.sqrt(0.5), rel=1e-5)
    assert ci.low < 3.0 < ci.high
    assert ci.n == 5


def test_mean_ci_constant_values_and_single_value():
    assert stats.mean_ci([0.5, 0.5, 0.5]).half_width == 0.0
    assert np.isnan(stats.mean_ci([0.5]).half_width)


def test_paired_gain_is_per_fold_difference():
    gain = stats.paired_gain(SCORES[:, 1], SCORES[:, 0])
    expected = stats.mean_ci(SCORES[:, 1] - SCORES[:, 0])
    assert gain == expected
    assert gain.mean > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: stats.paired_gain([1.0, 2.0], [1.0]), "pair"),
        (lambda: stats.mean_ci([1.0, np.nan]), "NaN"),
        (lambda: stats.fold_ranks(np.array([[0.1, np.nan]])), "NaN"),
        (lambda: stats.wilcoxon_test([1.0], [1.0, 2.0]), "equal length"),
        (lambda: stats.nemenyi_q(1), "k >= 2"),
        (lambda: stats.critical_distance(4, 0), "N >= 1"),
        (lambda: stats.mean_ci([1.0, 2.0], confidence=1.5), "confidence"),
    ],
)
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_nemenyi_pvalues_symmetric_with_unit_diagonal():
    p = stats.nemenyi_pvalues(SCORES)
    assert p.shape == (4, 4)
    np.testing.assert_allclose(p, p.T)
    np.testing.assert_allclose(np.diag(p), 1.0)
    # Best (always rank 1) vs worst-ranked config differs most.
    assert p[1, 0] == p.min()


def test_equivalent_groups_are_maximal_runs_within_cd():
    assert stats.equivalent_groups([1.0, 1.5, 3.0, 3.2, 5.0], cd=1.0) == [(0, 1), (2, 3)]
    # Overlapping runs: both kept, neither contains the other.
    assert stats.equivalent_groups([1.0, 1.8, 2.6], cd=1.0) == [(0, 1), (1, 2)]
    # Unsorted input: indices refer to the input order.
    assert stats.equivalent_groups([3.0, 1.0, 1.2], cd=0.5) == [(1, 2)]
    assert stats.equivalent_groups([1.0, 2.0, 3.0], cd=0.5) == []


def test_majority_minority_split_and_weighted_mean():
    major, minor = stats.majority_minority_split({"a": 10, "b": 300, "c": 50, "d": 50, "e": 7})
    assert major == ["b", "c", "d"]
    assert minor == ["a", "e"]
    assert stats.support_weighted_mean(np.array([1.0, 0.0]), np.array([3, 1])) == 0.75


def test_spearman_against_scipy():
    x, y = [1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0]
    assert stats.spearman(x, y).statistic == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    # Every run hit the epoch cap: no correlation to report, and no warning.
    assert np.isnan(stats.spearman(x, [5.0] * 4).pvalue)
