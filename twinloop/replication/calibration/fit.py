"""Closed-form estimates of the twin's parameters from daily KPIs, with standard errors.

Arrivals are a Poisson regression fitted by maximum likelihood (scipy.optimize, trust-exact)::

    new_t ~ Poisson(λ_t),  λ_t = rate · W[d_t] / mean(W) · (1 + a cos ωs_t + b sin ωs_t)

(d_t the weekday, s_t the twin's day, ω = 2π/365.25; amplitude √(a²+b²), peak atan2(b, a)/ω).
Its covariance is the inverse Fisher information scaled by the Pearson overdispersion, carried
to the reported parameters by the delta method. The rates are ratios of sums over the training
window, divided by the preset's segment mix, with the sandwich variance of a ratio estimator::

    p_interact = Σ interactions / Σ exposure / m_int          (exposure = active + churned)
    base_conv  = Σ conversions / Σ interactions·f_t           f_t = m_conv·(s_t/s_ref)^e·(1+u(2a−1))
    AOV        = Σ revenue / Σ conversions / E[v_seg]
    h0         = −log(1 − Σ churned / Σ exposure) / m_churn

and the order-value sigma is the moment solution of Var(revenue_t | conversions_t) =
conversions_t · Var(v) for a log-normal times the segment value mix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from twinloop.replication.calibration.series import DailyKpis
from twinloop.sim.effects import RIGHT, WRONG, effect_table
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.scenario import DAYS_PER_YEAR

FloatArray = NDArray[np.float64]
OMEGA = 2.0 * math.pi / DAYS_PER_YEAR
# √(a²+b²) < 0.99 keeps the multiplier 1 + a cos + b sin positive (the twin wants < 1).
_MAX_AMPLITUDE = 0.99


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error (None when none is available)."""

    value: float
    stderr: float | None


@dataclass(frozen=True)
class ArrivalFit:
    """Fitted arrival process in the twin's terms, and λ_t on any day via ``expected``."""

    rate: Estimate
    weekly: tuple[Estimate, ...]
    amplitude: Estimate
    peak_day: Estimate
    overdispersion: float
    theta: tuple[float, ...]
    yearly: bool
    at_bound: bool


@dataclass(frozen=True)
class SegmentMix:
    """Mix-weighted segment multipliers of the preset: they turn KPI ratios into base rates."""

    interaction: float
    conversion: float
    value_mean: float
    value_square: float
    churn: float


def segment_mix(env: BusinessEnvironment) -> SegmentMix:
    """Multipliers averaged over the customers each KPI counts (steady-state active mix)."""
    share = np.array([s.share for s in env.segments])
    inter = np.array([s.interaction_multiplier for s in env.segments])
    conv = np.array([s.conversion_multiplier for s in env.segments])
    value = np.array([s.value for s in env.segments])
    churn = np.array([s.churn_multiplier for s in env.segments])
    active = share / churn  # M/M/∞ per segment: stock ∝ arrivals / hazard
    active /= active.sum()
    interacting = active * inter / (active * inter).sum()
    converting = interacting * conv / (interacting * conv).sum()
    return SegmentMix(
        interaction=float(active @ inter),
        conversion=float(interacting @ conv),
        value_mean=float(converting @ value),
        value_square=float(converting @ value**2),
        churn=float(active @ churn),
    )


# ------------------------------------------------------------------------------ arrivals


def _design(days: int, weekday0: int, lead_in: int) -> tuple[NDArray[np.intp], FloatArray]:
    t = np.arange(days, dtype=np.float64)
    weekday = (np.arange(days) + weekday0) % 7
    return weekday, t + lead_in


def _log_lambda(
    theta: FloatArray, weekday: NDArray[np.intp], twin_day: FloatArray, yearly: bool
) -> tuple[FloatArray, FloatArray]:
    """log λ_t and its Jacobian (days × parameters)."""
    n = weekday.size
    jac = np.zeros((n, theta.size))
    jac[:, 0] = 1.0
    gamma = np.concatenate([[0.0], theta[1:7]])
    eta = theta[0] + gamma[weekday]
    for d in range(1, 7):
        jac[:, d] = weekday == d
    if yearly:
        c, s = np.cos(OMEGA * twin_day), np.sin(OMEGA * twin_day)
        season = 1.0 + theta[7] * c + theta[8] * s
        eta = eta + np.log(season)
        jac[:, 7] = c / season
        jac[:, 8] = s / season
    return eta, jac


