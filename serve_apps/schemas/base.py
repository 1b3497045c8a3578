"""What every request and response body of the HTTP API shares: the request base, 202, health."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from serve_apps.limits import Limits

# A request body's config: frozen, unknown fields refused, camelCase or snake_case top-level keys.
EDGE_CONFIG = ConfigDict(
    frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
)


class EdgeModel(BaseModel):
    """Base of request bodies (``EDGE_CONFIG``). A request that extends a core spec lists the
    spec after this base and sets ``model_config = EDGE_CONFIG`` (the spec's own config would
    otherwise win): the spec's fields and validators are reused, camelCase added at the edge."""

    model_config = EDGE_CONFIG

    def check(self, limits: Limits) -> None:
        """Raise LimitExceeded when the request is bigger than ``limits`` allow."""

    def bounded(self) -> bool:
        """True when the work is small by construction (no table to read or fit), so the
        ingress may answer it itself instead of calling its capability deployment."""
        return False


# --- runs and health --------------------------------------------------------------------------


class RunAccepted(BaseModel):
    """The 202 answer: where to poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    operation: str
    status: Literal["queued"] = "queued"
    location: str
    reason: str = Field(default="", description="Why it runs in the background.")


class Health(BaseModel):
    """``GET /healthz``: the ingress answers; ``deep`` also asks every capability deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["ok", "degraded"]
    version: str
    capabilities: dict[str, str] = Field(description="Deployment → 'ok', 'mounted' or an error.")
    routes: list[str]
