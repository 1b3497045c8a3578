"""One head-to-head in the twin at the context's size: the measuring stick every agent shares."""

from __future__ import annotations

from twinloop.agents.protocol import AgentContext
from twinloop.sandbox.headtohead import run_head_to_head
from twinloop.sandbox.results import HeadToHeadResult
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.domains import preset
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec
from twinloop.strategy.evidence import evidence_of
from twinloop.strategy.models import SandboxEvidence


def environment_of(context: AgentContext) -> BusinessEnvironment:
    """The context's environment as an object (a preset name is expanded)."""
    ref = context.environment
    return preset(ref).environment if isinstance(ref, str) else ref


def compare(
    context: AgentContext, baseline: ModelSpec, challenger: ModelSpec, kpi: str | None = None
) -> tuple[SandboxEvidence, HeadToHeadResult]:
    """Challenger vs baseline on common random numbers; evidence on ``kpi`` (default context's)."""
    name = kpi or context.kpi
    spec = HeadToHeadSpec(
        environment=context.environment,
        customers=context.customers,
        days=context.days,
        seed=context.seed,
        replicates=context.replicates,
        baseline=baseline,
        challenger=challenger,
        kpis=[name],
    )
    result = run_head_to_head(spec)
    return evidence_of(result, name), result


def kpi_mean(result: HeadToHeadResult, kpi: str, arm: int) -> float:
    """Mean of a KPI for the baseline (0) or the challenger (1)."""
    summaries = result.baseline_kpis if arm == 0 else result.challenger_kpis
    return next(s.mean for s in summaries if s.kpi == kpi)
