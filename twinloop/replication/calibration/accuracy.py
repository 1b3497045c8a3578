"""Simulation Accuracy: how closely the calibrated twin's runs follow a history it did not see.

Per KPI, on the held-back days, the observed series is compared with the mean of R seeded
replicates: Pearson r, MAPE and relative bias. A raw MAPE says little on its own (a KPI of 30
events a day has ~18 % Poisson noise), so each replicate is also scored against the mean of the
others: ``expected_r``/``expected_mape`` are what the twin scores on *its own* data, and a KPI
fails only when the history is missed by more than that noise explains::

    holdout_error        MAPE > min_mape  and  MAPE / expected_MAPE > max_error_ratio
    holdout_correlation  expected_r ≥ 0.8 and  r < expected_r − max_r_shortfall  (flows only)

The in-sample check catches structure the twin lacks (a random walk, an extra cycle): on the
training days the errors of each flow's rate (new per day, interactions per exposed customer,
conversion rate, revenue per conversion, churn per exposed customer) should be white noise; a
lag-1 autocorrelation above ``max_residual_autocorrelation`` fails the fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from twinloop.replication.calibration.models import CalibrationSettings, FitIssue, KpiAccuracy
from twinloop.replication.calibration.series import DailyKpis

FloatArray = NDArray[np.float64]
SCORED = (
    "new",
    "active",
    "churned",
    "interactions",
    "conversions",
    "conversion_rate",
    "revenue",
    "satisfaction",
)
# Each flow KPI's rate: (numerator, denominator or None for the count itself).
RATES: dict[str, tuple[str, str | None]] = {
    "new": ("new", None),
    "interactions": ("interactions", "exposure"),
    "conversion_rate": ("conversions", "interactions"),
    "revenue": ("revenue", "conversions"),
    "churned": ("churned", "exposure"),
}
_EXPECTED_R_FLOOR = 0.8
# Levels that accumulate their own noise: two runs' paths wander apart for weeks, so a 14-day
# r between them is too unstable to judge by; their MAPE still is.
STOCKS = ("active", "satisfaction")


def pearson(x: FloatArray, y: FloatArray) -> float | None:
    """Pearson r, or None when either series is constant."""
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy / denom) if denom > 0 else None


def mape(observed: FloatArray, predicted: FloatArray) -> float:
    """Mean |predicted − observed| / |observed| over the days where observed ≠ 0."""
    ok = observed != 0
    if not ok.any():
        return 0.0 if np.allclose(predicted, 0.0) else math.inf
    return float(np.mean(np.abs(predicted[ok] - observed[ok]) / np.abs(observed[ok])))


def lag1_autocorrelation(e: FloatArray) -> float:
    d = e - e.mean()
    denom = float(d @ d)
    return float(d[1:] @ d[:-1] / denom) if denom > 0 else 0.0


def with_derived(series: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Add exposure and conversion_rate to per-replicate (R × days) KPI arrays."""
    out = dict(series)
    out["exposure"] = series["active"] + series["churned"]
    out["conversion_rate"] = np.divide(
        series["conversions"],
        series["interactions"],
        out=np.zeros_like(series["conversions"]),
        where=series["interactions"] > 0,
    )
    return out


def _rate(num: FloatArray, den: FloatArray | None) -> FloatArray:
    if den is None:
        return num
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def simulation_accuracy(
    observed: DailyKpis,
    simulated: Mapping[str, FloatArray],
    train_days: int,
    cfg: CalibrationSettings,
) -> tuple[list[KpiAccuracy], list[FitIssue], dict[str, list[float]], dict[str, list[float]]]:
    """Score every KPI the history has; returns (accuracy, issues, observed, simulated holdout)."""
    sims = with_derived(simulated)
    obs_all: dict[str, FloatArray | None] = {k: observed.series(k) for k in SCORED}
    obs_all["exposure"] = observed.exposure
    accuracy: list[KpiAccuracy] = []
    issues: list[FitIssue] = []
    held_obs: dict[str, list[float]] = {}
    held_sim: dict[str, list[float]] = {}
    for kpi in SCORED:
        obs = obs_all[kpi]
        if obs is None:
            continue
        o, x = obs[train_days:], sims[kpi][:, train_days:]
        m = x.mean(axis=0)
        auto = _residual_autocorrelation(kpi, obs_all, sims, train_days)
        score = _score(kpi, o, x, m, auto)
        found = _issues(score, cfg)
        issues.extend(found)
        accuracy.append(score.model_copy(update={"passed": not found}))
        held_obs[kpi] = [float(v) for v in o]
        held_sim[kpi] = [float(v) for v in m]
    return accuracy, issues, held_obs, held_sim


