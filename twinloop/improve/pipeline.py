"""Retrain a family after a failure: plan the search, run it, keep the run, register the winner.

The family (registry) gives the environment it is judged in, its champion, its trainer, its primary
KPI and the probability its gates demand; the failure analysis gives the search space. The search
itself is passed in (the in-process successive halving, or Ray Tune from ``tuning/``), so this
module stays pure. A request's ``warm_start`` recipes (past winners of the failure's pattern, from
the loop's learning) become the search's first trials. The run is kept in the Store (kind
``retrain_runs``) with every trial; a confirmed candidate becomes a new model version whose lineage
names its parent (the champion), the recipe and trainer, the training data's fingerprint and the
analysis, with the run as its evidence. Nothing is registered unless the confirmation agrees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

from pydantic import Field

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.improve.data import TrainingData
from twinloop.improve.recipe import Recipe
from twinloop.improve.reference import LOGISTIC
from twinloop.improve.repair import QaRepair, repair_space
from twinloop.improve.search import DataSource, RetrainResult, RetrainSpec, run_search
from twinloop.improve.space import space_from_analysis
from twinloop.registry.models import Evidence, Lineage
from twinloop.registry.registry import Registry
from twinloop.sim.environment import BusinessEnvironment
from twinloop.store import Store

KIND: Final = "retrain_runs"
SearchFn = Callable[[RetrainSpec, TrainingData], RetrainResult]


class RetrainRequest(FrozenModel):
    """What a user asks for: which family, which failure, how many recipes, which data."""

    family: str = Field(min_length=1, max_length=64)
    samples: int = Field(default=8, ge=1, le=1_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    data: DataSource = Field(default_factory=DataSource)
    register_version: bool = Field(default=True, description="Register a confirmed candidate.")
    warm_start: list[Recipe] = Field(
        default_factory=list,
        max_length=16,
        description="Past winners' recipes, tried first (those this environment cannot apply "
        "are dropped).",
    )
    qa_repair: QaRepair | None = Field(
        default=None,
        description="Search the repair of this failed qa scenario too (twinloop.improve.repair).",
    )


class RetrainRun(FrozenModel):
    """A finished retraining run as kept in the Store."""

    id: str
    family: str
    champion: str = Field(description="Version id of the champion it was judged against.")
    analysis_id: str
    result: RetrainResult
    registered: str | None = Field(description="Version id of the registered candidate.")
    lineage: Lineage | None


def run_id(request: RetrainRequest, analysis_id: str, champion: str) -> str:
    """Deterministic id: the same request on the same failure and champion is the same run."""
    # Fields left at their default are out of the key, so runs kept before a field existed
    # keep their ids.
    unset = {"warm_start"} if not request.warm_start else set()
    if request.qa_repair is None:
        unset.add("qa_repair")
    fields = request.model_dump_json(exclude=unset or None)
    key = f"{fields}|{analysis_id}|{champion}"
    return f"{request.family}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def plan(
    registry: Registry, request: RetrainRequest, analysis: FailureAnalysis
) -> tuple[RetrainSpec, str]:
    """The search spec for the family's champion, and the champion's version id."""
    family = registry.family(request.family)
    env = registry.environment(family)
    champion = registry.alias(family.name, "champion").version
    if champion is None:
        raise InvalidInput("family", f"family {family.name!r} has no champion to retrain against")
    model = registry.runnable(registry.version(family.name, champion))
    space = space_from_analysis(analysis, env)
    if request.qa_repair is not None:
        space = repair_space(space, request.qa_repair)
    spec = RetrainSpec(
        family=family.name,
        environment=env,
        champion=model,
        trainer=family.trainer or LOGISTIC,
        data=request.data,
        space=space,
        samples=request.samples,
        kpi=family.primary_kpi,
        confirm_probability=family.gates.primary_prob,
        seed=request.seed,
        warm_start=[r for r in request.warm_start if applies(r, env)],
    )
    return spec, champion


def applies(recipe: Recipe, env: BusinessEnvironment) -> bool:
    """Whether a recipe (a past winner, maybe of another family) names only this environment's
    segments and features: a warm start is a hint, never a reason to fail a search."""
    segments = {s.name for s in env.segments}
    features = recipe.features or []
    return set(recipe.segment_weights) <= segments and all(
        0 <= i < env.n_features for i in features
    )


def search_in_process(spec: RetrainSpec, data: TrainingData) -> RetrainResult:
    return run_search(spec, data=data)


def retrain(
    registry: Registry,
    store: Store,
    request: RetrainRequest,
    analysis: FailureAnalysis,
    search: SearchFn = search_in_process,
) -> RetrainRun:
    """Plan, search, keep the run, and register a confirmed candidate with its lineage."""
    spec, champion = plan(registry, request, analysis)
    data = spec.data.load(spec.environment)
    result = search(spec, data)
    ident = run_id(request, analysis.experiment_id, champion)
    registered, lineage = None, None
    if result.candidate is not None and result.best is not None and request.register_version:
        lineage = Lineage(
            parent=champion,
            recipe={"trainer": spec.trainer, **result.best.recipe.model_dump(mode="json")},
            training_data=data.fingerprint or None,
            analysis_id=analysis.experiment_id,
        )
        version = registry.register(
            spec.family,
            result.candidate,
            lineage,
            description=f"retrained after {analysis.experiment_id}",
            created_by="retrain",
        )
        conf = result.confirmation
        summary = (
            ""
            if conf is None
            else (
                f"confirmed on fresh seeds: {spec.kpi} {conf.score.gain:+.4g} "
                f"[{conf.score.lower:.4g}, {conf.score.upper:.4g}], "
                f"P(better) {conf.score.prob_better:.3f}"
            )
        )
        registry.add_evidence(
            spec.family, version.id, Evidence(kind="sandbox_run", id=ident, summary=summary)
        )
        registered = version.id
    run = RetrainRun(
        id=ident,
        family=spec.family,
        champion=champion,
        analysis_id=analysis.experiment_id,
        result=result,
        registered=registered,
        lineage=lineage,
    )
    store.put_model(KIND, ident, run)
    return run
