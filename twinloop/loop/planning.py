"""The ``planned`` stage: the strategy generator's plan, re-ranked by what worked before.

The plan comes from ``twinloop.strategy.build_plan`` on the stored analysis with the what-if
estimates (the loop's own sandbox validation of each hypothesis is the agents' job, wired when the
orchestrator runs inside the loop). The cross-model learning is its prior: each action's value (ROI,
else the relative uplift) is multiplied by the posterior probability that its kind (the owning
agent) succeeds against this failure's patterns, and the best becomes the chosen action; the past
winners' configurations of that kind for these patterns (``warm_start``) are kept in the output,
fixed from then on, for the candidates stage to start its search at (so a resumed run searches from
the same points even if the learning moved meanwhile). An empty plan (no significant, explained
loss) abandons the improvement with the plan's reason. The plan is stored create-only, so a re-run
writes no second version.
"""

from __future__ import annotations

import contextlib

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.errors import VersionConflict
from twinloop.loop.learning import failure_patterns, success_probability, warm_start
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink
from twinloop.strategy import PLAN_KIND, Action, PlanSettings, build_plan


def action_value(action: Action) -> float:
    """What the plan expects of an action: ROI, else the relative uplift, else nothing."""
    if action.roi is not None:
        return action.roi.estimate
    if action.uplift.relative is not None:
        return action.uplift.relative.estimate
    return 0.0


def planned(context: StageContext) -> StageResult:
    """Plan the analysed failure; choose the action with the best expected value."""
    experiment = context.improvement.spec.experiment_id
    analysis = context.store.find_model(ANALYSES, experiment, FailureAnalysis)
    if analysis is None:
        raise StageUnavailable("planned", f"no stored analysis of {experiment!r}")
    plan = build_plan(analysis, None, PlanSettings())
    with contextlib.suppress(VersionConflict):  # planned by an earlier run of this stage
        context.store.put(PLAN_KIND, plan.id, plan.model_dump(mode="json"), expected_version=0)
    evidence = (EvidenceLink(kind=PLAN_KIND, id=plan.id, note="the strategy plan"),)
    if not plan.actions:
        return StageResult(
            summary=plan.reason or "empty plan", evidence=evidence, decision="abandoned"
        )
    patterns = failure_patterns(context.outputs["analyzed"])
    ranked = sorted(
        (
            (action_value(a) * success_probability(context.store, patterns, a.agent), a)
            for a in plan.actions
        ),
        key=lambda item: (-item[0], item[1].rank),
    )
    rows = [
        {"id": a.id, "kind": a.agent, "plan_rank": a.rank, "value": action_value(a), "expected": v}
        for v, a in ranked
    ]
    best = ranked[0][1]
    outcome = {
        "plan_id": plan.id,
        "actions": rows,
        "chosen": best.agent,
        "action": best.id,
        "warm_start": warm_start(context.store, patterns, best.agent),
    }
    return StageResult(
        summary=f"{len(rows)} actions; chosen {best.id} ({best.agent})",
        outcome=outcome,
        evidence=evidence,
    )
