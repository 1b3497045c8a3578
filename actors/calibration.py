"""Calibration and simulation what-if on Ray: their candidate runs go to the sandbox's actor pool.

The core asks for an ``Evaluate`` (a batch of ``SimulationSpec`` in, results out in the same
order). ``RayEvaluator`` is that callable over ``RayExecutor``, the sandbox's fault-tolerant
actor pool, so a calibration's grid of candidates runs in parallel across the cluster. Results
are pure functions of their specs, so the numbers equal those of the serial evaluator.
"""

from __future__ import annotations

from typing import Any

from actors.sandbox_pool import RayExecutor
from twinloop.replication.replicates import executor_evaluate
from twinloop.sim.kpis import SimulationResult
from twinloop.sim.spec import SimulationSpec


class RayEvaluator:
    """Runs each batch of twin specs on an actor pool; use as a context manager to stop it.

    A pool passed in is borrowed (not shut down here); without one a pool of ``num_workers``
    actors (default: one per cluster CPU) is started on first use.
    """

    def __init__(
        self,
        executor: RayExecutor | None = None,
        *,
        num_workers: int | None = None,
        num_cpus: float = 1.0,
        max_in_flight: int = 2,
    ) -> None:
        self._owned = executor is None
        self.executor = executor or RayExecutor(
            num_workers, num_cpus=num_cpus, max_in_flight=max_in_flight, label="calibration"
        )
        self._evaluate = executor_evaluate(self.executor)
        self.runs = 0

    def __call__(self, specs: list[SimulationSpec]) -> list[SimulationResult]:
        results = self._evaluate(specs)
        self.runs += len(results)
        return results

    def shutdown(self) -> None:
        if self._owned:
            self.executor.shutdown()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
