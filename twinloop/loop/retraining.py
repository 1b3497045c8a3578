"""The ``candidates`` stage for retraining actions: the retrain pipeline, run once per stage.

When the chosen action belongs to the ``ml_pipeline`` agent, the family's champion is retrained
by ``twinloop.improve.pipeline.retrain`` (search on the twin, confirmation on fresh seeds, the
confirmed candidate registered with its lineage). The run's id is deterministic (request,
analysis, champion), so a driver that died after the run was kept adopts it instead of training
and registering again. The registered candidate then goes through the qa agent's edge-case
scenarios (``twinloop.loop.quality``); its verdict is the outcome's ``qa``, which the
championship reads as its external gate ``qa`` (a failed scenario vetoes the promotion). The
past winners of this failure's patterns (``twinloop.loop.learning.warm_start``) are the search's
first recipes. No confirmed candidate abandons the improvement. A family that is not in the
registry and a family without a champion are reported as unavailable. Actions of the
performance and business agents go to ``twinloop.loop.agent_candidates``.
"""

from __future__ import annotations

import contextlib

from pydantic import ValidationError

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
)
from twinloop.improve.recipe import Recipe
from twinloop.improve.search import DataSource, run_search
from twinloop.loop.agent_candidates import AGENTS, agent_candidates
from twinloop.loop.machine import StageContext, StageResult, StageUnavailable
from twinloop.loop.model import EvidenceLink
from twinloop.loop.quality import qa_summary, qa_verdict
from twinloop.registry.registry import Registry

SAMPLES = 4  # recipes per search: the loop's default budget on 2 cores
WARM_MAX = 2  # past winners tried first; the other samples keep exploring the space


def searcher(context: StageContext) -> SearchFn:
    """The in-process successive halving, its replicates on the context's executor."""
    executor = context.executor
    return lambda spec, data: run_search(spec, data=data, executor=executor)


def warm_recipes(configs: object) -> list[Recipe]:
    """The planned stage's past winners as recipes; one that no longer validates is skipped."""
    found = []
    for config in configs if isinstance(configs, list) else []:
        with contextlib.suppress(ValidationError):
            found.append(Recipe.model_validate(config))
    return found[:WARM_MAX]


def candidates(context: StageContext, search: SearchFn | None = None) -> StageResult:
    """Retrain the family's champion for the chosen ml_pipeline action (``search``: Ray Tune's
    bound with ``functools.partial``; default the in-process search on the context's executor)."""
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
        warm_start=warm_recipes(context.outputs["planned"].outcome.get("warm_start")),
    )
    try:
        _, champion = plan(registry, request, analysis)
    except (NotFound, InvalidInput) as exc:
        raise StageUnavailable("candidates", f"retraining cannot start: {exc}") from exc
    ident = run_id(request, analysis.experiment_id, champion)
    run = context.store.find_model(RUNS, ident, RetrainRun)
    if run is None:
        run = retrain(registry, context.store, request, analysis, search or searcher(context))
    evidence = (EvidenceLink(kind=RUNS, id=run.id, note="the retraining run"),)
    conf = run.result.confirmation
    outcome = {
        "run_id": run.id,
        "warm_start": [r.name for r in run.result.spec.warm_recipes()],
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
    outcome["qa"] = qa = qa_verdict(registry, request.family, run.registered, champion, seed)
    return StageResult(
        summary=f"{run.registered} registered ({len(run.result.trials)} trials, confirmed; "
        f"{qa_summary(qa)})",
        outcome=outcome,
        evidence=evidence,
    )
