"""Sandbox results: frozen values carrying their spec, seeds, settings and replicate data.

Every result holds the replicate-level data as an Arrow table, the seed of every replicate, the
settings that bounded the run, and an ``execution`` block (wall time, workers, nodes, retries)
that describes *how* it ran. ``fingerprint()`` hashes everything except ``execution``: two runs
of one spec agree on it whatever the number of workers, the completion order or the faults.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.sandbox.arrow import ArrowTable
from twinloop.sandbox.indicators import Direction
from twinloop.sandbox.plan import SettingsUsed
from twinloop.sandbox.specs import AbTestSpec, GridSpec, HeadToHeadSpec, SandboxTestSpec

Truth = Literal["treatment", "control", "none", "unclear"]
StopReason = Literal["fixed", "target_reached", "cap_reached"]


class KpiSummary(FrozenModel):
    """One KPI across replicates: mean and interval (t; delta method or bootstrap for ratios)."""

    kpi: str
    direction: Direction
    primary: bool
    method: Literal["t", "delta", "bootstrap"]
    n: int
    mean: float
    std_error: float
    lower: float
    upper: float
    half_width: float
    relative_half_width: float | None = Field(description="half_width / |mean|; None if mean 0")
    confidence: float


class PairedKpi(FrozenModel):
    """Challenger minus baseline on one KPI, paired replicate by replicate."""

    kpi: str
    direction: Direction
    primary: bool
    method: Literal["paired_t", "paired_delta"]
    n: int
    baseline_mean: float
    challenger_mean: float
    difference: float
    relative_difference: float | None
    std_error: float
    lower: float
    upper: float
    half_width: float
    relative_half_width: float | None = Field(description="half_width / |baseline mean|")
    unpaired_half_width: float = Field(
        description="The half-width the same replicates would give analysed as independent arms."
    )
    width_ratio: float | None = Field(description="unpaired / paired half-width")
    prob_challenger_better: float = Field(description="P(difference favours the challenger)")
    win_rate: float = Field(description="Share of replicates the challenger won (ties count ½)")
    confidence: float


class StopInfo(FrozenModel):
    """Why the run stopped where it did."""

    reason: StopReason
    target_relative_half_width: float | None
    checks: int = Field(description="Times the early-stop rule was evaluated.")


class ExecutionInfo(FrozenModel):
    """How the run went; not part of the fingerprint (it differs between equal runs)."""

    executor: str
    workers: int
    nodes: list[str]
    retried: int = Field(description="Replicates re-run after a worker was lost.")
    wall_seconds: float
    replicate_seconds: float = Field(
        description="Sum of the replicates' own run times (on the workers)."
    )
    customer_days: float
    customer_days_per_second: float


class _Result(FrozenModel):
    seed: int
    replicates: int
    replicate_seeds: list[int]
    settings: SettingsUsed
    execution: ExecutionInfo

    def fingerprint(self) -> str:
        """SHA-256 of the deterministic content (everything but ``execution``)."""
        text = self.model_dump_json(exclude={"execution"})
        return hashlib.sha256(text.encode()).hexdigest()


class SandboxTestResult(_Result):
    """One model tested over Monte Carlo replicates."""

    kind: Literal["test"] = "test"
    spec: SandboxTestSpec
    environment: str
    model: str
    stop: StopInfo
    kpis: list[KpiSummary]
    table: ArrowTable = Field(description="One row per replicate: replicate, seed, KPIs.")


class HeadToHeadResult(_Result):
    """Baseline vs challenger; paired differences per KPI."""

    kind: Literal["compare"] = "compare"
    spec: HeadToHeadSpec
    environment: str
    baseline: str
    challenger: str
    common_random_numbers: bool
    stop: StopInfo
    differences: list[PairedKpi]
    baseline_kpis: list[KpiSummary]
    challenger_kpis: list[KpiSummary]
    table: ArrowTable = Field(description="One row per replicate × arm: replicate, arm, KPIs.")


class GridCell(FrozenModel):
    """One scenario × model: its summarised KPIs."""

    scenario: str
    model: str
    kpis: list[KpiSummary]


class GridRank(FrozenModel):
    """A model's place in one scenario (or overall, as its mean rank across scenarios)."""

    scenario: str
    model: str
    rank: int
    score: float = Field(description="Mean of rank_by in a scenario; mean rank overall.")
    p_best: float = Field(description="Share of replicates where this model was best.")


class GridResult(_Result):
    """Every scenario × model; one Arrow table plus a ranking."""

    kind: Literal["grid"] = "grid"
    spec: GridSpec
    rank_by: str
    cells: list[GridCell]
    ranking: list[GridRank]
    overall: list[GridRank]
    table: ArrowTable = Field(description="One row per scenario × model × replicate.")


class VariantAllocation(FrozenModel):
    """How customers ended up split over variants, averaged over replicates."""

    variant: str
    planned_share: float
    customer_share: float = Field(description="Share of all customers (initial + arrivals).")
    arrival_share: float = Field(description="Share of customers who arrived during the run.")


class AbKpiAnalysis(FrozenModel):
    """One KPI and treatment across replicates: how the twin's A/B test behaves."""

    kpi: str
    control: str
    treatment: str
    direction: Direction
    method: str
    replicates: int = Field(description="Replicates in which the test could be computed.")
    control_mean: float
    treatment_mean: float
    mean_effect: float
    effect_lower: float
    effect_upper: float
    truth: Truth = Field(
        description="Which arm is truly better: 'none' for identical models (A/A), else the "
        "sign of the effect pooled over replicates when its 99.9% interval excludes 0."
    )
    rejection_rate: float = Field(description="Share of replicates with p < alpha.")
    power: float | None
    false_positive_rate: float | None
    p_right_winner: float | None = Field(
        description="P(the test's call is right): significant for the true winner, or no "
        "winner in an A/A; None when the truth is unclear."
    )
    p_wrong_winner: float | None = Field(
        description="P(significant for the wrong arm), or any winner in an A/A."
    )
    p_value_quantiles: dict[str, float]
    p_value_histogram: list[int] = Field(description="Counts in ten bins of width 0.1.")
    ks_uniform_p: float | None = Field(description="KS test of the p-values against U(0, 1).")


class AbTestResult(_Result):
    """An A/B test in the twin, replicated: p-value distribution, power, right-winner rate."""

    kind: Literal["ab_test"] = "ab_test"
    spec: AbTestSpec
    environment: str
    control: str
    alpha: float
    allocation: list[VariantAllocation]
    analyses: list[AbKpiAnalysis]
    notes: list[str] = Field(default_factory=list, description="Caveats about this design.")
    table: ArrowTable = Field(description="One row per replicate × variant: KPIs, customers.")
    tests: ArrowTable = Field(description="One row per replicate × KPI × treatment: the test.")


SandboxResult = SandboxTestResult | HeadToHeadResult | GridResult | AbTestResult
