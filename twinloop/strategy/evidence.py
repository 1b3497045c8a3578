"""Sandbox evidence for a plan: run an action's head-to-head and keep what the plan needs.

The compute an action cost is *measured* here (the replicates' own CPU seconds), so the plan's
compute cost is this run's, not a guess. Hypotheses' validation plans are sized down (customers,
days, replicates) to what a planning run can afford; the seed makes every run reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.config import Settings
from twinloop.contract import FrozenModel
from twinloop.sandbox.executor import Executor
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.results import HeadToHeadResult
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.strategy.models import Estimate, SandboxEvidence


class ValidationSize(FrozenModel):
    """How big each planning head-to-head is (units in the names)."""

    customers: int = Field(default=3_000, ge=100, le=5_000_000)
    days: float = Field(default=14.0, gt=0.0, le=365.0)
    replicates: int = Field(default=6, ge=2, le=1_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    top: int = Field(default=3, ge=0, le=20, description="hypotheses validated")


def evidence_of(result: HeadToHeadResult, kpi: str | None = None) -> SandboxEvidence:
    """The paired difference on ``kpi`` (default: the spec's first KPI) and the CPU it took."""
    name = kpi or (result.spec.kpis[0] if result.spec.kpis else "revenue")
    diff = next(d for d in result.differences if d.kpi == name)
    gain = Estimate(estimate=diff.difference, lower=diff.lower, upper=diff.upper)
    if diff.direction == "lower":  # a lower latency is a gain: orient so that positive is better
        gain = gain.scaled(-1.0)
    return SandboxEvidence(
        kpi=name,
        baseline=result.baseline,
        challenger=result.challenger,
        baseline_mean=diff.baseline_mean,
        difference=gain,
        replicates=diff.n,
        replicate_seconds=result.execution.replicate_seconds,
        win_rate=diff.win_rate,
        prob_better=diff.prob_challenger_better,
    )


def sized(spec: HeadToHeadSpec, size: ValidationSize) -> HeadToHeadSpec:
    """The spec at planning size (same models, KPIs and environment)."""
    return spec.model_copy(
        update={
            "customers": size.customers,
            "days": size.days,
            "replicates": size.replicates,
            "seed": size.seed,
        }
    )


def run_evidence(
    specs: Mapping[str, HeadToHeadSpec],
    executor: Executor | None = None,
    settings: Settings | None = None,
) -> dict[str, SandboxEvidence]:
    """Run each keyed head-to-head; the key is the root cause (or action) it validates."""
    return {
        key: evidence_of(run_head_to_head(spec, settings=settings, executor=executor))
        for key, spec in specs.items()
    }


def hypothesis_specs(
    analysis: FailureAnalysis, size: ValidationSize, skip: Sequence[str] = ()
) -> dict[str, HeadToHeadSpec]:
    """The top hypotheses' own validation plans at planning size, keyed by root cause id."""
    out: dict[str, HeadToHeadSpec] = {}
    for h in analysis.hypotheses[: size.top]:
        if h.root_cause not in skip:
            out[h.root_cause] = sized(h.validation.spec, size)
    return out
