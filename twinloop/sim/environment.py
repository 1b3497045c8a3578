"""`BusinessEnvironment`: the validated description of one simulated business.

Every knob carries its unit in its description. Rates are per day; the engine scales them to the
step (hour or day). Validation happens here, once, so the engine can trust its input: a bad field
raises ``pydantic.ValidationError`` whose location names it (``twinloop.contract.invalid_input``
turns that into our ``InvalidInput``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput

ShockKind = Literal["surge", "seasonal_peak", "segment_mix_shift", "outage", "price_change"]
Step = Literal["hour", "day"]
DecisionTarget = Literal["conversion", "retention"]


class Segment(FrozenModel):
    """A customer segment: its share of arrivals, its features and what its customers are worth."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    share: float = Field(gt=0.0, le=1.0, description="Share of arrivals and of the initial base.")
    feature_mean: list[float] = Field(
        default_factory=lambda: [0.0, 0.0, 0.0, 0.0],
        min_length=1,
        max_length=32,
        description="Mean of the segment's customer feature vector (unitless).",
    )
    feature_std: float = Field(default=1.0, gt=0.0, description="Std of every feature.")
    truth_weights: list[float] | None = Field(
        default=None,
        description="Ground-truth logit weights of customer intent on the features; "
        "None = the environment's truth_weights.",
    )
    truth_bias: float = Field(default=0.0, description="Ground-truth logit intercept.")
    value: float = Field(default=1.0, gt=0.0, description="Order-value multiplier (×AOV).")
    conversion_multiplier: float = Field(default=1.0, gt=0.0, description="× base conversion.")
    interaction_multiplier: float = Field(default=1.0, gt=0.0, description="× interaction rate.")
    churn_multiplier: float = Field(default=1.0, gt=0.0, description="× base churn hazard.")


class Channel(FrozenModel):
    """An acquisition channel: its share of new customers and its cost per acquisition."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    share: float = Field(gt=0.0, le=1.0)
    cost_per_acquisition: float = Field(default=0.0, ge=0.0, description="Money per new customer.")


class Acquisition(FrozenModel):
    """Arrivals: a Poisson process with weekly and yearly seasonality, split over channels."""

    rate_per_day: float = Field(
        ge=0.0, description="Mean new customers per day before seasonality."
    )
    weekly: list[float] = Field(
        default_factory=lambda: [1.0] * 7,
        min_length=7,
        max_length=7,
        description="Multiplier per weekday, Monday first; normalised to mean 1.",
    )
    yearly_amplitude: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Relative amplitude of the yearly cosine cycle."
    )
    yearly_peak_day: float = Field(default=0.0, ge=0.0, lt=366.0, description="Day of peak.")
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel(name="organic", share=1.0)], min_length=1
    )

    @model_validator(mode="after")
    def _check(self) -> Acquisition:
        if any(w < 0 for w in self.weekly) or sum(self.weekly) <= 0:
            raise ValueError("weekly multipliers must be >= 0 with a positive sum")
        total = sum(c.share for c in self.channels)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"channel shares must sum to 1, got {total:.6g}")
        return self


class DecisionEffects(FrozenModel):
    """What a decision does to its target, by what it did and what the customer intended.

    The four cells of the confusion matrix, each a multiplier m on the decision target (the
    conversion probability; for ``decision_target: retention`` the churn hazard is multiplied by
    2 − m, so m > 1 still means "better"). A model *acts* when its score reaches its threshold;
    the customer *intends* when the ground truth says so. A business values these asymmetrically:
    acting on an intending customer wins the sale, acting on one without intent gives an offer
    away, holding back from an intending customer misses a sale. ``decision_uplift`` alone is the
    symmetric case m = 1 + u on the diagonal and 1 − u off it.
    """

    true_positive: float = Field(ge=0.0, le=2.0, description="Acted, intent: × target.")
    false_positive: float = Field(ge=0.0, le=2.0, description="Acted, no intent: × target.")
    false_negative: float = Field(ge=0.0, le=2.0, description="Held back, intent: × target.")
    true_negative: float = Field(ge=0.0, le=2.0, description="Held back, no intent: × target.")

    @property
    def optimal_threshold(self) -> float:
        """The P(intent) above which acting is worth more than holding back (to first order).

        Acting gains ``p·(tp − fn)`` and loses ``(1 − p)·(tn − fp)``; they balance at
        ``(tn − fp) / ((tp − fn) + (tn − fp))`` — 0.5 in the symmetric case. When the two sum to
        ≤ 0 no threshold on P(intent) separates them: 0 (always act) if acting never loses, else 1.
        """
        gain = self.true_positive - self.false_negative
        cost = self.true_negative - self.false_positive
        if gain + cost <= 0:
            return 0.0 if cost <= 0 else 1.0
        return min(max(cost / (gain + cost), 0.0), 1.0)


class Transaction(FrozenModel):
    """Conversion given an interaction, and the value of an order."""

    base_conversion: float = Field(gt=0.0, lt=1.0, description="P(convert | interaction).")
    decision_uplift: float = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="A right model decision multiplies the target by (1+u), a wrong one by (1-u).",
    )
    decision_effects: DecisionEffects | None = Field(
        default=None,
        description="Per confusion-matrix cell multipliers of the target; None = decision_uplift "
        "(symmetric). Profiles (no scores, no intent) use the mean of the two right cells and of "
        "the two wrong ones.",
    )
    satisfaction_elasticity: float = Field(
        default=1.0, ge=0.0, description="Conversion ∝ (satisfaction / reference)^elasticity."
    )
    average_order_value: float = Field(gt=0.0, description="Mean order value (money).")
    order_value_sigma: float = Field(
        default=0.5, ge=0.0, le=3.0, description="Log-normal sigma of the order value."
    )
    price_elasticity: float = Field(
        default=1.0, ge=0.0, description="Conversion ∝ price^-elasticity under a price change."
    )


class Churn(FrozenModel):
    """Churn hazard per day, rising exponentially as satisfaction falls below its reference."""

    base_hazard_per_day: float = Field(ge=0.0, lt=5.0, description="Hazard at reference sat.")
    satisfaction_sensitivity: float = Field(
        default=3.0, ge=0.0, description="hazard = base·exp(k·(s_ref − s)); k unitless."
    )


class SatisfactionDynamics(FrozenModel):
    """Satisfaction in [0, 1]: an exponential average of each interaction's experience."""

    initial: float = Field(default=0.75, ge=0.0, le=1.0)
    reference: float = Field(default=0.75, gt=0.0, le=1.0, description="Neutral satisfaction.")
    learning_rate: float = Field(
        default=0.2, gt=0.0, le=1.0, description="Weight of the newest experience."
    )
    accuracy_weight: float = Field(
        default=0.6, ge=0.0, le=1.0, description="Share of experience from a right decision."
    )
    latency_tolerance_ms: float = Field(
        default=400.0, gt=0.0, description="Latency experience = exp(−latency / tolerance)."
    )
    timeout_ms: float = Field(default=3000.0, gt=0.0, description="Latency of a failed call.")


