"""The strategy generator: a failure analysis (plus sandbox evidence) in, a ranked ``Plan`` out.

One action per hypothesis of the analysis, plus the decision-policy action (a threshold moved
for the business KPI needs no retraining). Each action gets its owning agent (from what its
validation plan changes), its uplift (the sandbox head-to-head where one ran, else the what-if
estimate of the analyzer: the cause's share of the measured loss), its cost (:mod:`.costs`) and
ROI = money per month / one-off cost with the uplift's interval. Actions are ranked by ROI, then
by uplift, then by id, so the order is deterministic. An analysis without a significant loss
gives an empty plan that says why. ``plan_analysis`` loads, measures, builds and stores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.analysis.hypotheses import Hypothesis
from twinloop.config import Settings
from twinloop.errors import NotFound
from twinloop.sandbox.executor import Executor
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.store import Store
from twinloop.strategy.actions import action_for, policy_action
from twinloop.strategy.evidence import ValidationSize, hypothesis_specs, run_evidence
from twinloop.strategy.models import Action, Plan, PlanSettings, SandboxEvidence

PLAN_KIND = "plans"
POLICY_KEY = "policy:threshold"


def slug(text: str) -> str:
    """A store-safe id from a root cause id (``segment:segment=enterprise`` → ``segment-…``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:120] or "action"


def loser_money_per_month(analysis: FailureAnalysis) -> float | None:
    """The loser's money per month: loss per month × (1 − r) / r, r the key relative loss."""
    per_month, r = analysis.impact.per_month, analysis.impact.key_relative_loss
    if per_month is None or per_month <= 0 or r is None or not 0 < r < 1:
        return None
    return per_month * (1.0 - r) / r


def empty_reason(analysis: FailureAnalysis) -> str | None:
    """Why no action is worth planning (None when the loss is significant and explained)."""
    status = analysis.decision.status
    if status != "significant":
        return (
            f"the loss of {analysis.decision.loser} is not significant (decision: {status}); "
            "nothing to improve until a test shows a real loss"
        )
    if not analysis.hypotheses:
        return "the analysis found no root cause with a testable hypothesis"
    return None


def build_plan(
    analysis: FailureAnalysis,
    evidence: Mapping[str, SandboxEvidence] | None = None,
    settings: PlanSettings | None = None,
    policy_spec: HeadToHeadSpec | None = None,
) -> Plan:
    """Rank the analysis' actions by ROI; ``evidence`` is keyed by root cause id (or policy)."""
    config = settings or PlanSettings()
    found = dict(evidence or {})
    reason = empty_reason(analysis)
    scale = loser_money_per_month(analysis)
    actions: list[Action] = []
    if reason is None:
        spt = _seconds_per_trial(found, config)
        for h in analysis.hypotheses:
            actions.append(
                action_for(h, analysis, found.get(h.root_cause), scale, spt, config, slug)
            )
        actions.append(
            policy_action(analysis, found.get(POLICY_KEY), policy_spec, scale, spt, config)
        )
    ranked = sorted(actions, key=_rank_key)[: config.max_actions]
    return Plan(
        id=analysis.experiment_id,
        analysis_id=analysis.experiment_id,
        winner=analysis.decision.winner,
        loser=analysis.decision.loser,
        decision_status=analysis.decision.status,
        currency=analysis.impact.currency,
        loser_money_per_month=scale,
        actions=tuple(a.model_copy(update={"rank": i + 1}) for i, a in enumerate(ranked)),
        reason=reason,
        settings=config,
        seed=config.seed,
    )


def _seconds_per_trial(evidence: Mapping[str, SandboxEvidence], settings: PlanSettings) -> float:
    """Mean measured CPU seconds of one head-to-head of this run (assumed when none ran)."""
    measured = [e.replicate_seconds for e in evidence.values() if e.replicate_seconds > 0]
    return sum(measured) / len(measured) if measured else settings.assumed_seconds_per_trial


def _rank_key(action: Action) -> tuple[bool, float, float, str]:
    roi = action.roi.estimate if action.roi is not None else float("-inf")
    gain = action.uplift.relative.estimate if action.uplift.relative is not None else -1e300
    return (action.roi is None, -roi, -gain, action.id)


def load_analysis(store: Store, analysis_id: str) -> FailureAnalysis:
    """The stored analysis; NotFound (→ 404) for an unknown id."""
    found = store.find_model(ANALYSES, analysis_id, FailureAnalysis)
    if found is None:
        raise NotFound("analysis", analysis_id)
    return found


def plan_analysis(
    store: Store,
    analysis_id: str,
    *,
    size: ValidationSize | None = None,
    settings: PlanSettings | None = None,
    executor: Executor | None = None,
    run_settings: Settings | None = None,
    extra: Mapping[str, HeadToHeadSpec] | None = None,
) -> Plan:
    """Load the analysis, validate its top hypotheses in the sandbox, build and store the plan.

    ``extra`` adds head-to-heads keyed like the evidence (``policy:threshold`` for the decision
    policy). Nothing is stored when the analysis is unknown or a spec is bad.
    """
    analysis = load_analysis(store, analysis_id)
    specs: dict[str, HeadToHeadSpec] = {}
    if empty_reason(analysis) is None:
        specs = hypothesis_specs(analysis, size or ValidationSize())
        specs.update(extra or {})
    evidence = run_evidence(specs, executor, run_settings)
    plan = build_plan(analysis, evidence, settings, (extra or {}).get(POLICY_KEY))
    store.put_model(PLAN_KIND, plan.id, plan)
    return plan


def hypothesis_of(analysis: FailureAnalysis, root_cause: str) -> Hypothesis | None:
    """The hypothesis that answers a root cause (None when there is none)."""
    return next((h for h in analysis.hypotheses if h.root_cause == root_cause), None)
