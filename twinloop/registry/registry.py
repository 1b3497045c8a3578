"""`Registry`: families, versions and aliases on any Store (SQLite or Redis alike).

Store layout (kind → id): ``model_family`` → name; ``model_version`` → ``<family>.<vN>``;
``model_alias`` → ``<family>.<alias>``; ``model_counter`` → name (the last version number).
Registering takes the next number by an atomic counter update, then creates the version with
``expected_version=0``; everything that can fail (the family, the artifact, the model's fit to
the environment) is checked first, so a refused registration writes nothing, and a crash between
the two writes only skips a number. Aliases move by compare-and-set on their own document: a
move that read revision *r* lands only if the alias is still at *r*, so of two concurrent
promotions one wins and the other gets :class:`AliasConflict`; the Store's history of the alias
document is the alias's history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final

from twinloop.config import Settings
from twinloop.errors import InvalidInput, NotFound, VersionConflict
from twinloop.registry.artifacts import ArtifactStore
from twinloop.registry.models import (
    ALIASES,
    FAMILY_PATTERN,
    Alias,
    AliasState,
    Evidence,
    Lineage,
    ModelFamily,
    ModelVersion,
    version_number,
)
from twinloop.replication.calibration.calibrate import ENVIRONMENTS
from twinloop.sandbox.plan import check_models, settings_or_default
from twinloop.sim.domains import DOMAINS
from twinloop.sim.domains import environment as preset_environment
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import ModelSpec, OnnxModel
from twinloop.store import Store

FAMILIES: Final = "model_family"
VERSIONS: Final = "model_version"
ALIAS_KIND: Final = "model_alias"
COUNTERS: Final = "model_counter"


class AliasConflict(VersionConflict):
    """An alias moved by someone else since the caller looked; nothing was moved."""


class _Unset:
    """Sentinel: no expectation about where the alias points."""


UNSET: Final = _Unset()


class Registry:
    """The model registry over a Store; artifacts go to ``artifacts`` (from the settings)."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore | None = None,
        *,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if artifacts is None:
            cfg = settings_or_default(settings)
            artifacts = ArtifactStore(store, cfg.data_dir, max_bytes=cfg.max_artifact_bytes)
        self.store = store
        self.artifacts = artifacts
        self.clock = clock

    # families -----------------------------------------------------------------------------------
    def create_family(self, family: ModelFamily, *, replace: bool = False) -> ModelFamily:
        """Create a family (VersionConflict when it exists, unless ``replace``)."""
        self.environment(family)  # NotFound for an unknown environment, before writing
        try:
            self.store.put_model(
                FAMILIES, family.name, family, expected_version=None if replace else 0
            )
        except VersionConflict as exc:
            raise VersionConflict(
                f"model family {family.name!r} already exists; pass replace to overwrite"
            ) from exc
        return family

    def family(self, name: str) -> ModelFamily:
        """The family; NotFound('model family', name) when unknown."""
        found = self.store.find(FAMILIES, _family_id(name))
        if found is None:
            raise NotFound("model family", name)
        return found.to_model(ModelFamily)

    def families(self) -> list[ModelFamily]:
        return sorted(self.store.query_models(FAMILIES, ModelFamily), key=lambda f: f.name)

    def environment(self, family: ModelFamily) -> BusinessEnvironment:
        """The environment the family is judged in: a preset or a stored (calibrated) one."""
        if family.environment in DOMAINS:
            return preset_environment(family.environment)
        found = self.store.find(ENVIRONMENTS, family.environment)
        if found is None:
            raise NotFound("environment", family.environment)
        return found.to_model(BusinessEnvironment)

    # versions -----------------------------------------------------------------------------------
    def register(
        self,
        family: str,
        model: ModelSpec,
        lineage: Lineage | None = None,
        *,
        description: str = "",
        created_by: str = "user",
    ) -> ModelVersion:
        """Register a new immutable version; its id ('v3') and name are assigned here.

        An ``OnnxModel`` with ``content`` stores its artifact first; one with only the hash must
        name an artifact already stored. The model must run in the family's environment (an
        importable predictor, an ONNX graph of the right input width): InvalidInput names the
        field and nothing is written.
        """
        fam = self.family(family)
        if lineage is not None and lineage.parent is not None:
            self.version(family, lineage.parent)  # NotFound for an unknown parent
        runnable = self._check_artifact(model)
        check_models([("model", runnable)], self.environment(fam))
        if isinstance(runnable, OnnxModel) and isinstance(model, OnnxModel) and model.content:
            self.artifacts.put(model.content, field="model.content")  # checked: cannot fail now
        stored = (
            model.model_copy(update={"content": None}) if isinstance(model, OnnxModel) else model
        )
        number = self._next_number(fam.name)
        version = ModelVersion(
            family=fam.name,
            id=f"v{number}",
            model=stored.model_copy(update={"name": f"v{number}"}),
            lineage=lineage or Lineage(),
            description=description,
            created_at=self.clock(),
            created_by=created_by,
        )
        self.store.put_model(
            VERSIONS, _version_key(fam.name, version.id), version, expected_version=0
        )
        return version

    def _check_artifact(self, model: ModelSpec) -> ModelSpec:
        """The model ready to check: an upload within the limit, or a hash already stored."""
        if not isinstance(model, OnnxModel):
            return model
        if model.content is not None:
            self.artifacts.check(model.content, field="model.content")
            return model
        if not self.artifacts.exists(model.sha256):
            raise InvalidInput("model.sha256", f"no artifact {model.sha256}; upload the file first")
        return self.artifacts.resolve(model)

    def _next_number(self, family: str) -> int:
        doc = self.store.update(COUNTERS, family, lambda d: {"last": (d or {}).get("last", 0) + 1})
        return int(doc.doc["last"])

    def version(self, family: str, version_id: str) -> ModelVersion:
        """One version; NotFound names it."""
        try:
            version_number(version_id)
        except ValueError as exc:
            raise NotFound("model version", f"{family}/{version_id}") from exc
        found = self.store.find(VERSIONS, _version_key(_family_id(family), version_id))
        if found is None:
            self.family(family)  # an unknown family is reported as such
            raise NotFound("model version", f"{family}/{version_id}")
        return found.to_model(ModelVersion)

    def versions(self, family: str) -> list[ModelVersion]:
        """Every version of a family, oldest first."""
        self.family(family)
        found = self.store.query_models(VERSIONS, ModelVersion, where={"family": family})
        return sorted(found, key=lambda v: v.number)

    def runnable(self, version: ModelVersion) -> ModelSpec:
        """The version's model with its artifact bytes attached, ready for any executor."""
        return self.artifacts.resolve(version.model)

    def add_evidence(self, family: str, version_id: str, evidence: Evidence) -> ModelVersion:
        """Append a link to evidence; the model, lineage and creation time never change."""
        self.version(family, version_id)

        def append(current: ModelVersion | None) -> ModelVersion:
            assert current is not None  # checked above; versions are never deleted
            if evidence in current.evidence:
                return current
            return current.model_copy(update={"evidence": [*current.evidence, evidence]})

        key = _version_key(family, version_id)
        return self.store.update_model(VERSIONS, key, ModelVersion, append)

    # aliases ------------------------------------------------------------------------------------
    def alias(self, family: str, alias: str) -> AliasState:
        """Where the alias points now (``version`` None when it was never set)."""
        self.family(family)
        name = _alias_name(alias)
        found = self.store.find(ALIAS_KIND, f"{family}.{name}")
        if found is None:
            return AliasState(family=family, alias=name, version=None, moved_at=0.0)
        return found.to_model(AliasState).model_copy(update={"revision": found.version})

    def aliases(self, family: str) -> dict[str, AliasState]:
        return {name: self.alias(family, name) for name in ALIASES}

    def move_alias(
        self,
        family: str,
        alias: str,
        version_id: str | None,
        *,
        expected: str | _Unset | None = UNSET,
        by: str = "user",
        reason: str = "",
    ) -> AliasState:
        """Point ``alias`` at ``version_id`` (None unsets it) by compare-and-set.

        With ``expected`` (a version id, or None for 'unset') the move lands only if the alias
        still points there. Either way it lands only if nobody moved the alias between this
        call's read and its write. AliasConflict otherwise; nothing is written.
        """
        current = self.alias(family, alias)
        if version_id is not None:
            self.version(family, version_id)
        if not isinstance(expected, _Unset) and current.version != expected:
            raise AliasConflict(
                f"alias {alias!r} of {family!r} points at {current.version or 'nothing'} "
                f"(moved by {current.moved_by!r}), not {expected or 'nothing'} as expected; "
                "nothing was moved"
            )
        state = AliasState(
            family=family,
            alias=current.alias,
            version=version_id,
            previous=current.version,
            moved_at=self.clock(),
            moved_by=by,
            reason=reason,
        )
        doc = state.model_dump(mode="json", exclude={"revision"})
        try:
            stored = self.store.put(
                ALIAS_KIND, f"{family}.{current.alias}", doc, expected_version=current.revision
            )
        except VersionConflict as exc:
            raise AliasConflict(
                f"alias {alias!r} of {family!r} was moved by someone else while this move was "
                "in flight; nothing was moved — read it again and retry"
            ) from exc
        return state.model_copy(update={"revision": stored.version})

    def rollback_alias(
        self, family: str, alias: str, *, by: str = "user", reason: str = ""
    ) -> AliasState:
        """Move the alias back to where it pointed before its last move (one call)."""
        current = self.alias(family, alias)
        if current.revision == 0:
            raise InvalidInput("alias", f"alias {alias!r} of {family!r} was never moved")
        return self.move_alias(
            family,
            alias,
            current.previous,
            expected=current.version,
            by=by,
            reason=reason or f"rollback from {current.version}",
        )

    def alias_history(self, family: str, alias: str) -> list[AliasState]:
        """Every move of the alias, oldest first (as many as the Store keeps)."""
        self.family(family)
        key = f"{family}.{_alias_name(alias)}"
        if self.store.find(ALIAS_KIND, key) is None:
            return []
        return [
            s.to_model(AliasState).model_copy(update={"revision": s.version})
            for s in self.store.history(ALIAS_KIND, key)
        ]

    def describe(self, family: str) -> dict[str, Any]:
        """The family with its aliases and version count (what ``models show`` prints)."""
        fam = self.family(family)
        return {
            **fam.model_dump(mode="json"),
            "aliases": {k: v.version for k, v in self.aliases(family).items()},
            "versions": len(self.versions(family)),
        }


def _family_id(name: str) -> str:
    """A name that cannot be a family is simply not found (no Store id error leaks out)."""
    if not isinstance(name, str) or not re.fullmatch(FAMILY_PATTERN, name):
        raise NotFound("model family", str(name))
    return name


def _version_key(family: str, version_id: str) -> str:
    return f"{family}.{version_id}"


def _alias_name(alias: str) -> Alias:
    for name in ALIASES:
        if alias == name:
            return name
    raise InvalidInput("alias", f"unknown alias {alias!r}; choose from {list(ALIASES)}")
