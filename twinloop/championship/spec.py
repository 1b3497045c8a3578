"""`ChampionshipSpec`: which family, which versions, how many replicates, which seed.

The champion (the family's ``champion`` alias) always takes part; ``versions`` are the
candidates. The round robin and the confirmation run get separate replicate budgets; the
confirmation's seeds are SeedSequence children the round robin never uses. ``customers`` and
``days`` shrink the family's environment for a faster (noisier) tournament.
"""

from __future__ import annotations

import re

from pydantic import Field, ValidationError, field_validator

from twinloop.contract import FrozenModel, invalid_input
from twinloop.errors import InvalidInput
from twinloop.registry.models import FAMILY_PATTERN, VERSION_PATTERN


class ExternalGate(FrozenModel):
    """A gate decided outside the twin (the QA agent's checks, later): it must pass."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    passed: bool
    detail: str = Field(default="", max_length=2000)


class ChampionshipSpec(FrozenModel):
    """A championship request; the result is a pure function of it and the stored models."""

    family: str = Field(pattern=FAMILY_PATTERN)
    versions: list[str] = Field(
        min_length=1, max_length=32, description="Candidate version ids; the champion joins."
    )
    replicates: int = Field(default=10, ge=2, le=10_000, description="Round-robin replicates.")
    confirmation_replicates: int | None = Field(
        default=None, ge=2, le=10_000, description="Confirmation replicates; None = replicates."
    )
    seed: int = Field(default=0, ge=0, lt=2**63)
    customers: int | None = Field(default=None, ge=1, le=50_000_000)
    days: float = Field(default=30.0, gt=0.0, le=3650.0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    screen_prob: float = Field(
        default=0.95,
        gt=0.5,
        lt=1.0,
        description="Round-robin P(better than the champion) the top candidate needs to be "
        "confirmed at all (the confirmation alone decides the gates).",
    )
    external_gates: list[ExternalGate] = Field(default_factory=list, max_length=64)
    promote: bool = Field(default=True, description="Move `challenger` when the gates pass.")

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: list[str]) -> list[str]:
        for v in value:
            if not re.fullmatch(VERSION_PATTERN, v):
                raise ValueError(f"{v!r} is not a version id like 'v3'")
        if len(set(value)) != len(value):
            raise ValueError(f"versions must be unique, got {value}")
        return value

    @property
    def confirmation_n(self) -> int:
        return self.confirmation_replicates or self.replicates


def parse_championship_spec(data: object) -> ChampionshipSpec:
    """Validate parsed JSON into a spec; InvalidInput names the field."""
    if not isinstance(data, dict):
        raise InvalidInput("spec", f"must be a JSON object, got {type(data).__name__}")
    try:
        return ChampionshipSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data) from exc
