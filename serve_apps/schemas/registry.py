"""Bodies of the model registry routes: families, versions, aliases, championships.

The family name comes from the path (``/models/{family}``); a request body carries the rest.
Responses are the core's models (``ModelVersion``, ``AliasState``, ``ChampionshipDecision``).
An ONNX version arrives either as JSON naming an already stored artifact by hash, or as a
``multipart/form-data`` upload (``file`` = the ONNX bytes, ``metadata`` = this module's
``VersionCreate`` JSON without ``model``, plus optional operational fields).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serve_apps.limits import Limits, check_limit
from serve_apps.schemas.base import EDGE_CONFIG, EdgeModel
from serve_apps.schemas.sandbox import check_predictors
from twinloop.championship.spec import ChampionshipSpec
from twinloop.contract import invalid_input
from twinloop.registry.models import (
    FAMILY_PATTERN,
    VERSION_PATTERN,
    AliasState,
    Gates,
    Lineage,
    ModelFamily,
    ModelVersion,
)
from twinloop.sim.models import ModelSpec


class FamilyCreate(EdgeModel):
    """``POST /models/{family}``: a model family (its name is the path)."""

    description: str = Field(default="", max_length=2000)
    primary_kpi: str = "revenue"
    guardrails: dict[str, float] = Field(
        default_factory=lambda: {"latency_p95_ms": 0.05, "cost": 0.05},
        description="KPI → largest relative harm allowed (0.05 = 5% worse).",
    )
    environment: str = Field(default="sales", description="A preset or a stored environment id.")
    trainer: str | None = Field(default=None, description="module:function that retrains it.")
    gates: Gates = Field(default_factory=Gates)
    replace: bool = Field(default=False, description="Overwrite an existing family.")

    def to_family(self, name: str) -> ModelFamily:
        """The core family; InvalidInput names a bad field (it crosses a handle, pydantic's
        ValidationError does not pickle)."""
        data = {"name": name, **self.model_dump(exclude={"replace"})}
        try:
            return ModelFamily.model_validate(data)
        except ValidationError as exc:
            raise invalid_input(exc, data) from exc


class FamilyDetail(BaseModel):
    """``GET /models/{family}``: the family, where its aliases point, how many versions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: ModelFamily
    aliases: dict[str, str | None]
    versions: int


class VersionCreate(EdgeModel):
    """``POST /models/{family}/versions`` as JSON: the model (an ONNX one names a stored hash)."""

    model: ModelSpec
    lineage: Lineage = Field(default_factory=Lineage)
    description: str = Field(default="", max_length=2000)
    created_by: str = Field(default="http", max_length=128)

    def check(self, limits: Limits) -> None:
        check_predictors(self.model, limits.allowed_predictor_modules, "model")


class VersionList(BaseModel):
    """``GET /models/{family}/versions``: every version, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str
    versions: list[ModelVersion]


class AliasMove(EdgeModel):
    """``PUT /models/{family}/aliases/{alias}``: point it at a version, or roll it back.

    ``expected`` (a version id, or null for 'unset') makes the move conditional: 409 when the
    alias points elsewhere now. Without it, the move still fails with 409 if another writer
    moved the alias while this one was in flight.
    """

    version: str | None = Field(default=None, pattern=VERSION_PATTERN)
    expected: str | None = Field(default=None, pattern=VERSION_PATTERN)
    rollback: bool = Field(default=False, description="Move back to the previous version.")
    by: str = Field(default="http", max_length=128)
    reason: str = Field(default="", max_length=2000)


class ChampionshipBody(EdgeModel):
    """``POST /models/{family}/championship``: the spec without the family (it is the path)."""

    versions: list[str] = Field(min_length=1, max_length=32)
    replicates: int = Field(default=10, ge=2)
    confirmation_replicates: int | None = Field(default=None, ge=2)
    seed: int = Field(default=0, ge=0, lt=2**63)
    customers: int | None = Field(default=None, ge=1)
    days: float = Field(default=30.0, gt=0.0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    screen_prob: float = Field(default=0.95, gt=0.5, lt=1.0)
    external_gates: list[dict[str, Any]] = Field(default_factory=list, max_length=64)
    promote: bool = True


class ChampionshipRequest(ChampionshipSpec, EdgeModel):
    """The stored body of a championship run: the core spec, family included."""

    model_config = EDGE_CONFIG

    def check(self, limits: Limits) -> None:
        check_limit("replicates", self.replicates, limits.max_replicates)
        check_limit("confirmation_replicates", self.confirmation_n, limits.max_replicates)
        check_limit("days", self.days, limits.max_days)
        if self.customers is not None:
            check_limit("customers", self.customers, limits.max_customers)
        work = (len(self.versions) + 1) * self.replicates + 2 * self.confirmation_n
        check_limit("replicates", work, limits.max_replicates)

    def to_spec(self) -> ChampionshipSpec:
        return ChampionshipSpec.model_validate(self.model_dump())


PATTERNS = {"family": FAMILY_PATTERN, "version": VERSION_PATTERN}
__all__ = [
    "PATTERNS",
    "AliasMove",
    "AliasState",
    "ChampionshipBody",
    "ChampionshipRequest",
    "FamilyCreate",
    "FamilyDetail",
    "VersionCreate",
    "VersionList",
]
