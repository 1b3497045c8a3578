"""One entrant's universe on one seed, reduced to KPIs overall and per segment.

A championship runs every entrant on the *same* replicate seeds (common random numbers): each
entrant's universe on seed *s* is the universe a head-to-head (``twinloop.sandbox.headtohead``)
would run for it on *s*, whoever the opponent, so one universe per (entrant, seed) serves every
pair of the round robin — k·R simulations instead of k(k−1)·R. Segment KPIs are sums over the
per-customer table, split by the customer's segment; segments are common across entrants
because arrivals are common.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow.compute as pc

from twinloop.registry.models import SEGMENT_KPIS
from twinloop.sandbox.indicators import replicate_values
from twinloop.sandbox.replicate import ReplicateTask
from twinloop.sandbox.seeding import COMMON_STREAM, replicate_seed
from twinloop.sim.lifecycle import simulate

CONFIRMATION_STREAM: Final = 2  # key (i, 2): never a round-robin key (i,), nor the H2H's (i, 1)
BOOTSTRAP_KEY: Final = (0, 0, 2)  # the rating bootstrap's generator (sandbox's bootstrap: (0,0,1))


def round_robin_seed(seed: int, replicate: int) -> int:
    """Replicate ``replicate``'s seed in the round robin: the sandbox's common stream."""
    return replicate_seed(seed, replicate, COMMON_STREAM)


def confirmation_seed(seed: int, replicate: int) -> int:
    """A fresh seed for the confirmation run: a SeedSequence child the round robin never uses."""
    return replicate_seed(seed, replicate, CONFIRMATION_STREAM)


@dataclass(frozen=True, slots=True)
class ScoredReplicate:
    """One entrant's KPIs on one seed; ``segments[name][kpi]`` splits SEGMENT_KPIS by segment."""

    cell: int
    replicate: int
    seed: int
    values: dict[str, float]
    segments: dict[str, dict[str, float]]
    customer_days: float
    wall_seconds: float


def run_scored(task: ReplicateTask) -> ScoredReplicate:
    """Simulate the task's single-entrant universe and reduce it (a pure function of the task)."""
    start = time.perf_counter()
    spec = task.spec.model_copy(update={"seed": task.seed, "record_units": True})
    result = simulate(spec)
    (variant,) = result.summary.variants
    values = replicate_values(variant, spec.n_steps / spec.steps_per_day)
    units = result.units
    assert units is not None  # record_units=True
    segment = pc.dictionary_decode(units.column("segment")).to_numpy(zero_copy_only=False)
    columns = {
        "revenue": units.column("revenue").to_numpy(),
        "conversions": units.column("conversions").to_numpy(),
        "interactions": units.column("interactions").to_numpy(),
        "customers": np.ones(units.num_rows),
        "churned": units.column("churned").to_numpy(zero_copy_only=False).astype(np.float64),
    }
    segments = {
        s.name: {kpi: float(columns[kpi][segment == s.name].sum()) for kpi in SEGMENT_KPIS}
        for s in spec.environment.segments
    }
    return ScoredReplicate(
        cell=task.cell,
        replicate=task.replicate,
        seed=task.seed,
        values=values,
        segments=segments,
        customer_days=result.summary.customer_days,
        wall_seconds=time.perf_counter() - start,
    )
