"""The ``candidates`` stage for the performance and business agents: their best proposal, kept.

For a chosen ``performance`` action (latency or cost: a serving configuration of the champion —
more replicas, batching, a smaller model where the model is a profile) or ``business`` action (the
champion's decision thresholds per segment, weights unchanged) the agent is called in-process on
the family's environment, the champion as the model to improve, and the family's primary KPI —
or, with ``ask`` bound to the orchestrator's ``run_action``, on the agent's actor on the cluster
(deadline, retries on a dead actor, cancel: ``actors/orchestrator.py``).
Its best candidate becomes a new model version of the family: a serving configuration is the
champion's model with the new operational figures (latency, cost per call) — the registry keeps
models, not deployments, so the configuration travels as the version's model and the chosen
option as its recipe; a threshold policy is the champion's predictor with the new thresholds.
The lineage names the champion as parent, the agent, the action, the analysis and the
improvement.

Idempotent: the agent's result is kept under an id derived from the improvement
(:meth:`StageContext.derived_id`), so a re-run adopts it instead of asking the agent again, and
the version carries that id in its recipe, so a driver that died after registering finds its
version instead of registering a second one. No candidate (nothing beats the champion in the twin)
abandons the improvement. The outcome has the keys the championship stage reads (``registered``,
``champion``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from twinloop.agents.protocol import AgentContext, Candidate
from twinloop.agents.registry import agent_path, import_agent
from twinloop.agents.results import ACTION_RESULTS, ActionResult
from twinloop.errors import InvalidInput, NotFound, TwinloopError
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink
from twinloop.registry.models import Evidence, Lineage, ModelVersion
from twinloop.registry.registry import Registry
from twinloop.store import Store
from twinloop.strategy import PLAN_KIND
from twinloop.strategy.models import Action, Plan

AGENTS: Final = ("performance", "business")  # the kinds this module wires
CUSTOMERS: Final = 5_000  # per twin run of an agent: the championship's size
DAYS: Final = 14.0
REPLICATES: Final = 6

Ask = Callable[[str, Action, AgentContext], ActionResult]
"""How an agent is asked: (plan id, action, context) → its result. Default in-process;
``actors.orchestrator.Orchestrator.run_action`` asks the agent's actor on the cluster."""


def chosen_action(context: StageContext) -> Action:
    """The plan's action the ``planned`` stage chose (by id, else the first of its agent)."""
    planned = context.outputs["planned"].outcome
    plan = context.store.find_model(PLAN_KIND, str(planned.get("plan_id")), Plan)
    if plan is None:
        raise StageUnavailable("candidates", f"no stored plan {planned.get('plan_id')!r}")
    wanted, kind = planned.get("action"), planned.get("chosen")
    found = next((a for a in plan.actions if a.id == wanted), None)
    found = found or next((a for a in plan.actions if a.agent == kind), None)
    if found is None:
        raise StageUnavailable("candidates", f"the plan has no {kind} action")
    return found


def agent_context(registry: Registry, family: str, champion: str, seed: int) -> AgentContext:
    """What the agent may use: the family's environment, its champion and its primary KPI."""
    fam = registry.family(family)
    model = registry.runnable(registry.version(family, champion))
    return AgentContext(
        environment=registry.environment(fam),
        model=model,
        champion=model,
        kpi=fam.primary_kpi,
        customers=CUSTOMERS,
        days=DAYS,
        replicates=REPLICATES,
        seed=seed % 2**63,
    )


def proposals(
    store: Store,
    ident: str,
    plan_id: str,
    action: Action,
    context: AgentContext,
    ask: Ask | None = None,
) -> ActionResult:
    """The agent's result, asked once: a stored result under ``ident`` is adopted."""
    found = store.find_model(ACTION_RESULTS, ident, ActionResult)
    if found is not None:
        return found
    result = (ask or ask_in_process)(plan_id, action, context)
    store.put_model(ACTION_RESULTS, ident, result)
    return result


