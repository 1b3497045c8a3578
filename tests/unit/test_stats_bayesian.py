"""Bayesian chance to beat control: exact Beta-Binomial sums and quadrature, conjugate normal."""

from __future__ import annotations

import math

import pytest
from scipy import integrate
from scipy import stats as sps

from twinloop.errors import InvalidInput
from twinloop.stats.bayesian import (
    _closed_form,
    gaussian_posterior,
    prob_beta_greater,
    prob_beta_greater_panels,
    prob_beta_greater_quad,
)


def _miller_loop(a1: int, b1: int, a2: int, b2: int) -> float:
    """Evan Miller's closed form, written out term by term: P(X2 > X1), a2 an integer."""

    def lbeta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    return sum(
        math.exp(lbeta(a1 + i, b1 + b2) - math.log(b2 + i) - lbeta(1 + i, b2) - lbeta(a1, b1))
        for i in range(a2)
    )


def test_small_cases_have_known_exact_values() -> None:
    """Beta(1,1) vs Beta(1,1) is 1/2; Beta(2,1) beats Beta(1,1) with probability 2/3."""
    assert prob_beta_greater(1, 1, 1, 1) == pytest.approx(0.5, rel=1e-12)
    assert prob_beta_greater(1, 1, 2, 1) == pytest.approx(2 / 3, rel=1e-12)


@pytest.mark.parametrize(
    "params",
    [(51, 951, 61, 941), (4, 19998, 10, 19992), (301, 9701, 341, 9761), (12, 40, 9, 35)],
)
def test_exact_probability_matches_the_closed_form_sum(params: tuple[int, ...]) -> None:
    """Conversions with a Beta(1,1) prior: equal to the term-by-term closed form to 1e-9."""
    assert prob_beta_greater(*params) == pytest.approx(_miller_loop(*params), rel=1e-9)


@pytest.mark.parametrize(
    "params",
    [(51, 951, 61, 941), (3.5, 80.2, 7.25, 90.0), (900, 40, 950, 45), (20, 7, 5, 3)],
)
def test_quadrature_matches_independent_numerical_integration(
    params: tuple[float, ...],
) -> None:
    """Adaptive quadrature agrees with scipy.stats' beta pdf × sf integrated on [0, 1]."""
    a1, b1, a2, b2 = params
    reference, _ = integrate.quad(
        lambda x: sps.beta.pdf(x, a1, b1) * sps.beta.sf(x, a2, b2),
        0,
        1,
        epsabs=1e-14,
        epsrel=1e-12,
        limit=500,
        points=[a1 / (a1 + b1), a2 / (a2 + b2)],
    )
    assert prob_beta_greater_quad(*params) == pytest.approx(reference, rel=1e-8)


def test_every_symmetric_branch_of_the_sum_agrees_with_quadrature() -> None:
    """Summing over a1, b1, a2 or b2 (by symmetry) gives the same probability."""
    a1, b1, a2, b2 = 30.0, 45.0, 33.0, 41.0
    quad = prob_beta_greater_quad(a1, b1, a2, b2)
    for which in range(4):
        assert _closed_form(a1, b1, a2, b2, which) == pytest.approx(quad, rel=1e-9)


def test_large_counts_sum_only_the_terms_that_matter() -> None:
    """60k vs 60.6k conversions in 1M: the windowed sum equals every one of its 60k terms."""
    params = (60_001, 940_001, 60_601, 939_401)
    assert prob_beta_greater(*params) == pytest.approx(_miller_loop(*params), rel=1e-8)
    assert prob_beta_greater(*params) == pytest.approx(prob_beta_greater_quad(*params), rel=1e-8)


def test_non_integer_parameters_use_panel_quadrature() -> None:
    """A fractional prior leaves no integer parameter: panels agree with adaptive quadrature."""
    params = (2500.5, 47500.5, 2525.5, 47475.5)
    assert prob_beta_greater_panels(*params) == pytest.approx(
        prob_beta_greater_quad(*params), rel=1e-9
    )
    assert prob_beta_greater(*params) == prob_beta_greater_panels(*params)


def test_flat_gaussian_posterior_is_the_likelihood() -> None:
    """Without a prior: posterior mean = estimate, P(lift > 0) = Φ(est / se)."""
    posterior = gaussian_posterior(0.03, 0.02)
    assert posterior.mean == 0.03 and posterior.std == pytest.approx(0.02)
    assert posterior.prob_positive == pytest.approx(sps.norm.cdf(1.5), rel=1e-12)


def test_gaussian_prior_shrinks_towards_its_mean() -> None:
    """Conjugate update: precision-weighted mean, precisions add."""
    posterior = gaussian_posterior(0.10, 0.05, prior_mean=0.0, prior_std=0.05)
    assert posterior.mean == pytest.approx(0.05, rel=1e-12)
    assert posterior.std == pytest.approx(0.05 / math.sqrt(2), rel=1e-12)
    low, high = posterior.interval(0.95)
    assert (high - low) / 2 == pytest.approx(1.959963984540054 * posterior.std, rel=1e-9)


def test_bad_beta_parameters_are_refused() -> None:
    """A zero Beta parameter names itself."""
    with pytest.raises(InvalidInput, match="b1"):
        prob_beta_greater(1, 0, 1, 1)
