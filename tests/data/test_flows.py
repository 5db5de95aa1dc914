"""The in-memory form: invariants, helpers, summary."""

import numpy as np
import pytest

from jtcaug.data import DatasetError, Flows
from jtcaug.data.flows import concat_ranges, first_bad_segment, pad_ragged


def _flows(**override):
    base = dict(
        sizes=np.array([[10.0, 20.0] + [0.0] * 18, [5.0] * 20]),
        directions=np.array([[1, -1] + [0] * 18, [1, -1] * 10]),
        iats=np.array([[0.0, 0.5] + [0.0] * 18, [0.0] + [0.1] * 19]),
        n_packets=np.array([2, 50]),
        labels=np.array([0, 1]),
        class_names=("a", "b"),
        name="t",
    )
    return Flows(**{**base, **override})


def test_valid_flows_and_summary():
    flows = _flows()
    assert flows.sizes.dtype == np.float32 and flows.directions.dtype == np.int8
    assert flows.lengths.tolist() == [2, 20] and flows.t_max == 20
    summary = flows.summary()
    assert summary["classes"] == 2 and summary["rho"] == 1.0
    assert summary["mean_packets_per_flow"] == 26.0
    assert flows.subset(np.array([1])).n_packets.tolist() == [50]
    assert flows.identity == _flows().identity
    assert flows.identity != _flows(labels=np.array([1, 0])).identity


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (dict(directions=np.array([[1, 0, 1] + [0] * 17, [1] * 20])), "prefix"),
        (dict(sizes=np.array([[10.0, 20.0, 3.0] + [0.0] * 17, [5.0] * 20])), "all-zero"),
        (dict(labels=np.array([0, 2])), "labels must lie"),
        (dict(n_packets=np.array([1, 50])), "n_packets >= stored"),
        (dict(iats=np.array([[0.0, -0.5] + [0.0] * 18, [0.0] * 20])), ">= 0"),
        (dict(iats=np.array([[0.0, np.nan] + [0.0] * 18, [0.0] * 20])), "finite"),
        (dict(directions=np.array([[1, 2] + [0] * 18, [1] * 20])), r"\+1, -1 or 0"),
        (
            dict(sizes=np.zeros((2, 10)), directions=np.ones((2, 10)), iats=np.zeros((2, 10))),
            "T_max must be >= 20",
        ),
    ],
)
def test_invariants_are_enforced(override, message):
    with pytest.raises(DatasetError, match=message):
        _flows(**override)


def test_ragged_helpers():
    flat = np.arange(10.0)
    offsets = np.array([0, 3, 3, 10])
    padded = pad_ragged(flat, offsets, 4, np.float64)
    np.testing.assert_array_equal(padded, [[0, 1, 2, 0], [0, 0, 0, 0], [3, 4, 5, 6]])
    assert first_bad_segment(flat == 7, offsets) == 2
    assert first_bad_segment(flat > 99, offsets) is None
    np.testing.assert_array_equal(concat_ranges([5, 0], [2, 3]), [5, 6, 0, 1, 2])
