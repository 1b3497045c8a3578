"""Frequentist two-sample tests: Welch t, two-proportion z and delta-method ratio metrics.

Each test reduces two variants' sufficient statistics to a :class:`Contrast` — the two means,
the variance of the effect and of the control mean — and :func:`evaluate` turns a contrast into
the absolute effect with its interval and p-value, and the relative lift with a delta-method
interval. Relative lift is (treatment - control) / |control|: dividing by the absolute value keeps
the sign of the lift equal to the direction of change when the control mean is negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from twinloop.stats.results import Effect, Interval, Method, Note
from twinloop.stats.sufficient import BinomialStats, RatioStats, SampleStats

# Relative lift is unreliable (delta method breaks down) when the control mean is this close
# to zero in standard errors; Fieller-type intervals would be unbounded.
UNSTABLE_CONTROL_Z = 3.0


@dataclass(frozen=True, slots=True)
class Contrast:
    """A treatment-minus-control effect with the variances every later step needs.

    ``var_delta`` is the variance of the effect (for intervals), ``var_test`` its variance under
    the null (pooled for proportions; else equal to ``var_delta``), ``cov_delta_control`` the
    covariance of the effect with the control mean (for the relative lift's delta method).
    ``dof`` is None for normal-theory tests.
    """

    method: Method
    control_mean: float
    treatment_mean: float
    delta: float
    var_delta: float
    var_test: float
    var_control: float
    cov_delta_control: float
    dof: float | None


@dataclass(frozen=True, slots=True)
class Evaluated:
    """An evaluated contrast: absolute and relative effects, statistic, p-value, notes."""

    absolute: Effect
    relative: Effect | None
    statistic: float | None
    p_value: float | None
    notes: tuple[Note, ...]


def welch(control: SampleStats, treatment: SampleStats) -> Contrast:
    """Welch's unequal-variance t contrast (Welch–Satterthwaite degrees of freedom).

    Needs ``n >= 2`` in both arms. A variance that is rounding noise next to the mean counts as 0.
    """
    vc = 0.0 if control.is_constant else control.variance / control.n
    vt = 0.0 if treatment.is_constant else treatment.variance / treatment.n
    var = vc + vt
    denominator = vc * vc / (control.n - 1) + vt * vt / (treatment.n - 1)
    dof = var * var / denominator if denominator > 0 else None
    mc, mt = control.mean, treatment.mean
    return Contrast("welch_t", mc, mt, mt - mc, var, var, vc, -vc, dof)


def two_proportion(control: BinomialStats, treatment: BinomialStats) -> Contrast:
    """Two-proportion z: pooled variance for the test, unpooled (Wald) for the interval."""
    pc, pt = control.rate, treatment.rate
    vc = pc * (1 - pc) / control.n
    vt = pt * (1 - pt) / treatment.n
    pooled = (control.successes + treatment.successes) / (control.n + treatment.n)
    var_test = pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n)
    return Contrast("two_proportion_z", pc, pt, pt - pc, vc + vt, var_test, vc, -vc, None)


def ratio_mean_variance(stats: RatioStats) -> tuple[float, float]:
    """The ratio Σnum/Σden and its delta-method variance.

    Var(x̄/ȳ) ≈ (σx²/μy² - 2μx·σxy/μy³ + μx²·σy²/μy⁴) / n, with per-unit (co)variances.
    """
    mx, my, vx, vy, cxy = stats.moments()
    ratio = mx / my
    var = (vx / my**2 - 2 * mx * cxy / my**3 + mx**2 * vy / my**4) / stats.n
    return ratio, max(var, 0.0)


def ratio(control: RatioStats, treatment: RatioStats) -> Contrast:
    """Difference of two ratio metrics, each with its delta-method variance; normal test."""
    rc, vc = ratio_mean_variance(control)
    rt, vt = ratio_mean_variance(treatment)
    return Contrast("ratio_delta_method_z", rc, rt, rt - rc, vc + vt, vc + vt, vc, -vc, None)


def critical(alpha: float, dof: float | None) -> float:
    """Two-sided critical value: normal, or Student t with ``dof`` degrees of freedom."""
    if dof is None or math.isinf(dof):
        return float(special.ndtri(1 - alpha / 2))
    return float(special.stdtrit(dof, 1 - alpha / 2))


def two_sided_p(statistic: float, dof: float | None) -> float:
    """Two-sided p-value of a z (``dof`` None) or t statistic."""
    if dof is None or math.isinf(dof):
        return float(2 * special.ndtr(-abs(statistic)))
    return float(2 * special.stdtr(dof, -abs(statistic)))


def relative_variance(contrast: Contrast) -> float:
    """Delta-method variance of (treatment - control) / |control|.

    With r = Δ/|μc|: ∂r/∂Δ = 1/|μc|, ∂r/∂μc = -Δ·sign(μc)/μc², so
    Var(r) = Var(Δ)/μc² + Δ²·Var(μc)/μc⁴ - 2Δ·sign(μc)·Cov(Δ, μc)/(|μc|·μc²).
    """
    mc = contrast.control_mean
    g_delta = 1 / abs(mc)
    g_control = -contrast.delta * math.copysign(1.0, mc) / mc**2
    var = (
        g_delta**2 * contrast.var_delta
        + g_control**2 * contrast.var_control
        + 2 * g_delta * g_control * contrast.cov_delta_control
    )
    return max(var, 0.0)


def evaluate(contrast: Contrast, alpha: float) -> Evaluated:
    """Absolute effect with its interval and p-value, and the relative lift (delta method)."""
    level = 1 - alpha
    quantile = critical(alpha, contrast.dof)
    notes: list[Note] = []
    se = math.sqrt(contrast.var_delta)
    interval = Interval(
        lower=contrast.delta - quantile * se, upper=contrast.delta + quantile * se, level=level
    )
    absolute = Effect(
        estimate=contrast.delta, std_error=se, interval=interval, method=contrast.method
    )
    statistic: float | None = None
    p_value: float | None = None
    if contrast.var_test > 0:
        statistic = contrast.delta / math.sqrt(contrast.var_test)
        p_value = two_sided_p(statistic, contrast.dof)
    relative, relative_notes = relative_effect(contrast, quantile, level)
    notes.extend(relative_notes)
    return Evaluated(absolute, relative, statistic, p_value, tuple(notes))


def relative_effect(
    contrast: Contrast, quantile: float, level: float
) -> tuple[Effect | None, list[Note]]:
    """The relative lift and its delta-method interval, or None with a note saying why."""
    mc = contrast.control_mean
    if mc == 0:
        message = "control mean is 0: relative lift is undefined"
        return None, [Note(code="zero_control_mean", severity="warning", message=message)]
    notes: list[Note] = []
    if mc < 0:
        message = "control mean is negative: relative lift divides by |control mean|"
        notes.append(Note(code="negative_control_mean", severity="info", message=message))
    estimate = contrast.delta / abs(mc)
    se = math.sqrt(relative_variance(contrast))
    if contrast.var_control > 0 and abs(mc) < UNSTABLE_CONTROL_Z * math.sqrt(contrast.var_control):
        z = abs(mc) / math.sqrt(contrast.var_control)
        message = f"control mean is {z:.2g} standard errors from 0: relative interval unreliable"
        notes.append(Note(code="unstable_relative_lift", severity="warning", message=message))
    interval = Interval(lower=estimate - quantile * se, upper=estimate + quantile * se, level=level)
    effect = Effect(estimate=estimate, std_error=se, interval=interval, method="delta_method")
    return effect, notes
