"""What running one plan action gave: status, candidates, attempts, error — kept in the Store."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from twinloop.agents.protocol import Candidate
from twinloop.contract import FrozenModel

ACTION_RESULTS = "action_results"
Status = Literal["completed", "failed", "timed_out", "cancelled"]


class ActionResult(FrozenModel):
    """The outcome of one action: ``completed`` with candidates, or why not."""

    plan_id: str
    action_id: str
    agent: str
    status: Status
    candidates: tuple[Candidate, ...] = ()
    attempts: int = Field(ge=0, description="dispatches, retries included")
    error: str | None = None

    @property
    def store_id(self) -> str:
        """Document id in the Store: ``<plan id>.<action id>`` (both store-safe)."""
        return f"{self.plan_id}.{self.action_id}"[:128]
