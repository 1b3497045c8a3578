"""Streaming replicates in: run batches on an executor, merge statistics, stop early.

Outcomes arrive in completion order. Each is merged at once into exact sufficient statistics
(:class:`Moments`, order-free) and kept by (cell, replicate) for the replicate table, which is
always built in replicate order. The early-stop rule is evaluated only at batch boundaries that
are fixed by the spec (``replicates``, then every ``batch_size``), never by how many workers are
busy, so where a run stops is as deterministic as what it computes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from twinloop.sandbox.executor import Executor, ProgressCallback
from twinloop.sandbox.indicators import RATIO_KPIS, REPLICATE_KPIS, direction
from twinloop.sandbox.intervals import win
from twinloop.sandbox.moments import Moments
from twinloop.sandbox.plan import Budget
from twinloop.sandbox.replicate import ReplicateOutcome, ReplicateTask, run_replicate
from twinloop.sandbox.results import ExecutionInfo, StopInfo
from twinloop.sandbox.specs import EarlyStop


class Collector:
    """Runs task batches on an executor and keeps every outcome, keyed by (cell, replicate)."""

    def __init__(self, executor: Executor, progress: ProgressCallback | None = None) -> None:
        self.executor = executor
        self.progress = progress
        self.outcomes: dict[tuple[int, int], ReplicateOutcome] = {}
        self.planned = 0
        self.customer_days = 0.0
        self.replicate_seconds = 0.0
        self._start = time.perf_counter()

    def run(
        self,
        tasks: Sequence[ReplicateTask],
        on_outcome: Callable[[ReplicateOutcome], None] | None = None,
    ) -> None:
        self.planned += len(tasks)
        for _, outcome in self.executor.map(run_replicate, tasks):
            self.outcomes[(outcome.cell, outcome.replicate)] = outcome
            self.customer_days += outcome.customer_days
            self.replicate_seconds += outcome.wall_seconds
            if on_outcome is not None:
                on_outcome(outcome)
            if self.progress is not None:
                self.progress(len(self.outcomes), self.planned)

    def ordered(self, cell: int | None = None) -> list[ReplicateOutcome]:
        """Outcomes sorted by (cell, replicate), optionally of one cell."""
        keys = sorted(k for k in self.outcomes if cell is None or k[0] == cell)
        return [self.outcomes[k] for k in keys]

    def execution(self) -> ExecutionInfo:
        wall = max(time.perf_counter() - self._start, 1e-9)
        stats = self.executor.stats()
        return ExecutionInfo(
            executor=stats.executor,
            workers=stats.workers,
            nodes=sorted(stats.nodes),
            retried=stats.retried,
            wall_seconds=wall,
            replicate_seconds=self.replicate_seconds,
            customer_days=self.customer_days,
            customer_days_per_second=self.customer_days / wall,
        )


def run_batches(
    budget: Budget,
    early_stop: EarlyStop | None,
    tasks_for: Callable[[int, int], list[ReplicateTask]],
    collector: Collector,
    narrow_enough: Callable[[float], bool],
    on_outcome: Callable[[ReplicateOutcome], None] | None = None,
) -> tuple[int, StopInfo]:
    """Run replicates [0, initial), then batches until ``narrow_enough(target)`` or the cap."""
    done, upto, checks = 0, budget.initial, 0
    while True:
        collector.run(tasks_for(done, upto), on_outcome)
        done = upto
        if early_stop is None:
            return done, StopInfo(reason="fixed", target_relative_half_width=None, checks=0)
        checks += 1
        target = early_stop.relative_half_width
        if narrow_enough(target):
            return done, StopInfo(
                reason="target_reached", target_relative_half_width=target, checks=checks
            )
        if done >= budget.cap:
            return done, StopInfo(
                reason="cap_reached", target_relative_half_width=target, checks=checks
            )
        upto = min(done + budget.batch, budget.cap)


def _observation(values: dict[str, float], kpi: str) -> list[float]:
    """A KPI's variables: the value, or numerator and denominator of a ratio KPI."""
    if kpi in RATIO_KPIS:
        num, den = RATIO_KPIS[kpi]
        return [values[num], values[den]]
    return [values[kpi]]


class ArmStats:
    """Moments of every replicate KPI of one model, merged as replicates arrive."""

    def __init__(self) -> None:
        self.moments = {k: Moments.empty(2 if k in RATIO_KPIS else 1) for k in REPLICATE_KPIS}

    def add(self, values: dict[str, float]) -> None:
        for kpi in REPLICATE_KPIS:
            self.moments[kpi] = self.moments[kpi] + Moments.of(_observation(values, kpi))


class PairStats:
    """Joint moments of (baseline, challenger) per KPI, and the challenger's wins."""

    def __init__(self) -> None:
        self.moments = {k: Moments.empty(4 if k in RATIO_KPIS else 2) for k in REPLICATE_KPIS}
        self.wins = dict.fromkeys(REPLICATE_KPIS, 0.0)

    def add(self, baseline: dict[str, float], challenger: dict[str, float]) -> None:
        for kpi in REPLICATE_KPIS:
            joint = _observation(baseline, kpi) + _observation(challenger, kpi)
            self.moments[kpi] = self.moments[kpi] + Moments.of(joint)
            # Sums of halves and ones are exact in floats, so wins merge in any order too.
            self.wins[kpi] += win(baseline[kpi], challenger[kpi], direction(kpi))