def fit_arrivals(new: FloatArray, weekday0: int, lead_in: int, yearly: bool) -> ArrivalFit:
    """Poisson maximum likelihood of the weekly × yearly arrival model (scipy trust-exact)."""
    weekday, twin_day = _design(new.size, weekday0, lead_in)
    p = 9 if yearly else 7
    start = np.zeros(p)
    start[0] = math.log(max(new.mean(), 1e-3))

    def nll(theta: FloatArray) -> tuple[float, FloatArray]:
        if yearly and math.hypot(theta[7], theta[8]) >= _MAX_AMPLITUDE:
            return math.inf, np.zeros_like(theta)  # outside the model: the trust region shrinks
        eta, jac = _log_lambda(theta, weekday, twin_day, yearly)
        lam = np.exp(eta)
        return float(lam.sum() - new @ eta), jac.T @ (lam - new)

    def fisher(theta: FloatArray) -> FloatArray:
        # Expected information (Fisher scoring): positive definite, exact for the log-linear part.
        eta, jac = _log_lambda(theta, weekday, twin_day, yearly)
        lam = np.exp(eta)
        return jac.T @ (lam[:, None] * jac)

    # trust-exact with the Fisher information converges in a handful of steps (L-BFGS-B took
    # ~40, and its BLAS calls crawl on a busy machine).
    fit = optimize.minimize(
        nll,
        start,
        jac=True,
        hess=fisher,
        method="trust-exact",
        options={"gtol": 1e-8, "maxiter": 200},
    )
    theta = np.asarray(fit.x, dtype=np.float64)
    eta, jac = _log_lambda(theta, weekday, twin_day, yearly)
    lam = np.exp(eta)
    dof = max(new.size - p, 1)
    dispersion = max(1.0, float(((new - lam) ** 2 / lam).sum() / dof))
    cov = np.linalg.pinv(jac.T @ (lam[:, None] * jac)) * dispersion
    values = _arrival_parameters(theta, yearly)
    grad = _jacobian(lambda th: _arrival_parameters(th, yearly), theta)
    ses = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, cov, grad), 0.0))
    est = [Estimate(float(v), float(s)) for v, s in zip(values, ses, strict=True)]
    at_bound = yearly and math.hypot(theta[7], theta[8]) >= _MAX_AMPLITUDE - 0.01
    if not yearly:
        est[8:10] = [Estimate(0.0, None), Estimate(0.0, None)]
    return ArrivalFit(
        rate=est[0],
        weekly=tuple(est[1:8]),
        amplitude=est[8],
        peak_day=est[9],
        overdispersion=dispersion,
        theta=tuple(float(x) for x in theta),
        yearly=yearly,
        at_bound=at_bound,
    )


def expected_arrivals(fit: ArrivalFit, days: int, weekday0: int, lead_in: int) -> FloatArray:
    """λ_t of a fitted arrival model on days 0..days-1 of the history."""
    weekday, twin_day = _design(days, weekday0, lead_in)
    eta, _ = _log_lambda(np.array(fit.theta), weekday, twin_day, fit.yearly)
    return np.exp(eta)


def _arrival_parameters(theta: FloatArray, yearly: bool) -> FloatArray:
    """θ → (rate, weekly[0..6] normalised to mean 1, amplitude, peak day)."""
    w = np.exp(np.concatenate([[0.0], theta[1:7]]))
    mean_w = w.mean()
    out = np.empty(10)
    out[0] = math.exp(theta[0]) * mean_w
    out[1:8] = w / mean_w
    if yearly:
        a, b = theta[7], theta[8]
        out[8] = math.hypot(a, b)
        out[9] = (math.atan2(b, a) / OMEGA) % DAYS_PER_YEAR
    else:
        out[8:10] = 0.0
    return out


def _jacobian(fn: Callable[[FloatArray], FloatArray], x: FloatArray) -> FloatArray:
    """Central-difference Jacobian (for delta-method standard errors)."""
    base = fn(x)
    jac = np.zeros((base.size, x.size))
    for i in range(x.size):
        h = 1e-6 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        diff = fn(up) - fn(down)
        if i >= 7 and base.size > 9:
            # the peak day is an angle: wrap the difference into (−half year, half year]
            diff[9] = (diff[9] + DAYS_PER_YEAR / 2) % DAYS_PER_YEAR - DAYS_PER_YEAR / 2
        jac[:, i] = diff / (2 * h)
    return jac


# ------------------------------------------------------------------------------ rates


def ratio(num: FloatArray, den: FloatArray, scale: float = 1.0) -> Estimate:
    """Σnum / Σden / scale with the ratio estimator's sandwich (overdispersion-robust) SE."""
    r = float(num.sum() / den.sum())
    se = math.sqrt(float(((num - r * den) ** 2).sum())) / float(den.sum())
    return Estimate(r / scale, se / scale)


def interaction_probability(kpis: DailyKpis, mix: SegmentMix) -> Estimate:
    return ratio(kpis.interactions, kpis.exposure, mix.interaction)


