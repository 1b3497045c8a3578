"""The churn hazard's satisfaction sensitivity k, fitted by simulation (indirect inference).

k has no closed form: how much churn rises as satisfaction falls depends on the whole
distribution of satisfaction across customers, which only the twin knows. So the history is
summarised by an auxiliary statistic — the Poisson-regression slope β of daily churn on the
satisfaction deficit (s_ref − s̄_t) — and the same statistic is computed on twins run with each
candidate k of a grid, all on the *same* seeds (common random numbers)::

    churned_t ~ Poisson(exposure_t · exp(a + β · (s_ref − s̄_t)))

A least-squares quadratic through (k, β(k)) smooths the simulation noise; k̂ solves
β(k̂) = β_observed (scipy ``brentq``), and SE(k̂) = SE(β_obs) · √(1 + 1/(R·scale)) / |β'(k̂)|
(Gourieroux, Monfort & Renault 1993). The base hazard follows from matching the observed churn
level at k̂. A per-day deviance profile was tried first: its simulation noise (runs diverge as
soon as churn differs) swamped the signal; the slope averages over every day instead.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from twinloop.replication.calibration.fit import Estimate
from twinloop.replication.calibration.models import CalibrationSettings, FitIssue
from twinloop.replication.calibration.series import DailyKpis
from twinloop.replication.calibration.state import (
    HAZARD,
    LIMITS,
    SENSITIVITY,
    FitState,
    fitting_scale,
)
from twinloop.replication.replicates import Evaluate, FloatArray
from twinloop.sim.models import ModelProfile


def fit_sensitivity(
    fit: FitState,
    model: ModelProfile,
    train: DailyKpis,
    lead_in: int,
    seeds: list[int],
    run: Evaluate,
    cfg: CalibrationSettings,
) -> None:
    """Indirect inference of k: match the slope of log churn rate on the satisfaction deficit."""
    grid = np.array(cfg.sensitivity_grid, dtype=np.float64)
    h0 = fit.values[HAZARD]
    reference = fit.base.satisfaction.reference
    level = float(train.satisfaction.mean()) if train.satisfaction is not None else reference
    # First guess of each candidate's base hazard: the observed hazard over the mean factor, so
    # that a customer at the observed mean satisfaction churns alike in every candidate.
    guess = np.minimum(h0 / np.exp(grid * (reference - level)), LIMITS[HAZARD])
    envs = []
    for k, b in zip(grid, guess, strict=True):
        fit.values[SENSITIVITY] = float(k)
        fit.values[HAZARD] = float(b)
        envs.append(fit.environment(f"candidate-k{k:g}", fitting_scale(train, cfg)))
    sims = fit.run(envs, model, train.days, lead_in, seeds, run)
    # The regressor: each run's own mean satisfaction; without that column in the history, the
    # candidates' average path stands in for the history's (the same vector for every run).
    common = np.mean([s["satisfaction"].mean(axis=0) for s in sims], axis=0)
    observed_sat = train.satisfaction if train.satisfaction is not None else common
    beta_obs, beta_se = churn_slope(train.churned, train.exposure, reference - observed_sat)
    betas, scale = np.empty(grid.size), np.empty(grid.size)
    for i, sim in enumerate(sims):
        churned, at_risk = sim["churned"].sum(axis=0), (sim["active"] + sim["churned"]).sum(axis=0)
        sat = sim["satisfaction"].mean(axis=0) if train.satisfaction is not None else common
        betas[i], _ = churn_slope(churned, at_risk, reference - sat)
        rate = churned / np.maximum(at_risk, 1.0)
        scale[i] = train.churned.sum() / max(float(train.exposure @ rate), 1e-12)
    k_hat, slope = invert_curve(grid, betas, beta_obs)
    noise = math.sqrt(1.0 + 1.0 / (len(seeds) * fitting_scale(train, cfg)))  # the simulation's own
    se = beta_se * noise / abs(slope) if slope != 0 and beta_se is not None else None
    fit.set(SENSITIVITY, Estimate(k_hat, se), "indirect_inference")
    log_base = np.log(np.maximum(guess * scale, 1e-300))
    b_hat = float(np.exp(np.interp(k_hat, grid, log_base)))
    # b and k trade off (a larger k needs a smaller base): SE(log b) adds the moment error of
    # the churn level and k's error carried along the fitted log b(k) curve.
    rel = (fit.stderr.get(HAZARD) or 0.0) / max(h0, 1e-300)
    tilt = float(np.polynomial.Polynomial.fit(grid, log_base, 1).convert().coef[-1])
    rel = math.hypot(rel, tilt * se) if se is not None else rel
    fit.set(HAZARD, Estimate(b_hat, rel * b_hat), "indirect_inference")
    if k_hat >= grid[-1] and beta_obs > betas[-1]:
        fit.issues.append(
            FitIssue(
                code="parameter_at_bound",
                severity="note",
                field=SENSITIVITY,
                message=f"churn reacts to satisfaction more than the largest candidate k "
                f"({grid[-1]:g}) explains; widen sensitivity_grid",
            )
        )
    if se is None or se > 1.0:
        shown = "undefined" if se is None else f"{se:.2f}"
        fit.issues.append(
            FitIssue(
                code="weakly_identified",
                severity="note",
                field=SENSITIVITY,
                message=f"standard error {shown}: satisfaction varied too little in the history to "
                "pin down how churn reacts to it",
            )
        )


def churn_slope(
    churned: FloatArray, exposure: FloatArray, deficit: FloatArray
) -> tuple[float, float | None]:
    """Poisson-regression slope β of churn on the satisfaction deficit, and its quasi-Poisson SE.

    churned_t ~ Poisson(exposure_t · exp(a + β·deficit_t)), fitted by Newton–Raphson (two
    parameters). Unlike a regression of log rates, it has no small-count bias, which would
    differ between the history and the (larger) fitting runs.
    """
    ok = (exposure > 0) & np.isfinite(deficit)
    y, offset = churned[ok], np.log(exposure[ok])
    x = np.column_stack([np.ones(int(ok.sum())), deficit[ok] - deficit[ok].mean()])
    if x.shape[0] < 3 or float(np.ptp(x[:, 1])) <= 0 or y.sum() <= 0:
        return 0.0, None
    theta = np.array([math.log(y.sum() / exposure[ok].sum()), 0.0])
    for _ in range(50):
        mu = np.exp(offset + x @ theta)
        info = x.T @ (mu[:, None] * x)
        step = np.linalg.solve(info, x.T @ (y - mu))
        theta = theta + step
        if float(np.abs(step).max()) < 1e-10:
            break
    mu = np.exp(offset + x @ theta)
    info = x.T @ (mu[:, None] * x)
    phi = max(1.0, float(((y - mu) ** 2 / mu).sum()) / max(y.size - 2, 1))
    cov = np.linalg.inv(info) * phi
    return float(theta[1]), math.sqrt(float(cov[1, 1]))


def invert_curve(grid: FloatArray, betas: FloatArray, target: float) -> tuple[float, float]:
    """k where a least-squares quadratic through (k, β(k)) meets ``target``; and dβ/dk there.

    The fitted curve smooths the simulation noise left in each β(k); outside its range the
    nearest end is returned.
    """
    degree = 2 if grid.size >= 4 else 1
    coef = np.polynomial.polynomial.polyfit(grid, betas, degree)
    curve = np.polynomial.Polynomial(coef)
    lo, hi = float(grid[0]), float(grid[-1])
    f_lo, f_hi = curve(lo) - target, curve(hi) - target
    if f_lo * f_hi > 0:
        k = lo if abs(f_lo) < abs(f_hi) else hi
    else:
        k = float(optimize.brentq(lambda v: float(curve(v)) - target, lo, hi))
    return k, float(curve.deriv()(k))
