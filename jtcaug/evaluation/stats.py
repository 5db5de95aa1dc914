"""Campaign statistics over folds: gains with CIs, ranks, Friedman, Nemenyi, Wilcoxon.

Pure functions, numpy in, numbers out. Every test statistic comes from scipy or scikit-posthocs;
this module only validates inputs, arranges them and names the results.

Layout convention: a *score matrix* is ``(N, k)`` with one row per fold (a block of the paired
design) and one column per configuration; higher scores are better (weighted F1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scikit_posthocs
from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values with the half width of its Student-t confidence interval.

    ``half_width`` is NaN when ``n < 2`` (no spread can be estimated from one value).
    """

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


@dataclasses.dataclass(frozen=True)
class TestResult:
    """A test statistic and its p-value."""

    statistic: float
    pvalue: float


def _as_finite_1d(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-d, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr


def _as_score_matrix(scores: np.ndarray, min_configs: int = 2) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"scores must be (folds, configs), got shape {arr.shape}")
    n_folds, k = arr.shape
    if n_folds < 1 or k < min_configs:
        raise ValueError(
            f"scores need >= 1 fold and >= {min_configs} configs, got {n_folds} x {k}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("scores contain NaN or infinite values (a fold without every config?)")
    return arr


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval of ``(n,)`` values (e.g. one value per fold)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    arr = _as_finite_1d(values, "values")
    n = arr.size
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    if n < 2:
        return MeanCI(mean=float(arr[0]), half_width=float("nan"), n=1)
    # t.ppf * sem rather than t.interval: interval() returns NaN when all values are equal.
    t_quantile = scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)
    half = float(t_quantile * scipy_stats.sem(arr))
    return MeanCI(mean=float(arr.mean()), half_width=half, n=n)


def paired_gain(
    scores: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
) -> MeanCI:
    """Mean per-fold gain ``scores - baseline`` with its Student-t interval.

    Args:
      scores: ``(N,)`` a configuration's metric on N folds.
      baseline: ``(N,)`` the baseline's metric on the same folds, in the same order.
    """
    s = _as_finite_1d(scores, "scores")
    b = _as_finite_1d(baseline, "baseline")
    if s.shape != b.shape:
        raise ValueError(f"scores {s.shape} and baseline {b.shape} must pair fold by fold")
    return mean_ci(s - b, confidence)


def fold_ranks(scores: np.ndarray) -> np.ndarray:
    """Per-fold ranks, 1 = best (highest score), ties share the average of their ranks.

    Args:
      scores: ``(N, k)`` score matrix.

    Returns:
      ``(N, k)`` float ranks; each row sums to ``k (k + 1) / 2``.
    """
    arr = _as_score_matrix(scores, min_configs=1)
    return scipy_stats.rankdata(-arr, method="average", axis=1)


def mean_ranks(scores: np.ndarray) -> np.ndarray:
    """``(k,)`` mean over folds of :func:`fold_ranks` (lower is better)."""
    return fold_ranks(scores).mean(axis=0)


def friedman_test(scores: np.ndarray) -> TestResult:
    """Friedman test that all ``k >= 3`` configurations of an ``(N, k)`` matrix rank alike."""
    arr = _as_score_matrix(scores, min_configs=3)
    if arr.shape[0] < 2:
        raise ValueError(f"the Friedman test needs >= 2 folds, got {arr.shape[0]}")
    result = scipy_stats.friedmanchisquare(*arr.T)
    return TestResult(float(result.statistic), float(result.pvalue))


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value ``q_alpha`` of the Nemenyi test: studentized range quantile / sqrt(2)."""
    if k < 2:
        raise ValueError(f"the Nemenyi test compares k >= 2 configurations, got {k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(scipy_stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0))


def critical_distance(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical distance ``q_alpha * sqrt(k (k + 1) / (6 N))`` between mean ranks."""
    if n < 1:
        raise ValueError(f"the critical distance needs N >= 1 folds, got {n}")
    return nemenyi_q(k, alpha) * float(np.sqrt(k * (k + 1) / (6.0 * n)))


