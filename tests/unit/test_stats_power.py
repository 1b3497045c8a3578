"""Power and minimum detectable effect against statsmodels' NormalIndPower and TTestIndPower."""

from __future__ import annotations

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from twinloop.stats.power import (
    detectable_k,
    mde_effect_size,
    normal_power,
    power_two_sample,
    sample_size,
)


@pytest.mark.parametrize(("d", "n1", "ratio"), [(0.1, 1000, 1.0), (0.05, 5000, 2.0), (0.3, 40, 1)])
def test_power_matches_statsmodels(d: float, n1: int, ratio: float) -> None:
    """Normal and t power equal NormalIndPower / TTestIndPower two-sided at α = 0.05."""
    normal = NormalIndPower().power(d, n1, 0.05, ratio=ratio)
    t = TTestIndPower().power(d, n1, 0.05, ratio=ratio)
    assert power_two_sample(d, n1, 0.05, ratio) == pytest.approx(normal, rel=1e-9)
    assert power_two_sample(d, n1, 0.05, ratio, test="t") == pytest.approx(t, rel=1e-7)


@pytest.mark.parametrize(("n1", "alpha", "power"), [(1000, 0.05, 0.8), (250, 0.01, 0.9)])
def test_mde_matches_statsmodels_solve_power(n1: int, alpha: float, power: float) -> None:
    """statsmodels' power at our MDE is the target to 1e-9; its own solver agrees to 1e-5."""
    for engine, test in ((NormalIndPower(), "normal"), (TTestIndPower(), "t")):
        ours = mde_effect_size(n1, alpha, power, test=test)
        assert engine.power(ours, n1, alpha) == pytest.approx(power, rel=1e-9)
        # solve_power stops at a looser tolerance (its power is off by ~1e-6).
        theirs = engine.solve_power(None, nobs1=n1, alpha=alpha, power=power)
        assert ours == pytest.approx(theirs, rel=1e-5)


def test_sample_size_matches_statsmodels() -> None:
    """Units per group for d = 0.05 at 80% power equal solve_power(nobs1=None)."""
    expected = NormalIndPower().solve_power(0.05, nobs1=None, alpha=0.05, power=0.8, ratio=1.5)
    assert sample_size(0.05, 0.05, 0.8, ratio=1.5) == pytest.approx(expected, rel=1e-6)


def test_detectable_k_is_close_to_the_textbook_sum_of_quantiles() -> None:
    """k* ≈ z(0.975) + z(0.8) = 2.8016 (the far tail adds almost nothing); power(k*) = 0.8."""
    k = detectable_k(0.05, 0.8)
    assert k == pytest.approx(1.959963984540054 + 0.8416212335729143, rel=1e-5)
    assert normal_power(k, 0.05) == pytest.approx(0.8, rel=1e-12)
