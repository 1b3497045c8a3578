"""The agent contract: ``propose(action, context) -> candidates``, each with its evidence.

An agent is any class with a no-argument constructor and a ``propose`` method; it must be a pure
function of its inputs (the orchestrator retries a crashed agent and expects the same answer).
The context carries the twin, the model to improve, the champion, the KPI, the guardrails and the
sizes of every twin run, so an agent never reads global state.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.sandbox.specs import EnvironmentRef
from twinloop.sim.models import ModelSpec
from twinloop.strategy.models import Action, SandboxEvidence


class ScenarioCheck(FrozenModel):
    """One qa edge-case scenario run on one candidate."""

    scenario: str
    passed: bool
    candidate_accuracy: float | None
    reference_accuracy: float | None
    detail: str


class QaGate(FrozenModel):
    """The qa verdict on a candidate: passed, or the first scenario that failed (a veto)."""

    candidate: str
    passed: bool
    failed_scenario: str | None
    checks: tuple[ScenarioCheck, ...]


class Candidate(FrozenModel):
    """A draft model an agent proposes, with the evidence that made it."""

    name: str
    agent: str
    action_id: str
    model: ModelSpec
    evidence: SandboxEvidence | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    gate: QaGate | None = None


class AgentContext(FrozenModel):
    """Everything an agent may use; sizes are per twin run (units in the names)."""

    environment: EnvironmentRef = "sales"
    model: ModelSpec = Field(description="the model to improve (the loser)")
    champion: ModelSpec | None = None
    kpi: str = "revenue"
    latency_p95_max_ms: float | None = Field(
        default=None, gt=0.0, description="guardrail; None = the champion's p95"
    )
    customers: int = Field(default=2_000, ge=100, le=5_000_000)
    days: float = Field(default=14.0, gt=0.0, le=365.0)
    replicates: int = Field(default=4, ge=2, le=1_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    candidates: tuple[Candidate, ...] = Field(default=(), description="what qa gates")
    params: dict[str, Any] = Field(default_factory=dict, description="agent-specific knobs")

    def guardrail_ms(self) -> float | None:
        """The latency p95 a candidate may not exceed."""
        if self.latency_p95_max_ms is not None:
            return self.latency_p95_max_ms
        return None if self.champion is None else self.champion.latency_p95_ms


@runtime_checkable
class Agent(Protocol):
    """A specialised agent: one action in, candidates with evidence out."""

    def propose(self, action: Action, context: AgentContext) -> list[Candidate]: ...
