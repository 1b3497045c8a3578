"""The ``championship`` stage: the registered candidate against the champion, on fresh seeds.

The candidate the ``candidates`` stage registered meets the family's champion in a championship
(``twinloop.championship.hold_championship``): a CRN round robin, then a confirmation run on seeds
the round robin never used, and the family's gates (primary KPI, guardrails, segments, external
gates). A qa verdict carried by the candidates stage becomes the external gate ``qa``. The
decision document's id is derived from the improvement, so a driver that died after the
decision was stored adopts it instead of holding a second championship. A refused promotion ends
the improvement ``abandoned`` with the championship's reasons. The stage output carries the
twin-predicted relative effect on the primary KPI (``predicted_effect``, positive = better) that
the KPIs compare with the canary's measured one.
"""

from __future__ import annotations

from typing import Any, Final

from twinloop.championship.hold import KIND as DECISIONS
from twinloop.championship.hold import hold_championship
from twinloop.championship.results import ChampionshipDecision
from twinloop.championship.spec import ChampionshipSpec, ExternalGate
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink
from twinloop.registry.registry import Registry
from twinloop.sandbox.results import PairedKpi

REPLICATES: Final = 6  # round-robin replicates: the loop's default budget on 2 cores
CONFIRMATION: Final = 6  # fresh-seed confirmation replicates
CUSTOMERS: Final = 5_000  # the family's environment shrunk for a quicker tournament
DAYS: Final = 14.0


def qa_gates(outcome: dict[str, Any]) -> list[ExternalGate]:
    """The qa agent's verdict as an external gate, when the candidates stage has one."""
    qa = outcome.get("qa")
    if not isinstance(qa, dict) or not isinstance(qa.get("passed"), bool):
        return []
    detail = "" if qa["passed"] else f"failed scenario {qa.get('failed_scenario')}"
    return [ExternalGate(name="qa", passed=qa["passed"], detail=detail)]


def relative(kpi: PairedKpi) -> tuple[float | None, float | None, float | None]:
    """Effect, lower and upper bound relative to the champion, oriented: positive = better."""
    if kpi.baseline_mean == 0:
        return None, None, None
    sign = 1.0 if kpi.direction == "higher" else -1.0
    base = abs(kpi.baseline_mean)
    bounds = sorted((sign * kpi.lower / base, sign * kpi.upper / base))
    return sign * kpi.difference / base, bounds[0], bounds[1]


def championship(context: StageContext) -> StageResult:
    """Hold (or adopt) the championship of the registered candidate against the champion."""
    before = context.outputs["candidates"].outcome
    candidate, champion = before.get("registered"), before.get("champion")
    if not isinstance(candidate, str) or not isinstance(champion, str):
        raise StageUnavailable("championship", "the candidates stage registered no candidate")
    registry = Registry(context.store)
    family = context.improvement.family
    ident = context.derived_id("decision")
    decision = context.store.find_model(DECISIONS, ident, ChampionshipDecision)
    if decision is None:
        context.check_cancelled()  # a promotion moves the challenger alias
        spec = ChampionshipSpec(
            family=family,
            versions=[candidate],
            replicates=REPLICATES,
            confirmation_replicates=CONFIRMATION,
            seed=context.seed % 2**63,
            customers=CUSTOMERS,
            days=DAYS,
            external_gates=qa_gates(before),
        )
        decision = hold_championship(registry, spec, decision_id=ident, executor=context.executor)
    return _result(decision, ident, champion)


def _result(decision: ChampionshipDecision, ident: str, champion: str) -> StageResult:
    result = decision.result
    report = result.confirmation or next(
        (r for r in result.round_robin if r.name == result.top_candidate), None
    )
    effect, lower, upper = relative(report.primary) if report else (None, None, None)
    outcome: dict[str, Any] = {
        "decision_id": ident,
        "verdict": decision.verdict,
        "winner": decision.winner,
        "champion": champion,
        "reasons": decision.reasons,
        "primary_kpi": result.primary_kpi,
        "predicted_effect": effect,
        "predicted_lower": lower,
        "predicted_upper": upper,
        "predicted_from": None if report is None else report.stage,
        "gates": [] if report is None else [g.model_dump(mode="json") for g in report.gates],
        "challenger_moved": decision.promotion.moved,
    }
    evidence = (EvidenceLink(kind=DECISIONS, id=ident, note="the championship decision"),)
    if decision.winner is None:
        return StageResult(
            summary=f"champion {champion} kept: " + "; ".join(decision.reasons),
            outcome=outcome, evidence=evidence, decision="abandoned",
        )  # fmt: skip
    shown = "n/a" if effect is None else f"{effect:+.1%}"
    return StageResult(
        summary=f"{decision.winner} beats {champion} on fresh seeds "
        f"({result.primary_kpi} {shown} predicted); {decision.winner} is the challenger",
        outcome=outcome,
        evidence=evidence,
    )
