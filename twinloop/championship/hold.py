"""Holding a championship for a registry family: resolve, run, store the decision, promote.

The decision is written to the Store (kind ``championship``) *before* the alias moves, with the
promotion marked requested; the move is a compare-and-set from the ``challenger`` the run
started with, so a concurrent championship that promoted first makes this one's move a recorded
conflict instead of a silent overwrite. Links to the decision are appended to the evidence of
every entrant.
"""

from __future__ import annotations

import uuid
from typing import Final

from twinloop.championship.results import ChampionshipDecision, ChampionshipResult, Promotion
from twinloop.championship.spec import ChampionshipSpec
from twinloop.championship.tournament import run_tournament
from twinloop.errors import InvalidInput, VersionConflict
from twinloop.registry.models import Evidence
from twinloop.registry.registry import Registry
from twinloop.sandbox.executor import Executor, ProgressCallback
from twinloop.sandbox.plan import check_models, resolve_environment
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec

KIND: Final = "championship"


def prepare(
    registry: Registry, spec: ChampionshipSpec
) -> tuple[BusinessEnvironment, list[ModelSpec], str | None]:
    """Environment, entrants (champion first, artifacts attached) and the current challenger.

    Every check happens here, before anything runs: unknown family or version (NotFound), no
    champion, a candidate that is the champion, a model that cannot run in the environment.
    """
    family = registry.family(spec.family)
    champion = registry.alias(spec.family, "champion").version
    if champion is None:
        raise InvalidInput("family", f"{spec.family!r} has no champion: set the alias first")
    if champion in spec.versions:
        raise InvalidInput("versions", f"{champion} is the champion; list only candidates")
    versions = [registry.version(spec.family, v) for v in [champion, *spec.versions]]
    env = resolve_environment(registry.environment(family), customers=spec.customers, step=None)
    entrants = [registry.runnable(v) for v in versions]
    check_models([(f"versions.{v.id}", m) for v, m in zip(versions, entrants, strict=True)], env)
    return env, entrants, registry.alias(spec.family, "challenger").version


def hold_championship(
    registry: Registry,
    spec: ChampionshipSpec,
    *,
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
    decision_id: str | None = None,
) -> ChampionshipDecision:
    """Run the championship, store its decision and, when it promotes, move ``challenger``."""
    env, entrants, challenger_before = prepare(registry, spec)
    family = registry.family(spec.family)
    result = run_tournament(spec, family, env, entrants, executor=executor, progress=progress)
    ident = decision_id or f"champ-{uuid.uuid4().hex[:12]}"
    decision = _decision(registry, ident, spec, result)
    registry.store.put_model(KIND, ident, decision, expected_version=0)
    if decision.promotion.requested:
        decision = _promote(registry, decision, challenger_before)
        registry.store.put_model(KIND, ident, decision, expected_version=1)
    for name in result.entrants:
        summary = f"{result.verdict}; winner {decision.winner or 'none'}"
        registry.add_evidence(spec.family, name, Evidence(kind=KIND, id=ident, summary=summary))
    return decision


def _decision(
    registry: Registry, ident: str, spec: ChampionshipSpec, result: ChampionshipResult
) -> ChampionshipDecision:
    winner = result.top_candidate if result.verdict == "promote" else None
    return ChampionshipDecision(
        id=ident,
        family=spec.family,
        created_at=registry.clock(),
        verdict=result.verdict,
        winner=winner,
        reasons=result.reasons,
        promotion=Promotion(requested=winner is not None and spec.promote, version=winner),
        fingerprint=result.fingerprint(),
        result=result,
    )


def _promote(
    registry: Registry, decision: ChampionshipDecision, before: str | None
) -> ChampionshipDecision:
    try:
        registry.move_alias(
            decision.family,
            "challenger",
            decision.winner,
            expected=before,
            by=f"championship:{decision.id}",
            reason="; ".join(decision.reasons),
        )
        promotion = decision.promotion.model_copy(update={"moved": True, "previous": before})
    except VersionConflict as exc:
        promotion = decision.promotion.model_copy(update={"error": str(exc), "previous": before})
    return decision.model_copy(update={"promotion": promotion})


def get_decision(registry: Registry, ident: str) -> ChampionshipDecision:
    """A stored decision; NotFound names it."""
    return registry.store.get_model(KIND, ident, ChampionshipDecision)
