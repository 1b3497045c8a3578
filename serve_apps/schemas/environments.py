"""Bodies of the environment catalogue routes: create, summary, detail, list."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from serve_apps.limits import Limits, check_limit
from serve_apps.schemas.base import EdgeModel
from twinloop.errors import InvalidInput
from twinloop.sim.domains import DOMAINS
from twinloop.sim.environment import BusinessEnvironment

Domain = Literal["sales", "marketing", "customer_success", "analytics"]
if set(DOMAINS) != set(get_args(Domain)):  # pragma: no cover - a new preset needs a line here
    raise ImportError(f"serve_apps.schemas.Domain is out of step with {DOMAINS}")


# --- environments -----------------------------------------------------------------------------


class EnvironmentCreate(EdgeModel):
    """``POST /environments``: store an environment, given in full or as a preset with changes."""

    id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Default: generated. Preset names (sales, …) are reserved.",
    )
    environment: BusinessEnvironment | None = None
    preset: Domain | None = Field(default=None, description="Start from a domain preset.")
    changes: dict[str, Any] = Field(
        default_factory=dict, description="Top-level fields replaced in the preset."
    )
    replace: bool = Field(default=False, description="Overwrite an existing id (keeps history).")

    def check(self, limits: Limits) -> None:
        if (self.environment is None) == (self.preset is None):
            raise InvalidInput("preset", "give exactly one of `environment` or `preset`")
        if self.changes and self.preset is None:
            raise InvalidInput("changes", "`changes` apply to a `preset` only")
        if self.environment is not None:
            check_limit(
                "environment.initial_customers",
                self.environment.initial_customers,
                limits.max_customers,
            )
        customers = self.changes.get("initial_customers")
        if isinstance(customers, int | float) and not isinstance(customers, bool):
            check_limit("changes.initial_customers", customers, limits.max_customers)


EnvironmentSource = Literal["preset", "stored", "calibrated"]


class EnvironmentSummary(BaseModel):
    """One environment in the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    source: EnvironmentSource
    name: str
    domain: str
    decision: str
    primary_kpis: list[str] = Field(default_factory=list)
    initial_customers: int
    version: int | None = None
    updated_at: float | None = None


class EnvironmentDetail(EnvironmentSummary):
    """An environment with its full definition."""

    environment: BusinessEnvironment


class EnvironmentList(BaseModel):
    """Presets first, then stored environments, newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environments: list[EnvironmentSummary]