def nemenyi_pvalues(scores: np.ndarray) -> np.ndarray:
    """``(k, k)`` pairwise Nemenyi p-values (scikit-posthocs) for an ``(N, k)`` score matrix."""
    arr = _as_score_matrix(scores, min_configs=2)
    return np.asarray(scikit_posthocs.posthoc_nemenyi_friedman(arr), dtype=np.float64)


def equivalent_groups(ranks: Sequence[float] | np.ndarray, cd: float) -> list[tuple[int, ...]]:
    """Maximal groups of configurations whose mean ranks all lie within ``cd`` of each other.

    These are the bars of a critical-distance diagram: configurations sorted by mean rank,
    each bar spans a run of neighbours whose extreme ranks differ by less than ``cd``; runs
    contained in a longer run and single configurations are dropped.

    Returns:
      Groups of indices into ``ranks``, each sorted from best to worst rank, groups ordered
      by their best member.
    """
    r = _as_finite_1d(ranks, "ranks")
    order = np.argsort(r, kind="stable")
    groups: list[tuple[int, ...]] = []
    last_end = -1
    for start in range(order.size):
        end = start
        while end + 1 < order.size and r[order[end + 1]] - r[order[start]] < cd:
            end += 1
        if end > start and end > last_end:
            groups.append(tuple(int(i) for i in order[start : end + 1]))
            last_end = end
    return groups


def wilcoxon_test(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided Wilcoxon signed-rank test on paired samples ``(n,)``, ``(n,)`` (scipy).

    When every pair is equal the test has nothing to rank; that case returns statistic 0
    and p-value 1 (no evidence of a difference) instead of scipy's NaN and warning.
    """
    a = _as_finite_1d(x, "x")
    b = _as_finite_1d(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x {a.shape} and y {b.shape} must be paired samples of equal length")
    if a.size == 0:
        raise ValueError("the Wilcoxon test needs at least one pair")
    if np.all(a == b):
        return TestResult(0.0, 1.0)
    result = scipy_stats.wilcoxon(a, b)
    return TestResult(float(result.statistic), float(result.pvalue))


def support_weighted_mean(values: np.ndarray, support: np.ndarray) -> float:
    """Mean of per-class ``values`` weighted by class ``support`` (NaN when support sums to 0)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(support, dtype=np.float64)
    if v.shape != w.shape:
        raise ValueError(f"values {v.shape} and support {w.shape} must match")
    total = w.sum()
    return float(np.dot(v, w) / total) if total > 0 else float("nan")


def majority_minority_split(class_sizes: dict[str, int]) -> tuple[list[str], list[str]]:
    """Splits classes into majority and minority halves by size.

    Classes sorted by size (descending, ties by name); the first ``ceil(C / 2)`` are the
    majority classes, the rest the minority classes. With folds stratified, any split's
    support is proportional to the class sizes of the whole dataset.
    """
    if len(class_sizes) < 2:
        raise ValueError(f"a majority/minority split needs >= 2 classes, got {len(class_sizes)}")
    ordered = sorted(class_sizes, key=lambda name: (-class_sizes[name], name))
    n_major = (len(ordered) + 1) // 2
    return ordered[:n_major], ordered[n_major:]


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> TestResult:
    """Spearman rank correlation of paired ``(n,)`` values (scipy), e.g. gain vs epochs.

    NaN (statistic and p-value) when either sample is constant: the correlation is undefined.
    """
    a = _as_finite_1d(x, "x")
    b = _as_finite_1d(y, "y")
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"spearman needs >= 3 pairs of equal length, got {a.shape}, {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return TestResult(float("nan"), float("nan"))
    result = scipy_stats.spearmanr(a, b)
    return TestResult(float(result.statistic), float(result.pvalue))
