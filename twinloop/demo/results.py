"""Result models of the main job: one per step, and ``DemoResult`` that holds them (report.json).

Every model is a frozen value; ``DemoResult`` carries the scenario (sizes and seed) that produced
it, so a report can always be traced back to the exact run. The analyzer's, what-if's and
sandbox's own result models are embedded as they are, not re-shaped.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.championship.results import ChampionshipDecision
from twinloop.contract import FrozenModel
from twinloop.demo.scenario import DemoScenario
from twinloop.loop.kpis import LoopKpis
from twinloop.replication.whatif.analytic import WhatIfResult
from twinloop.replication.whatif.simulated import SimWhatIfResult


class TrajectoryBand(FrozenModel):
    """One KPI of one variant per day: Monte Carlo mean and 90% band over A/B replicates."""

    kpi: str
    variant: str
    day: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]


class AbTestStep(FrozenModel):
    """Step 1: the A/B test in the twin (replicate 0 is the analysed experiment)."""

    environment: str
    seed: int
    days: float
    replicates: int = Field(description="Monte Carlo runs behind the bands")
    allocation: dict[str, float]
    units: int = Field(description="customers in the analysed experiment")
    units_per_variant: dict[str, int]
    units_per_segment: dict[str, int]
    bands: list[TrajectoryBand]


class CalibrationSummary(FrozenModel):
    """How well the twin mirrors the shipped KPI history (Simulation Accuracy, holdout)."""

    history: str
    fit_quality: str
    mean_pearson_r: float | None
    mean_mape: float
    train_days: int
    holdout_days: int
    simulations: int
    accuracy: dict[str, float] = Field(description="holdout MAPE per KPI")


class WhatIfStep(FrozenModel):
    """Step 3: one counterfactual, through the metric graph and re-run in the twin."""

    question: str
    changes: dict[str, float]
    analytic: WhatIfResult
    simulation: SimWhatIfResult


class Validation(FrozenModel):
    """Step 4: one hypothesis (or the retraining fix) run head-to-head on common random numbers."""

    title: str
    hypothesis_rank: int | None = Field(description="None for the retraining fix")
    root_cause: str | None
    confirm_if: str
    baseline: str
    challenger: str
    kpi: str
    replicates: int
    baseline_mean: float
    challenger_mean: float
    difference: float = Field(description="challenger − baseline, mean over paired replicates")
    relative_difference: float | None
    lower: float
    upper: float
    win_rate: float
    prob_better: float
    width_ratio: float | None = Field(description="unpaired / paired interval half-width")
    confirmed: bool = Field(description="the interval excludes 0 in the challenger's favour")


class TimelineRow(FrozenModel):
    """One stage of the improvement: how long it took and what it decided."""

    stage: str
    status: str
    seconds: float | None
    summary: str
    decision: str | None = Field(description="the improvement's end when this stage ended it")


class PlanRow(FrozenModel):
    """One action of the plan as the loop ranked it (plan value × past success of its kind)."""

    id: str
    agent: str
    title: str
    plan_rank: int
    value: float = Field(description="the plan's ROI, else its relative uplift")
    expected: float = Field(description="value × P(success) of the agent's kind")
    chosen: bool


class LoopStep(FrozenModel):
    """Step 5: the improvement loop on the failure, its canary judged by production."""

    family: str
    improvement_id: str
    twin_environment: str = Field(description="the stored environment the loop decided in")
    stage: str | None
    status: str
    reason: str | None
    timeline: list[TimelineRow]
    plan: list[PlanRow]
    candidates: dict[str, Any] | None = Field(description="the retraining stage's output")
    championship: ChampionshipDecision | None
    canary: dict[str, Any] | None = Field(description="the canary stage's output (with trace)")
    champion: str | None = Field(description="the family's champion after the loop")
    kpis: LoopKpis


class DemoResult(FrozenModel):
    """The whole story of one run: calibration, A/B test, analysis, what-if, validations,
    and the improvement loop."""

    seed: int
    scenario: DemoScenario
    calibration: CalibrationSummary
    ab_test: AbTestStep
    analysis: FailureAnalysis
    what_if: WhatIfStep
    validations: list[Validation]
    timings: dict[str, float] = Field(description="wall seconds per step")
    loop: LoopStep | None = Field(default=None, description="the improvement loop (step 5)")
