"""The stage functions this build wires, from the analysis (phase 1) to the canary's decision.

``analyzed`` reads the experiment's stored analysis and keeps what the later stages and the
learning need (the failure patterns, the key loss, the failure types); ``planned`` is the
strategy generator's plan (``twinloop.loop.planning``); ``candidates`` retrains the family for an
``ml_pipeline`` action (``twinloop.loop.retraining``); ``championship`` holds the championship
(``twinloop.loop.championship_stage``); ``canary`` runs the canary on twin traffic and promotes
or keeps the champion (``twinloop.loop.canary_stage``). A stage whose piece cannot serve this
improvement raises :class:`StageUnavailable` naming what is missing, so the improvement stalls
visibly there instead of pretending to have passed it.
"""

from __future__ import annotations

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.loop.canary_stage import canary
from twinloop.loop.championship_stage import championship
from twinloop.loop.machine import StageContext, StageFn, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink, Stage
from twinloop.loop.planning import planned
from twinloop.loop.retraining import candidates


def analyzed(context: StageContext) -> StageResult:
    """The failure as the analyzer saw it: patterns, key loss, failure types, severity."""
    experiment = context.improvement.spec.experiment_id
    analysis = context.store.find_model(ANALYSES, experiment, FailureAnalysis)
    if analysis is None:
        raise StageUnavailable("analyzed", f"no stored analysis of {experiment!r}")
    patterns = [p.code for p in analysis.patterns.patterns]
    return StageResult(
        summary=f"{analysis.severity} failure: {analysis.decision.summary}",
        outcome={
            "patterns": patterns,
            "key_metric": analysis.decision.key_metric,
            "key_relative_loss": analysis.impact.key_relative_loss,
            "failure_types": sorted({f.type for f in analysis.failure_types}),
            "severity": analysis.severity,
            "loser": analysis.decision.loser,
            "winner": analysis.decision.winner,
        },
        evidence=(EvidenceLink(kind=ANALYSES, id=experiment, note="the failure analysis"),),
    )


def default_stages() -> dict[Stage, StageFn]:
    """The stages of this build, every one wired."""
    return {
        "analyzed": analyzed,
        "planned": planned,
        "candidates": candidates,
        "championship": championship,
        "canary": canary,
    }
