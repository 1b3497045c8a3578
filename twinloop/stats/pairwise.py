"""One metric, one treatment against control: pick the test, run every analysis, collect notes.

The method follows the data: conversions get the two-proportion z test and the exact
Beta-Binomial posterior, continuous metrics Welch's t (CUPED-adjusted when a pre-period covariate
is present), ratio metrics the delta method, point values only the raw difference. Anything that
cannot be computed (no data, zero variance, zero denominator) becomes ``None`` plus a coded note.
Multiple-testing corrections are applied later, across comparisons, by :mod:`compare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from twinloop.stats import bayesian, power, sequential
from twinloop.stats.cuped import cuped
from twinloop.stats.frequentist import (
    Contrast,
    Evaluated,
    evaluate,
    ratio,
    relative_variance,
    two_proportion,
    welch,
)
from twinloop.stats.inputs import CompareSettings, PointData
from twinloop.stats.results import (
    BayesianDetail,
    CupedDetail,
    Direction,
    Effect,
    Favours,
    Interval,
    Method,
    MetricComparison,
    Note,
    PowerDetail,
    Role,
    SequentialDetail,
    VariantSummary,
)
from twinloop.stats.sufficient import BinomialStats, CovariateStats, RatioStats, SampleStats, Stats

FEW_EVENTS = 5  # successes or failures below this: the normal approximation is rough
# Stated and computed percentChange may differ by rounding: 0.05 points or 1% of the value.
PERCENT_TOLERANCE = (0.05, 0.01)


@dataclass(frozen=True, slots=True)
class Arm:
    """One variant's data in a comparison: its name, input form and statistics."""

    name: str
    form: str
    data: Stats | PointData


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a comparison needs to know about its metric."""

    name: str
    direction: Direction
    role: Role


def compare_pair(
    metric: MetricInfo, control: Arm, treatment: Arm, settings: CompareSettings
) -> MetricComparison:
    """Compare ``treatment`` with ``control`` on one metric; p-values are not yet corrected."""
    summaries = (_summary(control), _summary(treatment))
    if isinstance(control.data, PointData) and isinstance(treatment.data, PointData):
        return _point(metric, control.data, treatment.data, summaries)
    notes = _data_notes(control, treatment, settings)
    method = _method(control.data, settings)
    if _blocked(control.data, treatment.data):
        if not any(note.code in ("no_data", "too_few_samples") for note in notes):
            message = "fewer than 2 units in a variant: no variance to test with"
            notes.append(Note(code="too_few_samples", severity="warning", message=message))
        return _untested(metric, summaries, method, notes)
    built = _contrast(control.data, treatment.data, settings, notes)
    if built is None:
        return _untested(metric, summaries, method, notes)
    contrast, cuped_detail = built
    evaluated = evaluate(contrast, settings.alpha)
    notes.extend(evaluated.notes)
    if evaluated.p_value is None:
        message = "no variance in either variant: no test statistic"
        notes.append(Note(code="zero_variance", severity="warning", message=message))
    return MetricComparison(
        metric=metric.name,
        role=metric.role,
        direction=metric.direction,
        control=summaries[0],
        treatment=summaries[1],
        method=contrast.method,
        absolute=evaluated.absolute,
        relative=evaluated.relative,
        statistic=evaluated.statistic,
        dof=contrast.dof,
        p_value=evaluated.p_value,
        p_value_adjusted=evaluated.p_value,
        correction="none",
        significant=None,
        outcome="not_tested",
        favours=_favours(contrast.delta, metric.direction),
        cuped=cuped_detail,
        bayesian=_bayesian(control.data, treatment.data, evaluated, metric, settings),
        sequential=_sequential(contrast, evaluated, control.data, treatment.data, settings),
        power=_power(contrast, settings),
        notes=tuple(notes),
    )


def _method(data: Stats | PointData, settings: CompareSettings) -> Method:
    if isinstance(data, BinomialStats):
        return "two_proportion_z"
    if isinstance(data, RatioStats):
        return "ratio_delta_method_z"
    if isinstance(data, CovariateStats) and settings.cuped:
        return "cuped_welch_t"
    return "welch_t"


def _data_notes(control: Arm, treatment: Arm, settings: CompareSettings) -> list[Note]:
    notes = []
    for arm in (control, treatment):
        stats = arm.data
        assert not isinstance(stats, PointData)
        if stats.n == 0:
            message = f"variant {arm.name!r} has no units for this metric"
            notes.append(Note(code="no_data", severity="error", message=message, variant=arm.name))
        elif stats.n < settings.min_samples:
            message = f"variant {arm.name!r} has {stats.n} units (< {settings.min_samples})"
            notes.append(
                Note(code="too_few_samples", severity="warning", message=message, variant=arm.name)
            )
        if isinstance(stats, BinomialStats) and stats.n > 0:
            events = min(stats.successes, stats.n - stats.successes)
            if events < FEW_EVENTS:
                message = (
                    f"variant {arm.name!r} has {stats.successes} of {stats.n} converting: "
                    "the normal approximation is rough; see the exact Bayesian probability"
                )
                notes.append(
                    Note(code="few_events", severity="warning", message=message, variant=arm.name)
                )
    return notes


def _blocked(control: Stats | PointData, treatment: Stats | PointData) -> bool:
    """True when a test is impossible: an empty arm, or fewer than 2 units for a variance."""
    assert not isinstance(control, PointData) and not isinstance(treatment, PointData)
    minimum = 1 if isinstance(control, BinomialStats) else 2
    return control.n < minimum or treatment.n < minimum


def _contrast(
    control: Stats | PointData,
    treatment: Stats | PointData,
    settings: CompareSettings,
    notes: list[Note],
) -> tuple[Contrast, CupedDetail | None] | None:
    if isinstance(control, BinomialStats) and isinstance(treatment, BinomialStats):
        return two_proportion(control, treatment), None
    if isinstance(control, RatioStats) and isinstance(treatment, RatioStats):
        for name, stats in (("control", control), ("treatment", treatment)):
            if stats.den_sum == 0:
                message = f"the {name} denominator sums to 0: the ratio is undefined"
                notes.append(Note(code="zero_denominator", severity="error", message=message))
                return None
        return ratio(control, treatment), None
    if isinstance(control, CovariateStats) and isinstance(treatment, CovariateStats):
        if settings.cuped:
            adjusted = cuped(control, treatment)
            if adjusted is not None:
                return adjusted
            message = "the pre-period covariate has no spread: analysed without CUPED"
            notes.append(Note(code="cuped_skipped", severity="info", message=message))
        return welch(control.outcome, treatment.outcome), None
    assert isinstance(control, SampleStats) and isinstance(treatment, SampleStats)
    return welch(control, treatment), None


def _bayesian(
    control: Stats | PointData,
    treatment: Stats | PointData,
    evaluated: Evaluated,
    metric: MetricInfo,
    settings: CompareSettings,
) -> BayesianDetail | None:
    if not settings.bayesian:
        return None
    effect, scale = evaluated.relative, "relative"
    prior = settings.prior
    if effect is None or settings.bayesian_scale == "absolute":
        if effect is None and settings.bayesian_scale == "relative":
            prior = None  # a relative prior does not apply to an absolute effect
        effect, scale = evaluated.absolute, "absolute"
    posterior = None
    if effect.std_error is not None and effect.std_error > 0:
        posterior = bayesian.gaussian_posterior(
            effect.estimate, effect.std_error,
            prior.mean if prior else None, prior.std if prior else None,
        )  # fmt: skip
    prior_text = f"normal({prior.mean:g}, {prior.std:g})" if prior else "flat"
    if isinstance(control, BinomialStats) and isinstance(treatment, BinomialStats):
        a, b = settings.beta_prior
        greater = bayesian.prob_beta_greater(
            a + control.successes, b + control.n - control.successes,
            a + treatment.successes, b + treatment.n - treatment.successes,
        )  # fmt: skip
        method = "beta_binomial_exact"
        prior_text = f"beta({a:g}, {b:g}); lift {prior_text}"
    elif posterior is not None:
        greater, method = posterior.prob_positive, "gaussian_lift"
    else:
        return None
    interval = None
    if posterior is not None:
        low, high = posterior.interval(1 - settings.alpha)
        interval = Interval(lower=low, upper=high, level=1 - settings.alpha)
    return BayesianDetail(
        method=method,
        chance_to_beat_control=greater if metric.direction == "higher" else 1 - greater,
        prob_treatment_greater=greater,
        lift_scale=scale,
        posterior_mean=posterior.mean if posterior else None,
        credible_interval=interval,
        prior=prior_text,
    )


def _sequential(
    contrast: Contrast,
    evaluated: Evaluated,
    control: Stats | PointData,
    treatment: Stats | PointData,
    settings: CompareSettings,
) -> SequentialDetail | None:
    if not settings.sequential or contrast.var_delta <= 0:
        return None
    assert not isinstance(control, PointData) and not isinstance(treatment, PointData)
    n_total = control.n + treatment.n
    alpha, tuning = settings.alpha, settings.sequential_tuning_n
    absolute = sequential.interval(contrast.delta, contrast.var_delta, n_total, alpha, tuning)
    relative = None
    if evaluated.relative is not None:
        variance = relative_variance(contrast)
        relative = sequential.interval(
            evaluated.relative.estimate, variance, n_total, alpha, tuning
        )
    p = sequential.p_value(contrast.delta, contrast.var_delta, n_total, alpha, tuning)
    return SequentialDetail(tuning_n=tuning, absolute=absolute, relative=relative, p_value=p)


def _power(contrast: Contrast, settings: CompareSettings) -> PowerDetail | None:
    if contrast.var_delta <= 0:
        return None
    se = math.sqrt(contrast.var_delta)
    mde = power.detectable_k(settings.alpha, settings.power) * se
    mc = abs(contrast.control_mean)
    target = settings.target_relative_effect
    at_target = None
    if target is not None and mc > 0:
        at_target = power.normal_power(target * mc / se, settings.alpha)
    return PowerDetail(
        alpha=settings.alpha,
        power=settings.power,
        mde_absolute=mde,
        mde_relative=mde / mc if mc > 0 else None,
        target_relative_effect=target,
        power_at_target=at_target,
    )


def _point(
    metric: MetricInfo,
    control: PointData,
    treatment: PointData,
    summaries: tuple[VariantSummary, VariantSummary],
) -> MetricComparison:
    delta = treatment.value - control.value
    notes = [
        Note(
            code="point_form_no_significance",
            severity="warning",
            message="point values only (no sample sizes or spread): effect shown, not tested",
        )
    ]
    relative = None
    if control.value == 0:
        message = "control value is 0: relative change is undefined"
        notes.append(Note(code="zero_control_mean", severity="warning", message=message))
    else:
        lift = delta / abs(control.value)
        relative = Effect(estimate=lift, std_error=None, interval=None, method="point_difference")
        if control.value < 0:
            message = "control value is negative: relative change divides by |control|"
            notes.append(Note(code="negative_control_mean", severity="info", message=message))
        stated = treatment.percent_change
        low, rel = PERCENT_TOLERANCE
        if stated is not None and abs(stated - 100 * lift) > max(low, rel * abs(100 * lift)):
            message = f"stated percentChange {stated:g}% but the values give {100 * lift:.4g}%"
            notes.append(
                Note(code="point_percent_change_mismatch", severity="warning", message=message)
            )
    absolute = Effect(estimate=delta, std_error=None, interval=None, method="point_difference")
    return _untested(metric, summaries, "point_difference", notes, absolute, relative, delta)


def _untested(
    metric: MetricInfo,
    summaries: tuple[VariantSummary, VariantSummary],
    method: Method,
    notes: list[Note],
    absolute: Effect | None = None,
    relative: Effect | None = None,
    delta: float = 0.0,
) -> MetricComparison:
    return MetricComparison(
        metric=metric.name, role=metric.role, direction=metric.direction,
        control=summaries[0], treatment=summaries[1], method=method,
        absolute=absolute, relative=relative, statistic=None, p_value=None,
        p_value_adjusted=None, correction="none", significant=None, outcome="not_tested",
        favours=_favours(delta, metric.direction), notes=tuple(notes),
    )  # fmt: skip


def _favours(delta: float, direction: Direction) -> Favours:
    if delta == 0 or math.isnan(delta):
        return "neither"
    return "treatment" if (delta > 0) == (direction == "higher") else "control"


def _summary(arm: Arm) -> VariantSummary:
    data = arm.data
    if isinstance(data, PointData):
        return VariantSummary(variant=arm.name, form=arm.form, n=None, mean=data.value)
    if data.n == 0:
        return VariantSummary(variant=arm.name, form=arm.form, n=0, mean=None)
    if isinstance(data, BinomialStats):
        return VariantSummary(
            variant=arm.name, form=arm.form, n=data.n, mean=data.rate, successes=data.successes
        )
    if isinstance(data, RatioStats):
        mean = data.num_sum / data.den_sum if data.den_sum else None
        return VariantSummary(variant=arm.name, form=arm.form, n=data.n, mean=mean)
    outcome = data.outcome if isinstance(data, CovariateStats) else data
    return VariantSummary(
        variant=arm.name, form=arm.form, n=data.n, mean=outcome.mean, std=outcome.std
    )
