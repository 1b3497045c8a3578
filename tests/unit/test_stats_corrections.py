"""Holm and Benjamini–Hochberg adjusted p-values equal statsmodels' multipletests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from statsmodels.stats.multitest import multipletests

from twinloop.errors import InvalidInput
from twinloop.stats.corrections import adjust, benjamini_hochberg, holm

P_VALUES = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0001]


@pytest.mark.parametrize(("ours", "theirs"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_adjusted_p_values_match_statsmodels(
    ours: Callable[[list[float]], list[float]], theirs: str
) -> None:
    """Including ties (two 0.04s), every adjusted value equals multipletests'."""
    expected = multipletests(P_VALUES, method=theirs)[1]
    assert ours(P_VALUES) == pytest.approx(list(expected), rel=1e-12)


def test_untested_comparisons_stay_out_of_the_family() -> None:
    """None entries are skipped: the family is the three real p-values."""
    adjusted = adjust([0.01, None, 0.02, 0.03, None], "holm")
    expected = multipletests([0.01, 0.02, 0.03], method="holm")[1]
    assert adjusted[1] is None and adjusted[4] is None
    assert [adjusted[0], adjusted[2], adjusted[3]] == pytest.approx(list(expected), rel=1e-12)


def test_no_correction_passes_values_through() -> None:
    """'none' returns the raw p-values."""
    assert adjust([0.2, None], "none") == [0.2, None]


def test_p_value_outside_the_unit_interval_is_refused() -> None:
    """A p-value of 1.5 names its index."""
    with pytest.raises(InvalidInput, match=r"p_values\[1\]"):
        holm([0.1, 1.5])
