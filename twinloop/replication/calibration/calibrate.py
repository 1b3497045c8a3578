"""Calibration: fit the twin to a production KPI history and measure how well it mirrors it.

The history is split into a training window and the last ``holdout_days``. On the training
window the parameters with a closed form are estimated directly (``calibration_fit``: a Poisson
regression for arrivals, ratio and moment estimators for the rates and the order value); the
churn hazard's satisfaction sensitivity, which has none, is fitted by simulation with common
random numbers (``calibration_sensitivity``). Moment estimates that the twin's nonlinearity
biases (segment mixes, satisfaction-dependent conversion, the first day's satisfaction) are
then rescaled so that the twin reproduces the observed ratios. Finally the calibrated twin runs
the whole span on fresh seeds and is scored on the held-back days (``calibration_accuracy``).
Every twin run goes through one injectable ``evaluate`` (serial here, the Ray actor pool in
``actors.calibration``); a run depends only on its spec, so both give identical results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from twinloop.replication.calibration.accuracy import simulation_accuracy
from twinloop.replication.calibration.fit import (
    ArrivalFit,
    Estimate,
    base_conversion,
    churn_hazard,
    fit_arrivals,
    initial_satisfaction,
    interaction_probability,
    mean_experience,
    observed_mean,
    order_value,
    segment_mix,
)
from twinloop.replication.calibration.models import (
    CalibrationResult,
    CalibrationSettings,
    FitIssue,
)
from twinloop.replication.calibration.sensitivity import fit_sensitivity
from twinloop.replication.calibration.series import DailyKpis, daily_kpis
from twinloop.replication.calibration.state import HAZARD, FitState, fitting_scale
from twinloop.replication.history import KpiHistory
from twinloop.replication.replicates import Evaluate, replicate_seeds, serial_evaluate
from twinloop.sim.domains import preset
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelProfile
from twinloop.store import Store

YEARLY_MIN_DAYS = 56
ENVIRONMENTS = "environments"
CALIBRATIONS = "calibrations"
_FIT_STREAM, _EVAL_STREAM = 0, 1  # seed streams: fitting and scoring never share draws


def calibrate(
    history: KpiHistory,
    settings: CalibrationSettings | None = None,
    *,
    evaluate: Evaluate | None = None,
) -> CalibrationResult:
    """Fit the twin of ``settings.domain`` to ``history`` and score it on the held-back days."""
    cfg = settings or CalibrationSettings()
    run = evaluate or serial_evaluate
    kpis = daily_kpis(history, cfg.holdout_days, cfg.min_train_days)
    train_days = kpis.days - cfg.holdout_days
    train = kpis.head(train_days)
    base = preset(cfg.domain).environment
    lead_in = kpis.weekday0  # the twin's day 0 is a Monday: run from the Monday before
    fit = FitState(base)
    model = _closed_forms(fit, train, base, lead_in, cfg)
    fit_seeds = replicate_seeds(cfg.seed, cfg.fit_replicates, _FIT_STREAM)
    fit_sensitivity(fit, model, train, lead_in, fit_seeds, run, cfg)
    for _ in range(cfg.correction_rounds):
        _correct(fit, model, train, lead_in, fit_seeds, run, cfg)
    env = fit.environment(cfg.name or f"{base.name}-calibrated")
    eval_seeds = replicate_seeds(cfg.seed, cfg.eval_replicates, _EVAL_STREAM)
    [sims] = fit.run([env], model, kpis.days, lead_in, eval_seeds, run)
    accuracy, issues, held_obs, held_sim = simulation_accuracy(kpis, sims, train_days, cfg)
    all_issues = fit.issues + issues
    rs = [a.pearson_r for a in accuracy if a.pearson_r is not None]
    return CalibrationResult(
        seed=cfg.seed,
        settings=cfg,
        environment=env,
        model=model,
        parameters=fit.estimates(),
        accuracy=accuracy,
        mean_pearson_r=float(np.mean(rs)) if rs else None,
        mean_mape=float(np.mean([a.mape for a in accuracy])),
        fit_quality="poor" if any(i.severity == "poor" for i in all_issues) else "good",
        issues=all_issues,
        start=kpis.start,
        train_days=train_days,
        holdout_days=cfg.holdout_days,
        lead_in_days=lead_in,
        simulations=fit.simulations,
        holdout_observed=held_obs,
        holdout_simulated=held_sim,
        history_findings=list(history.findings),
    )


def _closed_forms(
    fit: FitState,
    train: DailyKpis,
    base: BusinessEnvironment,
    lead_in: int,
    cfg: CalibrationSettings,
) -> ModelProfile:
    yearly = cfg.fit_yearly and train.days >= YEARLY_MIN_DAYS
    if cfg.fit_yearly and not yearly:
        fit.issues.append(
            FitIssue(
                code="weakly_identified",
                severity="note",
                field="acquisition.yearly_amplitude",
                message=f"{train.days} training days are too few for a yearly cycle "
                f"(need {YEARLY_MIN_DAYS}); fixed at 0",
            )
        )
    arrivals = fit_arrivals(train.new, train.weekday0, lead_in, yearly)
    _set_arrivals(fit, arrivals)
    model = _model_profile(fit, train)
    mix = segment_mix(base)
    fit.set("interaction_probability_per_day", interaction_probability(train, mix), "moment")
    fit.set(
        "transaction.base_conversion", base_conversion(train, base, mix, model.accuracy), "moment"
    )
    aov, sigma = order_value(train, mix)
    fit.set("transaction.average_order_value", aov, "moment")
    fit.set("transaction.order_value_sigma", sigma, "moment")
    fit.set("churn.base_hazard_per_day", churn_hazard(train, mix), "moment")
    # The twin starts from its initial customers; during a lead-in they drift by the net flow.
    week = slice(0, min(7, train.days))
    drift = lead_in * float(train.new[week].mean() - train.churned[week].mean())
    initial = max(0.0, float(train.exposure[0] - train.new[0]) - drift)
    fit.set("initial_customers", Estimate(initial, None), "observed")
    if train.satisfaction is not None:
        experience = mean_experience(
            base, model.accuracy, model.latency_p50_ms, model.latency_p95_ms
        )
        interact = fit.values["interaction_probability_per_day"] * mix.interaction
        start = initial_satisfaction(float(train.satisfaction[0]), interact, experience, base)
        fit.set("satisfaction.initial", Estimate(start, None), "moment")
    else:
        fit.issues.append(_absent("satisfaction.initial", "satisfaction"))
    return model


def _set_arrivals(fit: FitState, arrivals: ArrivalFit) -> None:
    fit.set("acquisition.rate_per_day", arrivals.rate, "poisson_ml")
    for d, w in enumerate(arrivals.weekly):
        fit.set(f"acquisition.weekly.{d}", w, "poisson_ml")
    if arrivals.yearly:
        fit.set("acquisition.yearly_amplitude", arrivals.amplitude, "poisson_ml")
        fit.set("acquisition.yearly_peak_day", arrivals.peak_day, "poisson_ml")
    else:
        fit.set("acquisition.yearly_amplitude", Estimate(0.0, None), "poisson_ml")
    if arrivals.at_bound or arrivals.amplitude.value >= 0.99:
        fit.issues.append(
            FitIssue(
                code="parameter_at_bound",
                severity="poor",
                field="acquisition.yearly_amplitude",
                message=f"yearly amplitude {arrivals.amplitude.value:.3f} reached the largest the "
                "twin's cosine can take: the arrivals vary more than a yearly cycle explains",
            )
        )


def _model_profile(fit: FitState, train: DailyKpis) -> ModelProfile:
    default = ModelProfile()
    values: dict[str, float] = {}
    for column, field in (
        ("model_accuracy", "accuracy"),
        ("latency_p50_ms", "latency_p50_ms"),
        ("latency_p95_ms", "latency_p95_ms"),
    ):
        observed = observed_mean(train.series(column), train.interactions)
        if observed is None:
            fit.issues.append(_absent(f"model.{field}", column))
            continue
        values[field] = observed
        fit.set(f"model.{field}", Estimate(observed, None), "observed")
    p50 = max(values.get("latency_p50_ms", default.latency_p50_ms), 1e-3)
    p95 = max(values.get("latency_p95_ms", max(default.latency_p95_ms, p50)), p50)
    return ModelProfile(
        name="production",
        accuracy=values.get("accuracy", default.accuracy),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
    )


def _absent(name: str, column: str) -> FitIssue:
    return FitIssue(
        code="not_in_history",
        severity="note",
        field=name,
        message=f"no {column!r} column; the preset's value was kept",
    )


def _correct(
    fit: FitState,
    model: ModelProfile,
    train: DailyKpis,
    lead_in: int,
    seeds: list[int],
    run: Evaluate,
    cfg: CalibrationSettings,
) -> None:
    """Rescale moment estimates so the twin reproduces the observed training ratios."""
    env = fit.environment("correction", fitting_scale(train, cfg))
    [sim] = fit.run([env], model, train.days, lead_in, seeds, run)
    sim_total = {k: float(v.sum()) for k, v in sim.items()}
    obs_total = {
        "interactions": float(train.interactions.sum()),
        "exposure": float(train.exposure.sum()),
        "conversions": float(train.conversions.sum()),
        "revenue": float(train.revenue.sum()),
        "churned": float(train.churned.sum()),
    }
    sim_total["exposure"] = sim_total["active"] + sim_total["churned"]
    pairs = {
        "interaction_probability_per_day": ("interactions", "exposure"),
        "transaction.base_conversion": ("conversions", "interactions"),
        "transaction.average_order_value": ("revenue", "conversions"),
    }
    for name, (num, den) in pairs.items():
        factor = _ratio(obs_total, num, den) / _ratio(sim_total, num, den)
        if math.isfinite(factor) and factor > 0:
            fit.scale(name, factor)
    q_obs = _ratio(obs_total, "churned", "exposure")
    q_sim = _ratio(sim_total, "churned", "exposure")
    if 0 < q_obs < 1 and 0 < q_sim < 1:
        # the churn level is part of the k fit: keep its method, rescale its value
        fit.scale(HAZARD, math.log1p(-q_obs) / math.log1p(-q_sim), fit.method[HAZARD])
    if train.satisfaction is not None:
        # Day 0's mean satisfaction is s_init·(1 − p·lr) + p·lr·E[experience]: solve for s_init.
        damp = 1.0 - fit.values["interaction_probability_per_day"] * env.satisfaction.learning_rate
        gap = float(train.satisfaction[0] - sim["satisfaction"][:, 0].mean())
        start = float(np.clip(env.satisfaction.initial + gap / max(damp, 1e-3), 0.0, 1.0))
        fit.set("satisfaction.initial", Estimate(start, None), "simulation_corrected")


def _ratio(totals: Mapping[str, float], num: str, den: str) -> float:
    return totals[num] / totals[den] if totals[den] > 0 else math.nan


def save_calibration(store: Store, result: CalibrationResult, id: str | None = None) -> str:
    """Store the calibrated environment (kind ``environments``) and the full result
    (kind ``calibrations``) under one id; returns the id."""
    ident = id or result.environment.name
    # A poor fit is stored too (a user may want to inspect it); its verdict travels with it.
    store.put_model(ENVIRONMENTS, ident, result.environment)
    store.put_model(CALIBRATIONS, ident, result)
    return ident