def _score(
    kpi: str, o: FloatArray, x: FloatArray, m: FloatArray, auto: float | None
) -> KpiAccuracy:
    """One KPI's holdout figures (``o`` observed, ``x`` replicates, ``m`` their mean), unjudged."""
    r, err = pearson(o, m), mape(o, m)
    exp_r, exp_mape = _expected(x)
    return KpiAccuracy(
        kpi=kpi,
        pearson_r=r,
        mape=err,
        bias=float((m - o).sum() / max(np.abs(o).sum(), 1e-12)),
        expected_r=exp_r,
        expected_mape=exp_mape,
        error_ratio=err / exp_mape if exp_mape > 0 else (0.0 if err == 0 else math.inf),
        residual_autocorrelation=auto,
        passed=True,
    )


def _issues(a: KpiAccuracy, cfg: CalibrationSettings) -> list[FitIssue]:
    """The checks of the module docstring that ``a`` fails, in a fixed order."""
    found: list[FitIssue] = []
    field = f"history.{a.kpi}"
    if a.mape > cfg.min_mape and a.error_ratio > cfg.max_error_ratio:
        found.append(
            FitIssue(
                code="holdout_error",
                severity="poor",
                field=field,
                message=f"holdout MAPE {a.mape:.1%} is {a.error_ratio:.1f}x the "
                f"{a.expected_mape:.1%} the twin's own runs show (bias {a.bias:+.1%})",
            )
        )
    r, exp_r = a.pearson_r, a.expected_r
    if (
        a.kpi not in STOCKS
        and exp_r is not None
        and exp_r >= _EXPECTED_R_FLOOR
        and (r is None or r < exp_r - cfg.max_r_shortfall)
    ):
        shown = "undefined" if r is None else f"{r:.2f}"
        found.append(
            FitIssue(
                code="holdout_correlation",
                severity="poor",
                field=field,
                message=f"holdout r {shown} while the twin's own runs reach {exp_r:.2f}",
            )
        )
    auto = a.residual_autocorrelation
    if auto is not None and auto > cfg.max_residual_autocorrelation:
        found.append(
            FitIssue(
                code="residual_autocorrelation",
                severity="poor",
                field=field,
                message=f"in-sample errors have lag-1 autocorrelation {auto:.2f} "
                f"(> {cfg.max_residual_autocorrelation}): structure the twin does not have",
            )
        )
    return found


def _expected(x: FloatArray) -> tuple[float | None, float]:
    """Mean r and MAPE of each replicate against the mean of the others."""
    total = x.sum(axis=0)
    rs: list[float] = []
    mapes: list[float] = []
    for j in range(x.shape[0]):
        others = (total - x[j]) / (x.shape[0] - 1)
        r = pearson(x[j], others)
        if r is not None:
            rs.append(r)
        mapes.append(mape(x[j], others))
    finite = [v for v in mapes if math.isfinite(v)]
    return (float(np.mean(rs)) if rs else None), (float(np.mean(finite)) if finite else 0.0)


def _residual_autocorrelation(
    kpi: str,
    observed: Mapping[str, FloatArray | None],
    sims: Mapping[str, FloatArray],
    train_days: int,
) -> float | None:
    if kpi not in RATES:
        return None
    num, den = RATES[kpi]
    obs_num = observed[num]
    if obs_num is None:
        return None
    obs_den = None if den is None else observed[den]
    obs_rate = _rate(obs_num[:train_days], None if obs_den is None else obs_den[:train_days])
    if den is None:
        sim_rate = sims[num][:, :train_days].mean(axis=0)
    else:
        sim_rate = _rate(
            sims[num][:, :train_days].sum(axis=0), sims[den][:, :train_days].sum(axis=0)
        )
    e = obs_rate - sim_rate
    e = e[np.isfinite(e)]
    return lag1_autocorrelation(e) if e.size >= 8 else None
