"""CUPED: the variance shrinks by 1 - ρ², and the effect equals the ANCOVA coefficient."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from twinloop.stats.cuped import cuped
from twinloop.stats.frequentist import welch
from twinloop.stats.sufficient import CovariateStats


def _units(seed: int, n: int, rho: float, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pre = rng.normal(10.0, 2.0, n)
    noise = rng.normal(0.0, 2.0, n)
    post = 10.0 + rho * (pre - 10.0) + np.sqrt(1 - rho**2) * noise + shift
    return post, pre


def test_variance_ratio_is_one_minus_rho_squared() -> None:
    """Treatment = control shifted: the effect's variance shrinks by exactly 1 - ρ̂²."""
    post, pre = _units(1, 4000, rho=0.7)
    control = CovariateStats.from_arrays(post, pre)
    treatment = CovariateStats.from_arrays(post + 0.3, pre)
    adjusted = cuped(control, treatment)
    assert adjusted is not None
    contrast, detail = adjusted
    rho = np.corrcoef(post, pre)[0, 1]
    assert detail.correlation == pytest.approx(rho, rel=1e-9)
    assert detail.variance_ratio == pytest.approx(1 - rho**2, rel=1e-9)
    assert contrast.delta == pytest.approx(0.3, rel=1e-9)


def test_cuped_effect_equals_the_ancova_treatment_coefficient() -> None:
    """Pooled within-variant θ makes the CUPED effect the OLS coefficient of y ~ t + x."""
    yc, xc = _units(2, 3000, rho=0.6)
    yt, xt = _units(3, 2500, rho=0.6, shift=0.25)
    adjusted = cuped(CovariateStats.from_arrays(yc, xc), CovariateStats.from_arrays(yt, xt))
    assert adjusted is not None
    y = np.concatenate([yc, yt])
    design = np.column_stack(
        [np.ones(y.size), np.r_[np.zeros(yc.size), np.ones(yt.size)], np.r_[xc, xt]]
    )
    fit = sm.OLS(y, design).fit()
    assert adjusted[0].delta == pytest.approx(fit.params[1], rel=1e-9)
    assert adjusted[1].theta == pytest.approx(fit.params[2], rel=1e-9)


def test_cuped_interval_is_narrower_than_welch_by_the_predicted_factor() -> None:
    """On independent arms with ρ = 0.8 the variance ratio is close to 1 - 0.8² = 0.36."""
    yc, xc = _units(4, 20000, rho=0.8)
    yt, xt = _units(5, 20000, rho=0.8, shift=0.1)
    control, treatment = CovariateStats.from_arrays(yc, xc), CovariateStats.from_arrays(yt, xt)
    adjusted = cuped(control, treatment)
    assert adjusted is not None
    plain = welch(control.outcome, treatment.outcome)
    assert adjusted[0].var_delta / plain.var_delta == pytest.approx(0.36, abs=0.02)


def test_constant_covariate_means_no_cuped() -> None:
    """A covariate without spread cannot adjust anything: cuped() returns None."""
    y = np.random.default_rng(6).normal(size=100)
    flat = np.ones(100)
    assert cuped(CovariateStats.from_arrays(y, flat), CovariateStats.from_arrays(y, flat)) is None