class Costs(FrozenModel):
    """Operating costs."""

    fixed_per_day: float = Field(default=0.0, ge=0.0, description="Money per day.")


class Shock(FrozenModel):
    """A scenario shock active on days [start_day, end_day)."""

    kind: ShockKind
    start_day: float = Field(ge=0.0)
    end_day: float = Field(gt=0.0)
    magnitude: float = Field(
        description="surge/seasonal_peak: rate multiplier (>0); segment_mix_shift: share moved "
        "to `segment` (0..1); outage: fraction of model calls failing (0..1); "
        "price_change: relative price change (> -1)."
    )
    segment: str | None = Field(default=None, description="Target of a segment_mix_shift.")

    @model_validator(mode="after")
    def _check(self) -> Shock:
        if self.end_day <= self.start_day:
            raise ValueError("end_day must be after start_day")
        m = self.magnitude
        if self.kind in ("surge", "seasonal_peak") and m <= 0:
            raise ValueError(f"{self.kind} magnitude must be > 0, got {m}")
        if self.kind in ("segment_mix_shift", "outage") and not 0 <= m <= 1:
            raise ValueError(f"{self.kind} magnitude must be in [0, 1], got {m}")
        if self.kind == "price_change" and m <= -1:
            raise ValueError(f"price_change magnitude must be > -1, got {m}")
        if self.kind == "segment_mix_shift" and not self.segment:
            raise ValueError("segment_mix_shift needs `segment`")
        return self


class BusinessEnvironment(FrozenModel):
    """One simulated business: who arrives, how they interact, buy, feel and leave."""

    name: str = Field(default="custom", min_length=1, max_length=128)
    domain: str = Field(default="custom", description="Preset it came from, or 'custom'.")
    decision: str = Field(default="which action to take for the customer")
    step: Step = "day"
    initial_customers: int = Field(default=10_000, ge=0, le=50_000_000)
    segments: list[Segment] = Field(min_length=1, max_length=64)
    truth_weights: list[float] = Field(
        default_factory=lambda: [1.0, -0.5, 0.5, 0.0],
        min_length=1,
        max_length=32,
        description="Ground-truth logit weights of customer intent (for real predictors).",
    )
    acquisition: Acquisition
    interaction_probability_per_day: float = Field(gt=0.0, le=1.0)
    transaction: Transaction
    decision_target: DecisionTarget = "conversion"
    churn: Churn
    satisfaction: SatisfactionDynamics = Field(default_factory=SatisfactionDynamics)
    costs: Costs = Field(default_factory=Costs)
    shocks: list[Shock] = Field(default_factory=list, max_length=64)

    @property
    def n_features(self) -> int:
        return len(self.truth_weights)

    @model_validator(mode="after")
    def _check(self) -> BusinessEnvironment:
        total = sum(s.share for s in self.segments)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"segments: shares must sum to 1, got {total:.6g}")
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ValueError("segments: names must be unique")
        d = self.n_features
        for s in self.segments:
            if len(s.feature_mean) != d:
                raise ValueError(
                    f"segments.{s.name}.feature_mean: has {len(s.feature_mean)} values, "
                    f"truth_weights has {d}"
                )
            if s.truth_weights is not None and len(s.truth_weights) != d:
                raise ValueError(f"segments.{s.name}.truth_weights: needs {d} values")
        for shock in self.shocks:
            if shock.segment is not None and shock.segment not in names:
                raise ValueError(f"shocks: unknown segment {shock.segment!r}")
        return self

    def segment_index(self, name: str) -> int:
        for i, s in enumerate(self.segments):
            if s.name == name:
                return i
        raise InvalidInput(
            "segment", f"unknown segment {name!r}; known: {[s.name for s in self.segments]}"
        )


def parse_environment(data: object) -> BusinessEnvironment:
    """Validate a dict (e.g. parsed JSON) into a BusinessEnvironment or raise InvalidInput."""
    try:
        return BusinessEnvironment.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, field="environment") from exc
