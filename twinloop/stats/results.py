"""Result models of the statistics engine: frozen, JSON-ready, every number named by its method.

Data-quality findings are :class:`Note` values with a stable ``code`` (never exceptions), and a
quantity that cannot be computed is ``None`` with a note saying why — never a NaN.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from twinloop.contract import FrozenModel

NoteCode = Literal[
    "srm",  # sample-ratio mismatch: observed units differ from the planned allocation
    "srm_not_checked",  # no unit counts to check the allocation against
    "no_data",  # a variant has no units for this metric
    "too_few_samples",  # fewer units than ``min_samples`` in a variant
    "few_events",  # under 5 successes or failures: the normal approximation is rough
    "zero_variance",  # no spread in either variant: no test statistic
    "point_form_no_significance",  # point values only: effect shown, nothing tested
    "point_percent_change_mismatch",  # the stated percentChange disagrees with the values
    "negative_control_mean",  # relative lift is divided by |control mean|
    "zero_control_mean",  # relative lift undefined (control mean is zero)
    "unstable_relative_lift",  # control mean within 3 standard errors of zero
    "zero_denominator",  # a ratio metric's denominator mean is zero
    "cuped_skipped",  # covariate has no spread; analysed without CUPED
]
Severity = Literal["info", "warning", "error"]
Method = Literal[
    "welch_t",
    "two_proportion_z",
    "ratio_delta_method_z",
    "cuped_welch_t",
    "point_difference",
    "none",
]
Correction = Literal["holm", "benjamini_hochberg", "none"]
Outcome = Literal["better", "worse", "inconclusive", "not_tested"]
Direction = Literal["higher", "lower"]
Role = Literal["primary", "secondary", "guardrail"]
Favours = Literal["treatment", "control", "neither"]


class Note(FrozenModel):
    """One data-quality or method finding; ``code`` is stable, ``message`` is for people."""

    code: NoteCode
    severity: Severity
    message: str
    metric: str | None = None
    variant: str | None = None


class Interval(FrozenModel):
    """A two-sided interval at ``level`` (0.95 = 95%)."""

    lower: float
    upper: float
    level: float


class Effect(FrozenModel):
    """A point estimate with its standard error and interval, and how they were computed."""

    estimate: float
    std_error: float | None
    interval: Interval | None
    method: str = Field(description="e.g. 'welch_t', 'delta_method', 'point_difference'")


class VariantSummary(FrozenModel):
    """What one variant contributed to a comparison."""

    variant: str
    form: str
    n: int | None
    mean: float | None = Field(description="mean, conversion rate or ratio of the metric")
    std: float | None = Field(default=None, description="per-unit standard deviation (ddof=1)")
    successes: int | None = None


class CupedDetail(FrozenModel):
    """CUPED adjustment: θ, the covariate correlation and the variance kept (≈ 1 - ρ²)."""

    method: Literal["cuped_pooled_theta"] = "cuped_pooled_theta"
    theta: float
    correlation: float
    variance_ratio: float = Field(description="adjusted / unadjusted variance of the effect")


class BayesianDetail(FrozenModel):
    """Probability that the treatment beats control, and the posterior of the lift."""

    method: Literal["beta_binomial_exact", "gaussian_lift"]
    chance_to_beat_control: float = Field(description="P(treatment better), metric direction")
    prob_treatment_greater: float
    lift_method: Literal["gaussian_lift"] = "gaussian_lift"
    lift_scale: Literal["relative", "absolute"]
    posterior_mean: float | None
    credible_interval: Interval | None
    prior: str = Field(description="'flat', 'beta(a, b)' or 'normal(mean, sd)'")


class SequentialDetail(FrozenModel):
    """Always-valid intervals and p-value: safe to look at after every batch of data."""

    method: Literal["asymptotic_confidence_sequence"] = "asymptotic_confidence_sequence"
    boundary: Literal["normal_mixture"] = "normal_mixture"
    tuning_n: int
    absolute: Interval | None
    relative: Interval | None
    p_value: float | None = Field(description="always-valid p-value of 'no difference'")


class PowerDetail(FrozenModel):
    """Minimum detectable effect at this sample size, and power against a target effect."""

    method: Literal["normal_two_sided"] = "normal_two_sided"
    alpha: float
    power: float
    mde_absolute: float | None
    mde_relative: float | None
    target_relative_effect: float | None = None
    power_at_target: float | None = None


class MetricComparison(FrozenModel):
    """One metric, one treatment against control: effects, test, posterior, power, notes."""

    metric: str
    role: Role
    direction: Direction
    control: VariantSummary
    treatment: VariantSummary
    method: Method
    absolute: Effect | None
    relative: Effect | None = Field(description="(treatment - control) / |control|")
    statistic: float | None = Field(description="t or z of the absolute effect")
    dof: float | None = Field(default=None, description="degrees of freedom (Welch)")
    p_value: float | None
    p_value_adjusted: float | None
    correction: Correction
    significant: bool | None
    outcome: Outcome
    favours: Favours = Field(
        description="which side the point estimate favours, whatever the significance"
    )
    cuped: CupedDetail | None = None
    bayesian: BayesianDetail | None = None
    sequential: SequentialDetail | None = None
    power: PowerDetail | None = None
    notes: tuple[Note, ...] = ()

    def has(self, code: NoteCode) -> bool:
        """True when a note with ``code`` is attached."""
        return any(note.code == code for note in self.notes)


class SrmResult(FrozenModel):
    """Chi-square goodness-of-fit of observed units against the planned allocation."""

    method: Literal["chi_square_goodness_of_fit"] = "chi_square_goodness_of_fit"
    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float | None
    dof: int
    p_value: float | None
    threshold: float
    flagged: bool
    source: str = Field(description="'variants.units' or 'metric:<name>'")