def conversion_factor(
    kpis: DailyKpis, env: BusinessEnvironment, mix: SegmentMix, accuracy: float
) -> FloatArray:
    """f_t: what multiplies base_conversion on day t besides the base itself."""
    tr, sat = env.transaction, env.satisfaction
    level = kpis.satisfaction if kpis.satisfaction is not None else np.full(kpis.days, sat.initial)
    relative = np.maximum(level, 1e-6) / sat.reference
    factor = mix.conversion * relative**tr.satisfaction_elasticity
    if env.decision_target == "conversion" and tr.decision_effects is None:
        factor = factor * (1.0 + tr.decision_uplift * (2.0 * accuracy - 1.0))
    elif env.decision_target == "conversion":  # only accuracy is known: a profile's mean cells
        right, wrong = effect_table(tr)[[RIGHT, WRONG]]
        factor = factor * (wrong + (right - wrong) * accuracy)
    return np.asarray(factor, dtype=np.float64)


def base_conversion(
    kpis: DailyKpis, env: BusinessEnvironment, mix: SegmentMix, accuracy: float
) -> Estimate:
    return ratio(kpis.conversions, kpis.interactions * conversion_factor(kpis, env, mix, accuracy))


def order_value(kpis: DailyKpis, mix: SegmentMix) -> tuple[Estimate, Estimate]:
    """(average order value, log-normal sigma) from daily revenue and conversions."""
    rev, conv = kpis.revenue, kpis.conversions
    mean = ratio(rev, conv)
    aov = Estimate(mean.value / mix.value_mean, (mean.stderr or 0.0) / mix.value_mean)
    # Var(v): Σ(R_t − m C_t)² / ΣC_t, from days with at least one conversion.
    ok = conv > 0
    resid2 = (rev[ok] - mean.value * conv[ok]) ** 2
    var_v = float(resid2.sum() / conv[ok].sum())
    # E[v²] = AOV²·E[sv²]·e^{σ²} and E[v] = AOV·E[sv]  ⇒  e^{σ²} = (1 + Var/m²)·E[sv]²/E[sv²]
    spread = mix.value_mean**2 / mix.value_square
    g = (1.0 + var_v / mean.value**2) * spread
    sigma = math.sqrt(max(math.log(max(g, 1e-12)), 0.0))
    # delta method: SE of var_v from the spread of its per-day terms, then dσ/dvar
    terms = resid2 - var_v * conv[ok]
    se_var = math.sqrt(float((terms**2).sum())) / float(conv[ok].sum())
    dsigma = spread / (mean.value**2 * g * 2.0 * sigma) if sigma > 1e-9 else float("nan")
    se_sigma = abs(dsigma) * se_var if math.isfinite(dsigma) else None
    return aov, Estimate(sigma, se_sigma)


def churn_hazard(kpis: DailyKpis, mix: SegmentMix, multiplier: float = 1.0) -> Estimate:
    """Base hazard per day; ``multiplier`` is the mean satisfaction factor exp(k(s_ref − s))."""
    q = ratio(kpis.churned, kpis.exposure)
    if q.value >= 1.0:
        return Estimate(float("inf"), None)
    scale = mix.churn * multiplier
    h = -math.log1p(-q.value) / scale
    se = (q.stderr or 0.0) / (1.0 - q.value) / scale
    return Estimate(h, se)


def mean_experience(env: BusinessEnvironment, accuracy: float, p50: float, p95: float) -> float:
    """E[experience] of one interaction: a·accuracy + (1−a)·E[exp(−latency/tolerance)].

    Latency is log-normal with the given median and 95th percentile; the expectation is a
    Gauss–Hermite quadrature over the log-normal.
    """
    sd = env.satisfaction
    sigma = math.log(max(p95, p50) / p50) / 1.6448536269514722
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    latency = p50 * np.exp(sigma * nodes)
    speed = float(weights @ np.exp(-latency / sd.latency_tolerance_ms)) / math.sqrt(2 * math.pi)
    return sd.accuracy_weight * accuracy + (1.0 - sd.accuracy_weight) * speed


def initial_satisfaction(
    first_day: float, interact: float, experience: float, env: BusinessEnvironment
) -> float:
    """The satisfaction s0 the twin must start from to show ``first_day`` after one day.

    On day 0 a share ``interact`` of customers moves to (1−lr)·s0 + lr·experience, so the mean
    is s0·(1 − interact·lr) + interact·lr·experience; solved for s0.
    """
    step = interact * env.satisfaction.learning_rate
    return float(np.clip((first_day - step * experience) / max(1.0 - step, 1e-3), 0.0, 1.0))


def observed_mean(values: FloatArray | None, weights: FloatArray | None = None) -> float | None:
    if values is None:
        return None
    w = weights if weights is not None and weights.sum() > 0 else np.ones_like(values)
    return float(np.average(values, weights=w))
