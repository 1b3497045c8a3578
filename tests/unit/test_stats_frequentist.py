"""Welch t, two-proportion z, delta-method relative lift and ratio metrics against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from twinloop.stats.frequentist import (
    evaluate,
    ratio,
    ratio_mean_variance,
    relative_variance,
    two_proportion,
    welch,
)
from twinloop.stats.sufficient import BinomialStats, RatioStats, SampleStats

REL = 1e-9


@pytest.mark.parametrize(
    ("control", "treatment"),
    [((100.0, 30.0, 1000), (103.0, 31.0, 1010)), ((0.5, 2.0, 12), (1.9, 0.4, 40))],
)
def test_welch_matches_scipy_ttest_from_stats(
    control: tuple[float, float, int], treatment: tuple[float, float, int]
) -> None:
    """t and p equal scipy's ttest_ind_from_stats(equal_var=False); CI is Δ ± t·se."""
    c = SampleStats.from_mean_std(control[2], control[0], control[1])
    t = SampleStats.from_mean_std(treatment[2], treatment[0], treatment[1])
    result = evaluate(welch(c, t), alpha=0.05)
    ref = sps.ttest_ind_from_stats(*treatment, *control, equal_var=False)
    assert result.statistic == pytest.approx(ref.statistic, rel=REL)
    assert result.p_value == pytest.approx(ref.pvalue, rel=REL)
    se = math.sqrt(control[1] ** 2 / control[2] + treatment[1] ** 2 / treatment[2])
    vc, vt = control[1] ** 2 / control[2], treatment[1] ** 2 / treatment[2]
    dof = (vc + vt) ** 2 / (vc**2 / (control[2] - 1) + vt**2 / (treatment[2] - 1))
    half = sps.t.ppf(0.975, dof) * se
    delta = treatment[0] - control[0]
    assert result.absolute.interval is not None
    assert result.absolute.interval.lower == pytest.approx(delta - half, rel=REL)
    assert result.absolute.interval.upper == pytest.approx(delta + half, rel=REL)


def test_welch_on_raw_arrays_matches_scipy_ttest_ind() -> None:
    """From per-unit arrays, Welch agrees with scipy.stats.ttest_ind(equal_var=False)."""
    rng = np.random.default_rng(7)
    a, b = rng.exponential(2.0, 500), rng.exponential(2.2, 450)
    result = evaluate(welch(SampleStats.from_array(a), SampleStats.from_array(b)), alpha=0.05)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(ref.statistic, rel=REL)
    assert result.p_value == pytest.approx(ref.pvalue, rel=REL)


@pytest.mark.parametrize(("c", "t"), [((500, 10000), (560, 10100)), ((3, 20000), (9, 20000))])
def test_two_proportion_z_matches_statsmodels(c: tuple[int, int], t: tuple[int, int]) -> None:
    """z and p equal statsmodels' proportions_ztest; the CI equals its Wald interval."""
    contrast = two_proportion(BinomialStats(c[1], c[0]), BinomialStats(t[1], t[0]))
    result = evaluate(contrast, alpha=0.05)
    z, p = proportions_ztest([t[0], c[0]], [t[1], c[1]])
    assert result.statistic == pytest.approx(z, rel=REL)
    assert result.p_value == pytest.approx(p, rel=REL)
    low, high = confint_proportions_2indep(t[0], t[1], c[0], c[1], method="wald", compare="diff")
    assert result.absolute.interval is not None
    assert result.absolute.interval.lower == pytest.approx(low, rel=1e-6)
    assert result.absolute.interval.upper == pytest.approx(high, rel=1e-6)


def test_relative_lift_variance_is_the_delta_method_closed_form() -> None:
    """Var(t̄/c̄) ≈ σt²/(nt·c̄²) + t̄²σc²/(nc·c̄⁴) for a positive control mean."""
    c, t = SampleStats.from_mean_std(800, 20.0, 5.0), SampleStats.from_mean_std(900, 22.0, 6.0)
    expected = 36 / (900 * 20**2) + 22**2 * 25 / (800 * 20**4)
    assert relative_variance(welch(c, t)) == pytest.approx(expected, rel=REL)


