"""The registry's nouns: model family, model version (with lineage and evidence), alias state.

A **family** is one decision slot in production ("lead-scoring"): the KPI it is judged on, the
guardrails a new version must respect, the environment (calibrated twin) it is judged in, the
trainer that retrains it, and the gates of its championship. A **version** is immutable once
registered — its model, lineage and creation time never change; only links to evidence (sandbox
runs, championship decisions) are appended. An **alias** (champion, challenger, canary) points at
one version and moves by compare-and-set; each move is one Store write, so the Store's history of
the alias document is who held it when.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from twinloop.registry.frozen import Frozen
from twinloop.sandbox.indicators import REPLICATE_KPIS
from twinloop.sim.models import ModelSpec

FAMILY_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,62}$"  # no '.': it separates family and version ids
VERSION_PATTERN: Final = r"^v[1-9][0-9]{0,8}$"
TRAINER_PATTERN: Final = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
Alias = Literal["champion", "challenger", "canary"]
ALIASES: Final[tuple[Alias, ...]] = ("champion", "challenger", "canary")
# KPIs the twin can split by segment from its per-customer table (sums over a segment's customers).
SEGMENT_KPIS: Final = ("revenue", "conversions", "interactions", "customers", "churned")
SegmentKpi = Literal["revenue", "conversions", "interactions", "customers", "churned"]


def _known_kpi(name: str) -> str:
    if name not in REPLICATE_KPIS:
        raise ValueError(f"unknown KPI {name!r}; choose from {list(REPLICATE_KPIS)}")
    return name


class Gates(Frozen):
    """What a championship's confirmation run must show before a candidate is promoted.

    Probabilities are the paired-replicate posteriors of ``twinloop.sandbox.intervals``
    (flat prior, t likelihood): P(the candidate is better on the primary KPI), and for each
    guardrail and segment P(its harm stays within the tolerance).
    """

    primary_prob: float = Field(default=0.95, gt=0.5, lt=1.0, description="P(better) needed.")
    guardrail_prob: float = Field(
        default=0.9, gt=0.5, lt=1.0, description="P(harm within tolerance) needed per guardrail."
    )
    segment_kpi: SegmentKpi = Field(default="revenue", description="KPI checked per segment.")
    segment_tolerance: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="Largest relative loss allowed in any segment."
    )
    required_external: list[str] = Field(
        default_factory=list, description="External gates (e.g. 'qa') that must report a pass."
    )


class ModelFamily(Frozen):
    """One decision slot: its KPIs, environment, trainer and gates (aliases live beside it)."""

    name: str = Field(pattern=FAMILY_PATTERN)
    description: str = Field(default="", max_length=2000)
    primary_kpi: str = Field(default="revenue", description="The KPI a new version must improve.")
    guardrails: dict[str, float] = Field(
        default_factory=lambda: {"latency_p95_ms": 0.05, "cost": 0.05},
        description="KPI → largest relative harm allowed (0.05 = 5% worse).",
    )
    environment: str = Field(
        default="sales",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Environment id the family is judged in: a preset or a stored environment.",
    )
    trainer: str | None = Field(
        default=None, pattern=TRAINER_PATTERN, description="module:function that retrains it."
    )
    gates: Gates = Field(default_factory=Gates)

    @field_validator("primary_kpi")
    @classmethod
    def _primary(cls, value: str) -> str:
        return _known_kpi(value)

    @field_validator("guardrails")
    @classmethod
    def _guardrails(cls, value: dict[str, float]) -> dict[str, float]:
        for kpi, tolerance in value.items():
            _known_kpi(kpi)
            if not 0.0 <= tolerance < 1.0:
                raise ValueError(f"tolerance of {kpi!r} must be in [0, 1), got {tolerance}")
        return value


class Lineage(Frozen):
    """Where a version came from: enough to retrain it and to trace it back to a failure."""

    parent: str | None = Field(default=None, pattern=VERSION_PATTERN)
    recipe: dict[str, Any] = Field(default_factory=dict, description="Training configuration.")
    training_data: str | None = Field(
        default=None, max_length=256, description="Fingerprint of the training data."
    )
    analysis_id: str | None = Field(default=None, max_length=128)
    improvement_id: str | None = Field(default=None, max_length=128)


class Evidence(Frozen):
    """A link from a version to a document that judged it."""

    kind: Literal["sandbox_run", "championship", "canary", "external"]
    id: str = Field(min_length=1, max_length=256)
    summary: str = Field(default="", max_length=2000)


class ModelVersion(Frozen):
    """An immutable model of a family; ``id`` ('v3') is assigned by the registry.

    The model's ``name`` is the version id, so the twin's results name versions directly.
    """

    family: str = Field(pattern=FAMILY_PATTERN)
    id: str = Field(pattern=VERSION_PATTERN)
    model: ModelSpec
    lineage: Lineage = Field(default_factory=Lineage)
    description: str = Field(default="", max_length=2000)
    created_at: float
    created_by: str = Field(default="user", max_length=128)
    evidence: list[Evidence] = Field(default_factory=list)

    @property
    def number(self) -> int:
        return version_number(self.id)


class AliasState(Frozen):
    """Where an alias points now (None = unset) and the move that put it there."""

    family: str
    alias: Alias
    version: str | None
    previous: str | None = None
    moved_at: float
    moved_by: str = "user"
    reason: str = ""
    revision: int = Field(default=0, description="Moves of this alias so far (Store version).")


def version_number(version_id: str) -> int:
    """'v12' → 12; ValueError for anything else."""
    if not re.fullmatch(VERSION_PATTERN, version_id):
        raise ValueError(f"{version_id!r} is not a version id like 'v3'")
    return int(version_id[1:])
