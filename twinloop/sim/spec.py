"""`SimulationSpec`: one run of the twin — environment, model(s), allocation, length and seed."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from twinloop.contract import HOURS_PER_DAY, FrozenModel, invalid_input
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.models import MODEL_TYPE_ERRORS, ModelProfile, ModelSpec

AllocationPolicy = Literal["fixed", "thompson"]


def _default_models() -> list[ModelSpec]:
    return [ModelProfile()]


class SimulationSpec(FrozenModel):
    """Everything that determines a run; with the seed, the output is a pure function of it."""

    environment: BusinessEnvironment
    models: list[ModelSpec] = Field(default_factory=_default_models, min_length=1, max_length=16)
    allocation: list[float] | None = Field(
        default=None, description="Share of customers per model; None = equal split."
    )
    allocation_policy: AllocationPolicy = "fixed"
    days: float = Field(default=30.0, gt=0.0, le=3650.0)
    seed: int = Field(default=0, ge=0, lt=2**63)
    record_units: bool = Field(
        default=False, description="Also return one row per customer (for A/B analysis)."
    )

    @model_validator(mode="after")
    def _check(self) -> SimulationSpec:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: names must be unique, got {names}")
        if self.allocation is not None:
            if len(self.allocation) != len(self.models):
                raise ValueError(
                    f"allocation: {len(self.allocation)} weights for {len(self.models)} models"
                )
            if any(w < 0 for w in self.allocation):
                raise ValueError("allocation: weights must be >= 0")
            total = sum(self.allocation)
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"allocation: weights must sum to 1, got {total:.6g}")
        segment_names = {s.name for s in self.environment.segments}
        for model in self.models:
            for seg in getattr(model, "segment_overrides", {}):
                if seg not in segment_names:
                    raise ValueError(
                        f"models.{model.name}.segment_overrides: unknown segment {seg!r}"
                    )
        return self

    @property
    def weights(self) -> list[float]:
        if self.allocation is not None:
            return list(self.allocation)
        return [1.0 / len(self.models)] * len(self.models)

    @property
    def steps_per_day(self) -> int:
        return HOURS_PER_DAY if self.environment.step == "hour" else 1

    @property
    def n_steps(self) -> int:
        return max(1, round(self.days * self.steps_per_day))


def parse_spec(data: object) -> SimulationSpec:
    """Validate a dict into a SimulationSpec, raising InvalidInput that names the field."""
    try:
        return SimulationSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, data, messages=MODEL_TYPE_ERRORS) from exc
