"""The registry capability: model families, versions, aliases and championships over HTTP.

A thin layer over ``twinloop.registry.Registry`` on the deployment's store: bad input raises the
core's exceptions (``NotFound`` → 404, ``InvalidInput`` → 422, ``LimitExceeded`` → 413,
``AliasConflict`` → 409), which cross the handle as themselves. A championship always runs in the
background (``hold_championship``), on a Ray actor pool sized like the sandbox's, with every
check made first so a bad request fails its run at once, having run and stored nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from serve_apps.capabilities.base import CapabilityService
from serve_apps.limits import check_limit
from serve_apps.runs import Progress
from serve_apps.schemas.registry import (
    AliasMove,
    ChampionshipRequest,
    FamilyCreate,
    FamilyDetail,
    VersionCreate,
    VersionList,
)
from twinloop.championship.hold import hold_championship, prepare
from twinloop.championship.results import ChampionshipDecision
from twinloop.registry.models import AliasState, ModelVersion
from twinloop.registry.registry import UNSET, Registry


class RegistryService(CapabilityService):
    """Families, versions and aliases on the store; championships on the actor pool."""

    name = "registry"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = Registry(self.store, settings=self.config.settings)

    def background(self) -> Mapping[str, Callable[[Any, Progress], BaseModel]]:
        return {"hold_championship": self._championship}

    # one method per operation (serve_apps/routes/registry.py) ---------------------------------
    def create_family(self, name: str, request: FamilyCreate) -> FamilyDetail:
        self.registry.create_family(request.to_family(name), replace=request.replace)
        return self.get_family(name)

    def get_family(self, name: str) -> FamilyDetail:
        family = self.registry.family(name)
        aliases = {k: v.version for k, v in self.registry.aliases(name).items()}
        count = len(self.registry.versions(name))
        return FamilyDetail(family=family, aliases=aliases, versions=count)

    def register_version(self, family: str, request: VersionCreate) -> ModelVersion:
        request.check(self.limits)
        return self.registry.register(
            family,
            request.model,
            request.lineage,
            description=request.description,
            created_by=request.created_by,
        )

    def list_versions(self, family: str) -> VersionList:
        return VersionList(family=family, versions=self.registry.versions(family))

    def get_version(self, family: str, version: str) -> ModelVersion:
        return self.registry.version(family, version)

    def move_alias(self, family: str, alias: str, request: AliasMove) -> AliasState:
        if request.rollback:
            return self.registry.rollback_alias(family, alias, by=request.by, reason=request.reason)
        expected: Any = request.expected if "expected" in request.model_fields_set else UNSET
        return self.registry.move_alias(
            family, alias, request.version, expected=expected, by=request.by, reason=request.reason
        )

    def check_championship(self, request: ChampionshipRequest) -> None:
        """Every check of a championship, before a run is created for it."""
        request.check(self.limits)
        env, entrants, _ = prepare(self.registry, request.to_spec())
        days = request.days
        per_universe = (env.initial_customers + env.acquisition.rate_per_day * days) * days
        sims = len(entrants) * request.replicates + 2 * request.confirmation_n
        check_limit("customer_days", per_universe * sims, self.limits.max_customer_days)

    def _championship(self, request: ChampionshipRequest, progress: Progress) -> BaseModel:
        self.check_championship(request)
        spec = request.to_spec()
        planned = spec.replicates * (len(spec.versions) + 1) + 2 * spec.confirmation_n
        with self.executor("http-championship") as executor:
            decision: ChampionshipDecision = hold_championship(
                self.registry,
                spec,
                executor=executor,
                progress=lambda done, _: progress(min(done / planned, 1.0), None),
            )
        return decision
