"""The ``candidates`` stage for retraining actions: the retrain pipeline, run once per stage.

When the chosen action belongs to the ``ml_pipeline`` agent, the family's champion is retrained
by ``twinloop.improve.pipeline.retrain`` (search on the twin, confirmation on fresh seeds, the
confirmed candidate registered with its lineage). The run's id is deterministic (request,
analysis, champion), so a driver that died after the run was kept adopts it instead of training
and registering again. No confirmed candidate abandons the improvement. A family that is not in
the registry and a family without a champion are reported as unavailable. Actions of the
performance and business agents go to ``twinloop.loop.agent_candidates``.
"""

from __future__ import annotations

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.errors import InvalidInput, NotFound
from twinloop.improve.pipeline import KIND as RUNS
from twinloop.improve.pipeline import RetrainRequest, RetrainRun, plan, retrain, run_id
from twinloop.improve.search import DataSource
from twinloop.loop.agent_candidates import AGENTS, agent_candidates
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink
from twinloop.registry.registry import Registry

SAMPLES = 4  # recipes per search: the loop's default budget on 2 cores


def candidates(context: StageContext) -> StageResult:
    """Retrain the family's champion for the chosen ml_pipeline action."""
    chosen = context.outputs["planned"].outcome.get("chosen")
    if chosen in AGENTS:  # performance, business: twinloop.loop.agent_candidates
        return agent_candidates(context)
    if chosen != "ml_pipeline":
        raise StageUnavailable("candidates", f"the {chosen} agent's candidates are not wired")
    experiment = context.improvement.spec.experiment_id
    analysis = context.store.get_model(ANALYSES, experiment, FailureAnalysis)
    registry = Registry(context.store)
    seed = context.seed
    request = RetrainRequest(
        family=context.improvement.family,
        samples=SAMPLES,
        seed=seed,
        data=DataSource(seed=seed),
    )
    try:
        _, champion = plan(registry, request, analysis)
    except (NotFound, InvalidInput) as exc:
        raise StageUnavailable("candidates", f"retraining cannot start: {exc}") from exc
    ident = run_id(request, analysis.experiment_id, champion)
    run = context.store.find_model(RUNS, ident, RetrainRun)
    if run is None:
        run = retrain(registry, context.store, request, analysis)
    evidence = (EvidenceLink(kind=RUNS, id=run.id, note="the retraining run"),)
    conf = run.result.confirmation
    outcome = {
        "run_id": run.id,
        "champion": champion,
        "registered": run.registered,
        "trials": len(run.result.trials),
        "confirmed_gain": None if conf is None else conf.score.gain,
        "winner_config": None
        if run.result.best is None
        else run.result.best.recipe.model_dump(mode="json"),
    }
    if run.registered is None:
        return StageResult(
            summary="no candidate confirmed on fresh seeds", outcome=outcome,
            evidence=evidence, decision="abandoned",
        )  # fmt: skip
    return StageResult(
        summary=f"{run.registered} registered ({len(run.result.trials)} trials, confirmed)",
        outcome=outcome,
        evidence=evidence,
    )
