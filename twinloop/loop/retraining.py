"""The ``candidates`` stage for retraining actions: the retrain pipeline, run once per stage.

When the chosen action belongs to the ``ml_pipeline`` agent, the family's champion is retrained
by ``twinloop.improve.pipeline.retrain`` (search on the twin, confirmation on fresh seeds, the
confirmed candidate registered with its lineage). The run's id is deterministic (request,
analysis, champion), so a driver that died after the run was kept adopts it instead of training
and registering again. The registered candidate then goes through the qa agent's edge-case
scenarios (``twinloop.loop.quality``); its verdict is the outcome's ``qa``, which the
championship reads as its external gate ``qa`` (a failed scenario vetoes the promotion). When
qa vetoes the winner on a scenario a recipe change answers (``twinloop.improve.repair``: cold
start), the stage retrains once more with that repair searched and the vetoed winner, repaired,
tried first; the outcome is then the second run's, with the vetoed one under ``vetoed`` (both
runs are evidence, both ids deterministic, so a resumed driver adopts either). The
past winners of this failure's patterns (``twinloop.loop.learning.warm_start``) are the search's
first recipes. No confirmed candidate abandons the improvement. A family that is not in the
registry and a family without a champion are reported as unavailable. Actions of the
performance and business agents go to ``twinloop.loop.agent_candidates``.
"""

from __future__ import annotations

import contextlib
from typing import Any

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
from twinloop.improve.repair import repair_of, repaired
from twinloop.improve.search import DataSource, run_search
from twinloop.loop.agent_candidates import AGENTS, Ask, agent_candidates
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


def candidates(
    context: StageContext, search: SearchFn | None = None, ask: Ask | None = None
) -> StageResult:
    """Retrain the family's champion for the chosen ml_pipeline action (``search``: Ray Tune's
    bound with ``functools.partial``; default the in-process search on the context's executor),
    or ask the chosen performance or business agent (``ask``: default in-process)."""
    chosen = context.outputs["planned"].outcome.get("chosen")
    if chosen in AGENTS:  # performance, business: twinloop.loop.agent_candidates
        return agent_candidates(context, ask)
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
    first = attempt(context, registry, request, analysis, champion, search)
    repair = repair_of((first.get("qa") or {}).get("failed_scenario"))
    if repair is None or first["winner_config"] is None:
        return finish(first)
    best = Recipe.model_validate(first["winner_config"])
    # qa vetoed a confirmed winner on a scenario a recipe change answers: one more round with
    # the repair searched and the vetoed winner, repaired, tried first (its own run id).
    again = request.model_copy(
        update={"qa_repair": repair, "warm_start": [repaired(best, repair), *request.warm_start]}
    )
    second = attempt(context, registry, again, analysis, champion, search)
    second["vetoed"] = {k: first[k] for k in ("run_id", "registered", "qa", "winner_config")}
    second["evidence"] = [*first["evidence"], *second["evidence"]]
    return finish(second, repair)


def attempt(
    context: StageContext,
    registry: Registry,
    request: RetrainRequest,
    analysis: FailureAnalysis,
    champion: str,
    search: SearchFn | None,
) -> dict[str, Any]:
    """One retraining run (adopted when kept) and the qa verdict on its registered candidate."""
    ident = run_id(request, analysis.experiment_id, champion)
    run = context.store.find_model(RUNS, ident, RetrainRun)
    if run is None:
        run = retrain(registry, context.store, request, analysis, search or searcher(context))
    conf, best = run.result.confirmation, run.result.best
    outcome: dict[str, Any] = {
        "run_id": run.id,
        "warm_start": [r.name for r in run.result.spec.warm_recipes()],
        "champion": champion,
        "registered": run.registered,
        "trials": len(run.result.trials),
        "confirmed_gain": None if conf is None else conf.score.gain,
        "winner_config": None if best is None else best.recipe.model_dump(mode="json"),
        "evidence": [EvidenceLink(kind=RUNS, id=run.id, note="the retraining run")],
    }
    if run.registered is not None:
        outcome["qa"] = qa_verdict(registry, request.family, run.registered, champion, context.seed)
    return outcome


def finish(outcome: dict[str, Any], repair: str | None = None) -> StageResult:
    """The stage's result: abandoned without a confirmed candidate, else the registered one."""
    evidence = tuple(outcome.pop("evidence"))
    after = "" if repair is None else f" after a {repair} repair of a qa veto"
    registered, qa = outcome["registered"], outcome.get("qa")
    if registered is None or qa is None:
        return StageResult(
            summary=f"no candidate confirmed on fresh seeds{after}",
            outcome=outcome,
            evidence=evidence,
            decision="abandoned",
        )
    return StageResult(
        summary=f"{registered} registered ({outcome['trials']} trials, confirmed; "
        f"{qa_summary(qa)}){after}",
        outcome=outcome,
        evidence=evidence,
    )
