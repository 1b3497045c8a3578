"""The main job's second half: the improvement loop fixes the model that lost, judged by production.

After the story (A/B test, analysis, what-if, validation) the demo hands the failure to the loop
as a user would. Two worlds, kept apart as ``LOOP.md`` asks:

* **production** — the environment the A/B test ran in (the story's calibrated twin, seed
  ``scenario.seed``). The loop never decides in it; it only answers the canary's units with
  outcomes from its ground truth.
* **the loop's twin** — a second calibration of the same KPI history on its own seed (a child of
  the scenario's), stored as an environment; the family is judged in it: retraining data,
  search, championship.

The family ``demo-sales-s<seed>`` gets ``model-v2`` (v1) and ``model-v3`` (v2, the champion: the
version that was shipped and lost the A/B test). The improvement then runs the stages it is given
— in ``twinloop demo``: plan, Ray Tune retraining, championship with confirmation, canary on Ray
Serve — and :func:`loop_step` collects what the report shows: the timeline, the plan, the
championship matrix, the canary's live intervals, and the loop KPIs. Everything is idempotent: a
second run into the same store adopts the family, the versions and the improvement's stages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import numpy as np

from twinloop.analysis.analyzer import KIND as ANALYSES
from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.championship.hold import KIND as DECISIONS
from twinloop.championship.results import ChampionshipDecision
from twinloop.demo.results import LoopStep, PlanRow, TimelineRow
from twinloop.demo.scenario import CHALLENGER, CHAMPION, DemoScenario, calibrated_twin
from twinloop.errors import VersionConflict
from twinloop.improve.reference import LOGISTIC
from twinloop.loop import (
    STAGE_OUTPUTS,
    Improvement,
    ImprovementSpec,
    StageFn,
    StageOutput,
    run_improvement,
    start_improvement,
)
from twinloop.loop.kpis import loop_kpis
from twinloop.loop.model import Stage
from twinloop.registry.models import ModelFamily
from twinloop.registry.registry import Registry
from twinloop.replication.calibration.calibrate import ENVIRONMENTS
from twinloop.replication.replicates import Evaluate
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec
from twinloop.store import Store
from twinloop.strategy import PLAN_KIND, Plan


def family_name(scenario: DemoScenario) -> str:
    """One family per (seed, size), so runs of different scenarios share a store safely."""
    return f"demo-sales-s{scenario.seed}{'-small' if scenario.small else ''}"


def loop_seeds(scenario: DemoScenario) -> tuple[int, int]:
    """(the loop twin's calibration seed, the improvement's seed): children of the scenario's."""
    twin, improvement = np.random.SeedSequence([scenario.seed, 2]).spawn(2)
    return int(twin.generate_state(1)[0]), int(improvement.generate_state(1)[0])


def loop_twin(scenario: DemoScenario, evaluate: Evaluate | None = None) -> BusinessEnvironment:
    """The twin the loop decides in: the KPI history calibrated again on the loop's own seed."""
    seed = loop_seeds(scenario)[0]
    env, _ = calibrated_twin(scenario.model_copy(update={"seed": seed}), evaluate)
    name = f"{family_name(scenario)}-twin"
    return env.model_copy(update={"name": name})


def register_family(
    store: Store,
    scenario: DemoScenario,
    twin: BusinessEnvironment,
    models: tuple[ModelSpec, ModelSpec],
    analysis: FailureAnalysis,
) -> Improvement:
    """Family, versions, champion, the stored analysis and the improvement (each once)."""
    registry = Registry(store)
    name = family_name(scenario)
    if store.find(ENVIRONMENTS, twin.name) is None:
        store.put(ENVIRONMENTS, twin.name, twin.model_dump(mode="json"))
    with contextlib.suppress(VersionConflict):  # registered by an earlier run
        registry.create_family(ModelFamily(
            name=name, environment=twin.name, primary_kpi="revenue", trainer=LOGISTIC,
            description=f"the demo's lead scoring: {CHAMPION} (v1), {CHALLENGER} (v2)",
        ))  # fmt: skip
    if not registry.versions(name):
        for model in models:
            registry.register(name, model, description=model.name, created_by="demo")
    if registry.alias(name, "champion").version is None:
        registry.move_alias(name, "champion", "v2", by="demo", reason=f"{CHALLENGER} shipped")
    experiment = f"{analysis.experiment_id}-{name}"
    if store.find(ANALYSES, experiment) is None:
        stored = analysis.model_copy(update={"experiment_id": experiment})
        store.put(ANALYSES, experiment, stored.model_dump(mode="json"))
    spec = ImprovementSpec(
        experiment_id=experiment, family=name, seed=loop_seeds(scenario)[1], trigger="job"
    )
    return start_improvement(store, spec)[0]


def run_loop(
    store: Store,
    improvement: Improvement,
    stages: Mapping[Stage, StageFn],
    on_stage: Callable[[Improvement], None] | None = None,
) -> Improvement:
    """Drive the improvement to its decision (or the stage that stalls it)."""
    return run_improvement(store, improvement.id, stages, on_stage=on_stage)


def _output(store: Store, improvement: Improvement, stage: Stage) -> StageOutput | None:
    return store.find_model(STAGE_OUTPUTS, f"{improvement.id}.{stage}", StageOutput)


def loop_step(store: Store, improvement: Improvement, twin: BusinessEnvironment) -> LoopStep:
    """What the report shows of the improvement, read back from the Store."""
    timeline = []
    for r in improvement.records:
        out = _output(store, improvement, r.stage)
        timeline.append(TimelineRow(
            stage=r.stage, status=r.status, seconds=r.duration_seconds,
            summary=r.summary or r.reason or "", decision=None if out is None else out.decision,
        ))  # fmt: skip
    outputs = {s: _output(store, improvement, s) for s in ("planned", "candidates", "canary")}
    plan_rows: list[PlanRow] = []
    planned = outputs["planned"]
    if planned is not None:
        plan = store.find_model(PLAN_KIND, str(planned.outcome.get("plan_id")), Plan)
        actions = {a.id: a for a in (plan.actions if plan else [])}
        for row in planned.outcome.get("actions", []):
            action = actions.get(row["id"])
            plan_rows.append(PlanRow(
                id=row["id"], agent=row["kind"], plan_rank=row["plan_rank"],
                title=action.title if action else row["id"],
                value=row["value"], expected=row["expected"],
                chosen=row["id"] == planned.outcome.get("action"),
            ))  # fmt: skip
    champ = _output(store, improvement, "championship")
    decision = None
    if champ is not None:
        ident = str(champ.outcome.get("decision_id"))
        decision = store.find_model(DECISIONS, ident, ChampionshipDecision)
    registry = Registry(store)
    return LoopStep(
        family=improvement.family,
        improvement_id=improvement.id,
        twin_environment=twin.name,
        stage=improvement.stage,
        status=improvement.status,
        reason=improvement.reason,
        timeline=timeline,
        plan=plan_rows,
        candidates=None if outputs["candidates"] is None else outputs["candidates"].outcome,
        championship=decision,
        canary=None if outputs["canary"] is None else outputs["canary"].outcome,
        champion=registry.alias(improvement.family, "champion").version,
        kpis=loop_kpis(store),
    )
