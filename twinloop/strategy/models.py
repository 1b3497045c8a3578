"""The plan's contract: actions with uplift, cost, ROI and training plan, ranked by ROI.

Every money figure is per month in the analysis' currency; every interval is the sandbox's (or
the what-if's) interval carried through a known scale, so a reader can trace it back. A cost that
rests on an assumption (a price setting, a planned trial count) says so in ``assumptions``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from twinloop.config import Settings
from twinloop.contract import FrozenModel

UpliftSource = Literal["sandbox", "what_if", "none"]
RiskLevel = Literal["low", "medium", "high"]
BUILTIN_AGENTS = ("performance", "ml_pipeline", "business", "qa")


class Estimate(FrozenModel):
    """A point estimate with its interval (``lower <= estimate <= upper``)."""

    estimate: float
    lower: float
    upper: float

    def scaled(self, factor: float) -> Estimate:
        """The same interval times a factor (a negative factor swaps the bounds)."""
        a, b = self.lower * factor, self.upper * factor
        return Estimate(estimate=self.estimate * factor, lower=min(a, b), upper=max(a, b))


class SandboxEvidence(FrozenModel):
    """One head-to-head in the twin, as the plan uses it: the challenger's gain on one KPI."""

    kpi: str
    baseline: str
    challenger: str
    baseline_mean: float
    difference: Estimate = Field(
        description="challenger − baseline, paired interval, oriented so positive is better"
    )
    replicates: int
    replicate_seconds: float = Field(description="CPU seconds the replicates took (measured)")
    win_rate: float
    prob_better: float

    @property
    def relative(self) -> Estimate | None:
        """The difference relative to the baseline mean (None when that mean is 0)."""
        if self.baseline_mean == 0:
            return None
        return self.difference.scaled(1.0 / abs(self.baseline_mean))


class Uplift(FrozenModel):
    """What the action should win: on the primary KPI (relative) and in money per month."""

    source: UpliftSource = Field(description="sandbox validation, else the what-if estimate")
    kpi: str | None
    relative: Estimate | None = Field(description="relative change of the primary KPI")
    money_per_month: Estimate | None
    evidence: SandboxEvidence | None = None
    note: str


class Cost(FrozenModel):
    """What the action costs once: compute, labelled data, and the guardrails it puts at risk."""

    measured_cpu_seconds: float = Field(description="sandbox replicate-seconds of this run")
    tune_trials: int = Field(description="search trials planned")
    seconds_per_trial: float
    cpu_seconds: float = Field(description="measured + trials × seconds per trial")
    labelled_rows: dict[str, int] = Field(description="rows to label per segment (power analysis)")
    compute_money: float
    data_money: float
    rollout_money: float = Field(description="the fixed cost of taking any change to production")
    total_money: float
    guardrails_at_risk: tuple[str, ...]
    rollout_risk: RiskLevel
    assumptions: tuple[str, ...]


class TrainingPlan(FrozenModel):
    """The input of a retraining search: data, search space, resources, estimated wall time."""

    segments: tuple[str, ...]
    rows_per_segment: dict[str, int]
    data_source: str
    search_space: dict[str, list[Any]]
    trials: int
    cpus_per_trial: float
    gpus_per_trial: float
    cluster_cpus: int
    estimated_wall_seconds: float


class Action(FrozenModel):
    """One thing to do, who does it, what it should win, what it costs, and its ROI."""

    id: str = Field(description="stable, store-safe: the root cause id as a slug")
    rank: int
    title: str
    description: str
    failure: tuple[str, ...] = Field(description="the failing metrics it targets")
    root_cause: str
    agent: str = Field(description="owning agent kind (performance, ml_pipeline, business, qa…)")
    uplift: Uplift
    cost: Cost
    roi: Estimate | None = Field(description="money per month / one-off cost (None: no money)")
    training_plan: TrainingPlan | None = None
    validation: dict[str, Any] | None = Field(
        default=None, description="the sandbox head-to-head spec that tests it (JSON)"
    )
    notes: tuple[str, ...] = ()


class PlanSettings(FrozenModel):
    """Prices and planning knobs; the defaults are documented in docs/strategy.md."""

    cpu_hour_price: float = Field(default=0.05, ge=0.0, description="money per CPU-hour")
    labelled_row_price: float = Field(default=0.02, ge=0.0, description="money per labelled row")
    rollout_cost: float = Field(
        default=500.0, ge=0.0, description="money per rollout (confirmation, canary, review)"
    )
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    default_accuracy_gain: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="sought when the analysis names none"
    )
    tune_trials: int = Field(default=12, ge=1, le=10_000, description="retraining trials")
    serving_trials: int = Field(default=4, ge=1, le=1_000, description="serving configs tried")
    threshold_trials: int = Field(default=1, ge=1, le=1_000, description="policy confirmations")
    assumed_seconds_per_trial: float = Field(
        default=30.0, gt=0.0, description="used when this run measured no replicate"
    )
    cluster_cpus: int = Field(default=2, ge=1, le=100_000)
    gpus_per_trial: float = Field(default=0.0, ge=0.0)
    seed: int = Field(default=0, ge=0, lt=2**63)
    max_actions: int = Field(default=10, ge=1, le=100)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> PlanSettings:
        """Prices from the runtime settings (``TWINLOOP_*_PRICE``, ``TWINLOOP_ROLLOUT_COST``)."""
        prices = {
            "cpu_hour_price": settings.cpu_hour_price,
            "labelled_row_price": settings.labelled_row_price,
            "rollout_cost": settings.rollout_cost,
        }
        return cls.model_validate({**prices, **overrides})


class Plan(FrozenModel):
    """The strategy for one analysis: actions best ROI first, or empty with the reason."""

    id: str
    analysis_id: str
    winner: str
    loser: str
    decision_status: str
    currency: str
    loser_money_per_month: float | None = Field(
        description="the loser's KPI in money per month: the scale of every money uplift"
    )
    actions: tuple[Action, ...]
    reason: str | None = Field(description="why the plan is empty (None when it is not)")
    settings: PlanSettings
    seed: int
