"""The ``candidates`` stage for retraining actions: the retrain pipeline, run once per stage.

When the chosen action belongs to the ``ml_pipeline`` agent, the family's champion is retrained
by ``twinloop.improve.pipeline.retrain`` (search on the twin, confirmation on fresh seeds, the
confirmed candidate registered with its lineage). The run's id is deterministic (request,
analysis, champion), so a driver that died after the run was kept adopts it instead of training
and registering again. No confirmed candidate abandons the improvement. A family that is not in
the registry, a family without a champion and actions of other agents (performance, business)
are reported as unavailable: those pieces are not wired into the loop yet.
"""

from __future__ import annotations

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.errors import InvalidInput, NotFound
from twinloop.improve.pipeline import KIND as RUNS
from twinloop.improve.pipeline import (
    RetrainRequest,
    RetrainRun,
    SearchFn,
    plan,
    retrain,
    run_id,
    search_in_process,
)
from twinloop.improve.search import DataSource
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink
from twinloop.registry.registry import Registry

SAMPLES = 4  # recipes per search: the loop's default budget on 2 cores


def candidates(context: StageContext, search: SearchFn = search_in_process) -> StageResult:
    """Retrain the family's champion for the chosen ml_pipeline action (``search``: the
    in-process search, or Ray Tune's bound with ``functools.partial``)."""
    chosen = context.outputs["planned"].outcome.get("chosen")
    if chosen != "ml_pipeline":
        raise StageUnavailable(
            "candidates", f"the {chosen} agent's candidates are not wired into the loop yet"
        )
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
        run = retrain(registry, context.store, request, analysis, search)
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
