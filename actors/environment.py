"""`EnvironmentHost`: one business universe (a ``Simulation``) living in one Ray actor.

The host is a plain class so it is testable without Ray; ``EnvironmentActor`` is the
``ray.remote`` wrapper (Ray's "type hints" pattern). State lives only in the actor; a restarted
actor has lost it, so callers re-run a universe from its seed rather than resume it.
"""

from __future__ import annotations

from typing import Any

import ray

from twinloop.sim.kpis import SimulationResult, StepKpis
from twinloop.sim.lifecycle import Simulation
from twinloop.sim.spec import SimulationSpec


class EnvironmentHost:
    """Owns one Simulation: reset, step, run to the end, snapshot of the latest KPIs."""

    def __init__(self, spec: SimulationSpec) -> None:
        self._sim = Simulation(spec)
        self._latest: list[StepKpis] = []

    def reset(self, seed: int | None = None) -> None:
        self._sim.reset(seed=seed)
        self._latest = []

    def step(self) -> list[StepKpis]:
        self._latest = self._sim.step()
        return self._latest

    def run(self) -> SimulationResult:
        """Run the remaining steps and return the whole result."""
        return self._sim.run(on_step=self._remember)

    def _remember(self, kpis: list[StepKpis]) -> None:
        self._latest = kpis

    def snapshot(self) -> dict[str, Any]:
        """Where the universe is: step, day, seed, and the last step's KPIs per variant."""
        return {
            "step": self._sim.t,
            "day": self._sim.t * self._sim.dt,
            "seed": self._sim.seed,
            "node_id": ray.get_runtime_context().get_node_id() if ray.is_initialized() else None,
            "kpis": [k.model_dump() for k in self._latest],
        }


EnvironmentActor = ray.remote(EnvironmentHost)
