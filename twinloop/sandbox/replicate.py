"""One replicate as a task: a universe's spec and seed in, its KPIs (and A/B tests) out.

A task is plain, picklable data and :func:`run_replicate` is a pure function of it (apart from
the wall time it reports), which is what lets any executor — a loop here, an actor pool on Ray
— run replicates anywhere, in any order, and re-run a lost one with the same result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from twinloop.sandbox.abstats import UnitTest, analyse_units
from twinloop.sandbox.indicators import replicate_values
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec


@dataclass(frozen=True, slots=True)
class UnitAnalysis:
    """What to test on the per-customer table of an A/B replicate."""

    control: str
    kpis: tuple[str, ...]
    alpha: float


@dataclass(frozen=True, slots=True)
class ReplicateTask:
    """Replicate ``replicate`` of cell ``cell`` (a scenario × model, or an arm), on ``seed``."""

    cell: int
    replicate: int
    seed: int
    spec: SimulationSpec
    analysis: UnitAnalysis | None = None


@dataclass(frozen=True, slots=True)
class ReplicateOutcome:
    """A finished replicate: KPI values per variant, the unit tests of an A/B replicate.

    ``wall_seconds`` is how long it took — the one field that is not a function of the task,
    so no result's deterministic content uses it.
    """

    cell: int
    replicate: int
    seed: int
    values: dict[str, dict[str, float]]
    customer_days: float
    wall_seconds: float
    tests: tuple[UnitTest, ...] = field(default=())


def run_replicate(task: ReplicateTask) -> ReplicateOutcome:
    """Simulate the task's universe from its seed and reduce it to KPIs (and tests)."""
    start = time.perf_counter()
    units = task.analysis is not None
    spec = task.spec.model_copy(update={"seed": task.seed, "record_units": units})
    result = simulate(spec)
    span_days = spec.n_steps / spec.steps_per_day
    values = {v.variant: replicate_values(v, span_days) for v in result.summary.variants}
    tests: tuple[UnitTest, ...] = ()
    if task.analysis is not None:
        assert result.units is not None
        names = [m.name for m in spec.models]
        treatments = [n for n in names if n != task.analysis.control]
        tests = analyse_units(
            result.units, task.analysis.control, treatments, task.analysis.kpis, task.analysis.alpha
        )
    return ReplicateOutcome(
        cell=task.cell,
        replicate=task.replicate,
        seed=task.seed,
        values=values,
        customer_days=result.summary.customer_days,
        wall_seconds=time.perf_counter() - start,
        tests=tests,
    )
