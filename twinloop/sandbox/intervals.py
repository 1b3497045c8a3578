"""Monte Carlo intervals across replicates: t for means, delta method or bootstrap for ratios,
and paired differences for head-to-heads.

Replicates are independent draws of a universe, so a KPI's mean over n replicates has standard
error s/√n and a Student-t interval with n-1 degrees of freedom. A ratio KPI (conversions /
interactions) is a ratio of means; its standard error comes from the delta method,

    Var(X̄/Ȳ) ≈ (σx² − 2R·σxy + R²·σy²) / (n·μy²),   R = X̄/Ȳ,

or from a percentile bootstrap over replicates. A head-to-head differences the two models
replicate by replicate; with common random numbers the pair shares every random draw, so

    Var(D̄) = (σb² + σc² − 2σbc) / n,

and the covariance term is what makes the paired interval narrower than the unpaired one,
(σb² + σc²) / n, whose width is reported alongside for comparison.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from twinloop.sandbox.indicators import Direction
from twinloop.sandbox.moments import Moments
from twinloop.sandbox.results import KpiSummary, PairedKpi

BOOTSTRAP_RESAMPLES = 2000


def t_quantile(confidence: float, dof: float) -> float:
    """Two-sided Student-t critical value."""
    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def _relative(half_width: float, reference: float) -> float | None:
    return half_width / abs(reference) if reference != 0 else None


def _ratio_gradient(mean: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """R = μ0/μ1 and its gradient in (μ0, μ1)."""
    r = mean[0] / mean[1]
    return float(r), np.array([1.0 / mean[1], -mean[0] / mean[1] ** 2])


def summarize(
    kpi: str,
    moments: Moments,
    *,
    direction: Direction,
    primary: bool,
    confidence: float,
) -> KpiSummary:
    """Mean and interval of a KPI from its moments: one variable (t) or two (ratio, delta)."""
    n = moments.n
    mean, cov = moments.mean(), moments.covariance()
    if moments.k == 1:
        estimate, variance, method = float(mean[0]), float(cov[0, 0]) / n, "t"
    else:
        estimate, grad = _ratio_gradient(mean)
        variance, method = float(grad @ cov @ grad) / n, "delta"
    se = math.sqrt(max(variance, 0.0))
    half = t_quantile(confidence, n - 1) * se
    return KpiSummary(
        kpi=kpi,
        direction=direction,
        primary=primary,
        method=method,
        n=n,
        mean=estimate,
        std_error=se,
        lower=estimate - half,
        upper=estimate + half,
        half_width=half,
        relative_half_width=_relative(half, estimate),
        confidence=confidence,
    )


def bootstrap_ratio(
    kpi: str,
    numerator: NDArray[np.float64],
    denominator: NDArray[np.float64],
    rng: np.random.Generator,
    *,
    direction: Direction,
    primary: bool,
    confidence: float,
) -> KpiSummary:
    """Percentile bootstrap of ΣX/ΣY over replicates (arrays in replicate order)."""
    n = numerator.size
    estimate = float(numerator.sum() / denominator.sum())
    picks = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    boots = numerator[picks].sum(axis=1) / denominator[picks].sum(axis=1)
    alpha = 1.0 - confidence
    lower, upper = (float(q) for q in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    half = (upper - lower) / 2.0
    return KpiSummary(
        kpi=kpi,
        direction=direction,
        primary=primary,
        method="bootstrap",
        n=n,
        mean=estimate,
        std_error=float(boots.std(ddof=1)),
        lower=lower,
        upper=upper,
        half_width=half,
        relative_half_width=_relative(half, estimate),
        confidence=confidence,
    )


def paired(
    kpi: str,
    moments: Moments,
    wins: float,
    *,
    direction: Direction,
    primary: bool,
    confidence: float,
) -> PairedKpi:
    """Challenger − baseline from the joint moments of (baseline, challenger) KPI values.

    Two variables for a plain KPI; four (baseline num, den, challenger num, den) for a ratio.
    """
    n = moments.n
    mean, cov = moments.mean(), moments.covariance()
    if moments.k == 2:
        base, chal = float(mean[0]), float(mean[1])
        grad = np.array([-1.0, 1.0])
        method = "paired_t"
    else:
        base, g_b = _ratio_gradient(mean[:2])
        chal, g_c = _ratio_gradient(mean[2:])
        grad = np.concatenate([-g_b, g_c])
        method = "paired_delta"
    diff = chal - base
    var_paired = max(float(grad @ cov @ grad) / n, 0.0)
    # The same variance without the cross-arm covariance: what independent arms would give.
    half_k = moments.k // 2
    block = cov.copy()
    block[:half_k, half_k:] = 0.0
    block[half_k:, :half_k] = 0.0
    var_unpaired = max(float(grad @ block @ grad) / n, 0.0)
    se = math.sqrt(var_paired)
    half = t_quantile(confidence, n - 1) * se
    unpaired_half = t_quantile(confidence, _welch_dof(grad, cov, half_k, n)) * math.sqrt(
        var_unpaired
    )
    return PairedKpi(
        kpi=kpi,
        direction=direction,
        primary=primary,
        method=method,
        n=n,
        baseline_mean=base,
        challenger_mean=chal,
        difference=diff,
        relative_difference=diff / abs(base) if base != 0 else None,
        std_error=se,
        lower=diff - half,
        upper=diff + half,
        half_width=half,
        relative_half_width=_relative(half, base),
        unpaired_half_width=unpaired_half,
        width_ratio=unpaired_half / half if half > 0 else None,
        prob_challenger_better=_prob_better(diff, se, n - 1, direction),
        win_rate=wins / n,
        confidence=confidence,
    )


def _welch_dof(grad: NDArray[np.float64], cov: NDArray[np.float64], half_k: int, n: int) -> float:
    """Welch–Satterthwaite degrees of freedom of two independent arms of n replicates each."""
    v_b = float(grad[:half_k] @ cov[:half_k, :half_k] @ grad[:half_k]) / n
    v_c = float(grad[half_k:] @ cov[half_k:, half_k:] @ grad[half_k:]) / n
    denominator = (v_b**2 + v_c**2) / (n - 1)
    return (v_b + v_c) ** 2 / denominator if denominator > 0 else float(2 * n - 2)


def _prob_better(diff: float, se: float, dof: int, direction: Direction) -> float:
    """P(the true difference favours the challenger) under a flat prior and a t likelihood."""
    signed = diff if direction == "higher" else -diff
    if se == 0:
        return 1.0 if signed > 0 else 0.0 if signed < 0 else 0.5
    return float(stats.t.cdf(signed / se, dof))


def win(baseline: float, challenger: float, direction: Direction) -> float:
    """1 if the challenger beat the baseline in a replicate, ½ on a tie, else 0."""
    if challenger == baseline:
        return 0.5
    return float((challenger > baseline) == (direction == "higher"))