def test_negative_control_mean_gives_lift_with_the_direction_of_change() -> None:
    """-10 → -8 is an increase: relative lift +20%, not -20%, with a note saying why."""
    c, t = SampleStats.from_mean_std(100, -10.0, 3.0), SampleStats.from_mean_std(100, -8.0, 3.0)
    result = evaluate(welch(c, t), alpha=0.05)
    assert result.relative is not None
    assert result.relative.estimate == pytest.approx(0.2, rel=REL)
    assert [n.code for n in result.notes] == ["negative_control_mean"]
    # The variance is that of t̄/c̄, unchanged by taking |c̄|.
    expected = 9 / (100 * 100) + 64 * 9 / (100 * 10**4)
    assert relative_variance(welch(c, t)) == pytest.approx(expected, rel=REL)


def test_ratio_metric_variance_matches_closed_form_on_raw_units() -> None:
    """The delta-method variance of Σx/Σy equals the textbook formula with np.cov moments."""
    rng = np.random.default_rng(11)
    sessions = rng.poisson(3, 2000) + 1.0
    revenue = sessions * rng.gamma(2.0, 5.0, 2000)
    stats = RatioStats.from_arrays(revenue, sessions)
    value, variance = ratio_mean_variance(stats)
    mx, my = revenue.mean(), sessions.mean()
    cov = np.cov(revenue, sessions, ddof=1)
    expected = (
        cov[0, 0] / my**2 - 2 * mx * cov[0, 1] / my**3 + mx**2 * cov[1, 1] / my**4
    ) / revenue.size
    assert value == pytest.approx(revenue.sum() / sessions.sum(), rel=1e-12)
    assert variance == pytest.approx(expected, rel=1e-9)


def test_ratio_contrast_is_a_z_test_of_the_two_ratios() -> None:
    """The ratio contrast's z is (R_t - R_c) / sqrt(Var R_c + Var R_t), p two-sided normal."""
    rng = np.random.default_rng(12)
    arms = []
    for lift in (1.0, 1.05):
        den = rng.poisson(4, 3000) + 1.0
        arms.append(RatioStats.from_arrays(den * rng.gamma(2, 5 * lift, 3000), den))
    result = evaluate(ratio(arms[0], arms[1]), alpha=0.05)
    (rc, vc), (rt, vt) = ratio_mean_variance(arms[0]), ratio_mean_variance(arms[1])
    z = (rt - rc) / math.sqrt(vc + vt)
    assert result.statistic == pytest.approx(z, rel=REL)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)


def test_zero_variance_gives_no_statistic_instead_of_a_crash() -> None:
    """Two constant arms: effect reported, statistic and p-value None."""
    c, t = SampleStats.from_array(np.full(50, 3.0)), SampleStats.from_array(np.full(50, 3.0))
    result = evaluate(welch(c, t), alpha=0.05)
    assert result.p_value is None and result.statistic is None
    assert result.absolute.estimate == 0.0


def test_tiny_base_rate_flags_an_unstable_relative_lift() -> None:
    """3 vs 9 conversions in 20k: lift 2.0, finite interval, and a note that it is unreliable."""
    result = evaluate(two_proportion(BinomialStats(20000, 3), BinomialStats(20000, 9)), 0.05)
    assert result.relative is not None and result.relative.interval is not None
    assert result.relative.estimate == pytest.approx(2.0, rel=REL)
    assert math.isfinite(result.relative.interval.upper)
    assert [n.code for n in result.notes] == ["unstable_relative_lift"]
    # 0.15% of 2 million is 3000 conversions: the control rate is precise, no note.
    steady = evaluate(
        two_proportion(BinomialStats(2_000_000, 3000), BinomialStats(2_000_000, 3100)), 0.05
    )
    assert steady.notes == ()
