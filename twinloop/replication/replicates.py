"""Seeded replicate runs of the twin behind one injectable evaluator, and their KPI arrays.

Calibration and the simulation what-if both run batches of ``SimulationSpec`` whose results
are pure functions of the spec. They hand the batch to an ``Evaluate`` callable: in-process
by default, a Ray pool in ``actors.calibration`` — the core never knows which, and both give
identical numbers because a result depends only on its spec (seed included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from twinloop.contract import SECONDS_PER_DAY
from twinloop.sim.kpis import KPI_NAMES, SimulationResult
from twinloop.sim.lifecycle import simulate
from twinloop.sim.spec import SimulationSpec

Evaluate = Callable[[list[SimulationSpec]], list[SimulationResult]]
FloatArray = NDArray[np.float64]


def serial_evaluate(specs: list[SimulationSpec]) -> list[SimulationResult]:
    """Run every spec in this process, in order."""
    return [simulate(spec) for spec in specs]


@dataclass(frozen=True)
class TwinRun:
    """A finished run as an executor hands it back; ``customer_days`` feeds the pool's metrics."""

    result: SimulationResult
    customer_days: float


def run_spec(spec: SimulationSpec) -> TwinRun:
    """Run one spec (the function executors map over a batch)."""
    result = simulate(spec)
    return TwinRun(result, result.summary.customer_days)


class Mapper(Protocol):
    """The sandbox's executor protocol: ``map`` yields ``(position, result)`` as runs finish."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...


def executor_evaluate(executor: Mapper) -> Evaluate:
    """An ``Evaluate`` over any executor (serial, or the Ray actor pool), results in batch order."""

    def evaluate(specs: list[SimulationSpec]) -> list[SimulationResult]:
        out: list[SimulationResult | None] = [None] * len(specs)
        for position, run in executor.map(run_spec, specs):
            out[position] = run.result
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:
            raise RuntimeError(f"executor returned no result for runs {missing}")
        return [r for r in out if r is not None]

    return evaluate


def replicate_seeds(seed: int, count: int, stream: int = 0) -> list[int]:
    """``count`` independent run seeds derived from one seed (the same list every time).

    ``stream`` separates uses of one seed (fitting vs. evaluation) so they never share draws.

    Reusing this list for every candidate is what makes the comparison use common random
    numbers: candidate A and B see the same customers and draws, so their difference is not
    drowned by replicate noise.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(stream,))
    state = sequence.generate_state(count, dtype=np.uint64)
    return [int(s >> np.uint64(1)) for s in state]  # SimulationSpec wants seeds < 2**63


def run_checked(evaluate: Evaluate, specs: list[SimulationSpec]) -> list[SimulationResult]:
    """Call the evaluator and check it kept the batch's size and order."""
    results = list(evaluate(specs))
    if len(results) != len(specs):
        raise RuntimeError(f"evaluator returned {len(results)} results for {len(specs)} specs")
    for spec, result in zip(specs, results, strict=True):
        if result.spec.seed != spec.seed:
            raise RuntimeError("evaluator returned results out of order (seeds differ)")
    return results


def kpi_arrays(results: Sequence[SimulationResult], skip: int = 0) -> dict[str, FloatArray]:
    """Per-KPI (replicates × steps) arrays of single-model runs, dropping the first ``skip``."""
    out: dict[str, FloatArray] = {}
    for name in KPI_NAMES:
        rows = [r.kpis.column(name).to_numpy().astype(np.float64)[skip:] for r in results]
        out[name] = np.vstack(rows)
    return out


def history_table(result: SimulationResult, start: str | None = "2024-01-01") -> pa.Table:
    """A single-model run's KPIs as a daily KPI-history table (``timestamp`` + KPI columns).

    ``start`` is the date of day 0 (2024-01-01 is a Monday, as the twin's day 0 is); ``None``
    gives a numeric day column instead of dates.
    """
    kpis = result.kpis
    days = kpis.column("day").to_numpy()
    if start is None:
        timestamp = pa.array(days.astype(np.float64))
    else:
        origin = np.datetime64(start, "s")
        offsets = np.rint(days * SECONDS_PER_DAY).astype("timedelta64[s]")
        timestamp = pa.array((origin + offsets).astype("datetime64[s]"))
    columns: dict[str, pa.Array] = {"timestamp": timestamp}
    for name in KPI_NAMES:
        columns[name] = kpis.column(name).combine_chunks()
    return pa.table(columns)
