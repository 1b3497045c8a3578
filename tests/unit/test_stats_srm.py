"""Sample-ratio mismatch: Pearson χ² against the planned allocation, flagged at p < 0.001."""

from __future__ import annotations

import pytest
from scipy import stats as sps

from twinloop.errors import InvalidInput
from twinloop.stats.srm import check_srm


@pytest.mark.parametrize(
    ("observed", "allocation"),
    [
        ({"a": 10000, "b": 10100}, {"a": 1.0, "b": 1.0}),
        ({"a": 5000, "b": 5400, "c": 9800}, {"a": 0.25, "b": 0.25, "c": 0.5}),
    ],
)
def test_statistic_and_p_value_match_scipy_chisquare(
    observed: dict[str, int], allocation: dict[str, float]
) -> None:
    """χ² and p equal scipy.stats.chisquare with expected counts from the weights."""
    result, _ = check_srm(observed, allocation)
    total, weight = sum(observed.values()), sum(allocation.values())
    ref = sps.chisquare(list(observed.values()), [total * allocation[k] / weight for k in observed])
    assert result.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert result.dof == len(observed) - 1


def test_mismatch_is_flagged_with_a_coded_note() -> None:
    """50/50 planned, 10000 vs 10600 observed: p ≈ 2e-5 < 0.001 → flagged, note 'srm'."""
    result, notes = check_srm({"a": 10000, "b": 10600}, {"a": 1, "b": 1})
    assert result.flagged and result.p_value is not None and result.p_value < 0.001
    assert [n.code for n in notes] == ["srm"]


def test_borderline_imbalance_is_not_flagged_at_the_strict_threshold() -> None:
    """p = 0.01 is not an SRM at the default 0.001 threshold."""
    result, notes = check_srm({"a": 10000, "b": 10365}, {"a": 1, "b": 1})
    assert result.p_value is not None and 0.001 < result.p_value < 0.05
    assert not result.flagged and notes == []


def test_no_units_is_a_note_not_a_crash() -> None:
    """Zero units everywhere: nothing to test, 'srm_not_checked'."""
    result, notes = check_srm({"a": 0, "b": 0}, {"a": 1, "b": 1})
    assert result.p_value is None and [n.code for n in notes] == ["srm_not_checked"]


def test_allocation_for_other_variants_is_refused() -> None:
    """Allocation naming other variants than the counts is bad input."""
    with pytest.raises(InvalidInput, match="variants"):
        check_srm({"a": 1, "b": 2}, {"a": 1, "c": 1})
