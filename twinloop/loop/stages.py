"""The stage functions this build wires: the analysis (phase 1) and honest gaps for the rest.

``analyzed`` reads the experiment's stored analysis and keeps what the later stages and the
learning need (the failure patterns, the key loss, the failure types); ``planned`` is the
strategy generator's plan (``twinloop.loop.planning``); ``candidates`` retrains the family for an
``ml_pipeline`` action (``twinloop.loop.retraining``). The other stages need phase-2 pieces
(the championship, the canary);
until a piece is wired here, its stage raises :class:`StageUnavailable` naming what is missing,
so an improvement stalls visibly at that stage instead of pretending to have passed it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.loop.machine import StageContext, StageFn, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink, Stage
from twinloop.loop.planning import planned
from twinloop.loop.retraining import candidates

#: stage → (the piece it needs, the module that would provide it)
PIECES: Mapping[Stage, tuple[str, str]] = {
    "championship": ("the championship and the model registry", "twinloop.championship"),
    "canary": ("the canary on Ray Serve", "twinloop.canary"),
}


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


def missing(stage: Stage) -> StageFn:
    """A stage function that reports which piece the stage still lacks."""
    piece, module = PIECES[stage]

    def unavailable(context: StageContext) -> StageResult:
        present = importlib.util.find_spec(module.rsplit(".", 1)[0]) is not None and (
            importlib.util.find_spec(module) is not None
        )
        where = (
            "is in this build but not wired into the loop" if present else "is not in this build"
        )
        raise StageUnavailable(stage, f"{piece} ({module}) {where}")

    return unavailable


def default_stages() -> dict[Stage, StageFn]:
    """The stages of this build: the real analysis and a named gap for each missing piece."""
    stages: dict[Stage, StageFn] = {
        "analyzed": analyzed,
        "planned": planned,
        "candidates": candidates,
    }
    for stage in PIECES:
        stages[stage] = missing(stage)
    return stages
