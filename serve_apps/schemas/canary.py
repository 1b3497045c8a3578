"""Request and response bodies of the canary routes: predict, canary weight, outcomes, state."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from serve_apps.limits import Limits
from serve_apps.schemas.base import EdgeModel
from twinloop.canary.assignment import CanaryConfig
from twinloop.canary.decision import Verdict
from twinloop.canary.manager import CanaryDecision, CanaryRecord
from twinloop.canary.outcomes import MAX_EVENTS, OutcomeEvent
from twinloop.contract import ID_FIELD_PATTERN, FrozenModel
from twinloop.errors import LimitExceeded

MAX_ROWS_PER_PREDICTION = 1_000


class PredictRequest(EdgeModel):
    """One unit and a batch of its feature rows (the environment's predictor features)."""

    unit_id: str = Field(pattern=ID_FIELD_PATTERN)
    rows: list[list[float]] = Field(min_length=1, max_length=MAX_ROWS_PER_PREDICTION)


class PredictResult(FrozenModel):
    """Scores and which version answered."""

    unit_id: str
    version: str
    role: str
    generation: int
    scores: list[float]


class CanaryUpdate(EdgeModel):
    """``PUT /models/{family}/canary``: the canary version and its share of units."""

    version: str = Field(pattern=r"^v[1-9][0-9]{0,8}$")
    weight: float = Field(ge=0.0, le=1.0, description="Share of units sent to the canary.")
    min_units: int | None = Field(default=None, ge=2, description="Outcomes per side to promote.")
    max_duration_s: float | None = Field(default=None, gt=0.0, description="Then keep champion.")
    alpha: float | None = Field(default=None, gt=0.0, lt=0.5)
    batching: bool | None = Field(
        default=None, description="Score through serve.batch (default: keep the family's; off)."
    )

    def overrides(self) -> dict[str, Any]:
        names = ("min_units", "max_duration_s", "alpha")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class OutcomeEventIn(EdgeModel):
    """One outcome event as sent (``unitId`` or ``unit_id``)."""

    unit_id: str = Field(pattern=ID_FIELD_PATTERN)
    metrics: dict[str, float] = Field(min_length=1, max_length=16)
    timestamp: float = Field(ge=0.0)
    version: str | None = None

    def core(self) -> OutcomeEvent:
        return OutcomeEvent(
            unit_id=self.unit_id,
            metrics=self.metrics,
            timestamp=self.timestamp,
            version=self.version,
        )


class OutcomeBatch(EdgeModel):
    """``POST /models/{family}/outcomes``: a batch of events; a ``batchId`` makes retries safe."""

    batch_id: str | None = Field(default=None, pattern=ID_FIELD_PATTERN)
    events: list[OutcomeEventIn] = Field(min_length=1)

    def check(self, limits: Limits) -> None:
        if len(self.events) > MAX_EVENTS:
            raise LimitExceeded("events", len(self.events), MAX_EVENTS)


class CanaryView(FrozenModel):
    """``GET /models/{family}/canary``: the live state, units per version, intervals, decision."""

    family: str
    status: str
    config: CanaryConfig
    started_at: float
    units: dict[str, int]
    events: int
    unassigned: int
    verdict: Verdict | None
    decision: CanaryDecision | None
    record: CanaryRecord