def ask_in_process(plan_id: str, action: Action, context: AgentContext) -> ActionResult:
    """The agent imported and called here; its errors become a ``failed`` result."""
    try:
        agent = import_agent(agent_path(action.agent))
        result = ActionResult(
            plan_id=plan_id, action_id=action.id, agent=action.agent, status="completed",
            candidates=tuple(agent.propose(action, context)), attempts=1,
        )  # fmt: skip
    except (TwinloopError, ValueError) as exc:
        result = ActionResult(
            plan_id=plan_id, action_id=action.id, agent=action.agent, status="failed",
            attempts=1, error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
    return result


def best_candidate(result: ActionResult) -> Candidate | None:
    """The candidate with the largest measured gain (agents return their best first)."""
    scored = [c for c in result.candidates if c.evidence is not None]
    if not scored:
        return result.candidates[0] if result.candidates else None
    return max(scored, key=lambda c: c.evidence.difference.estimate)  # type: ignore[union-attr]


def registered_version(
    registry: Registry, family: str, improvement: str, ident: str
) -> ModelVersion | None:
    """The version an earlier run of this stage registered for this candidate, if any."""
    for version in registry.versions(family):
        lineage = version.lineage
        if lineage.improvement_id == improvement and lineage.recipe.get("candidate_id") == ident:
            return version
    return None


def register_candidate(
    context: StageContext, candidate: Candidate, champion: str, ident: str
) -> ModelVersion:
    """Register the candidate once, with lineage to the champion, analysis and improvement."""
    registry = Registry(context.store)
    family = context.improvement.family
    found = registered_version(registry, family, context.improvement.id, ident)
    if found is not None:
        return found
    context.check_cancelled()
    recipe: dict[str, Any] = {
        "agent": candidate.agent,
        "action": candidate.action_id,
        "candidate_id": ident,
        "proposal": candidate.name,
        **_recipe_details(candidate),
    }
    lineage = Lineage(
        parent=champion,
        recipe=recipe,
        analysis_id=context.improvement.spec.experiment_id,
        improvement_id=context.improvement.id,
    )
    version = registry.register(
        family, candidate.model, lineage,
        description=f"{candidate.agent} agent: {candidate.name}", created_by=candidate.agent,
    )  # fmt: skip
    ev = candidate.evidence
    if ev is not None:
        summary = (
            f"twin: {ev.kpi} {ev.difference.estimate:+.4g} "
            f"[{ev.difference.lower:.4g}, {ev.difference.upper:.4g}] over {ev.replicates} "
            f"replicates, P(better) {ev.prob_better:.3f}"
        )
        registry.add_evidence(
            family, version.id, Evidence(kind="sandbox_run", id=ident, summary=summary)
        )
    return version


def _recipe_details(candidate: Candidate) -> dict[str, Any]:
    """What the agent changed, as plain JSON: the serving option or the thresholds."""
    details = candidate.details
    if candidate.agent == "performance":
        option = details.get("option")
        return {
            "serving_option": option,
            "latency_p95_limit_ms": details.get("latency_p95_limit_ms"),
        }
    return {
        "threshold": details.get("threshold"),
        "segment_thresholds": details.get("segment_thresholds"),
    }


def agent_candidates(context: StageContext, ask: Ask | None = None) -> StageResult:
    """Ask the chosen performance or business agent (``ask``: default in-process; the
    orchestrator's ``run_action`` on the agent's actor); register its best candidate."""
    action = chosen_action(context)
    if action.agent not in AGENTS:
        raise StageUnavailable("candidates", f"the {action.agent} agent is not wired here")
    registry = Registry(context.store)
    family = context.improvement.family
    try:
        champion = registry.alias(family, "champion").version
        if champion is None:
            raise InvalidInput("family", f"family {family!r} has no champion to improve")
        agent_ctx = agent_context(registry, family, champion, context.seed)
    except (NotFound, InvalidInput) as exc:
        raise StageUnavailable(
            "candidates", f"the {action.agent} agent cannot start: {exc}"
        ) from exc
    ident = context.derived_id(action.agent, action.id)
    plan_id = str(context.outputs["planned"].outcome.get("plan_id"))
    result = proposals(context.store, ident, plan_id, action, agent_ctx, ask)
    evidence = (EvidenceLink(kind=ACTION_RESULTS, id=ident, note=f"the {action.agent} agent"),)
    outcome: dict[str, Any] = {
        "agent": action.agent, "action": action.id, "result_id": ident, "champion": champion,
        "status": result.status, "error": result.error, "registered": None,
        "candidates": len(result.candidates),
    }  # fmt: skip
    best = best_candidate(result)
    if best is None:
        why = result.error or "no candidate beat the champion in the twin"
        return StageResult(
            summary=f"{action.agent} agent: {why}", outcome=outcome, evidence=evidence,
            decision="abandoned",
        )  # fmt: skip
    version = register_candidate(context, best, champion, ident)
    ev = best.evidence
    outcome.update(
        registered=version.id,
        proposal=best.name,
        twin_gain=None if ev is None else ev.difference.estimate,
        twin_prob_better=None if ev is None else ev.prob_better,
        recipe=version.lineage.recipe,
    )
    return StageResult(
        summary=f"{version.id} registered: {action.agent} agent's {best.name}",
        outcome=outcome,
        evidence=evidence,
    )
