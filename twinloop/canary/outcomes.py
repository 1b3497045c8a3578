"""Live outcomes of a canary merged into per-version sufficient statistics.

An outcome event says what happened to a unit after it was served (``metrics``: KPI name →
value). Its version is the one the family's configuration assigns to the unit (assignment is a
pure function of the unit id, so nothing per unit needs storing); an event that names a
``version`` other than the one its unit is assigned — a unit this configuration never served
that version — is counted as *unassigned*, not lost and not merged. Per version and metric the
statistics are the exact, mergeable :class:`~twinloop.stats.sufficient.SampleStats`, kept in
one Store document per canary generation, so a restart loses nothing and batches merge in any
order to the same bytes. Each event is one observation (a unit that reports twice counts
twice): outcome producers send one event per unit and decision window.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Final

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from twinloop.canary.assignment import CanaryConfig
from twinloop.contract import ID_FIELD_PATTERN, FrozenModel
from twinloop.stats.sufficient import SampleStats

MAX_EVENTS: Final = 10_000  # per batch
MAX_METRICS: Final = 16  # per event
KEPT_BATCH_IDS: Final = 512  # recent batch ids remembered, so a retried batch merges once


class OutcomeEvent(FrozenModel):
    """What happened to one unit: KPI values, when, and optionally which version served it."""

    unit_id: str = Field(pattern=ID_FIELD_PATTERN)
    metrics: dict[str, float] = Field(min_length=1, max_length=MAX_METRICS)
    timestamp: float = Field(ge=0.0, description="Unix seconds.")
    version: str | None = Field(default=None, description="The version the prediction named.")

    @field_validator("metrics")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for name, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"metric {name!r} must be finite, got {number}")
        return value


class MetricSums(FrozenModel):
    """A ``SampleStats`` as JSON: n and its exact integer sums (decimal strings: they are big)."""

    n: int
    sum: str
    sum_sq: str

    @classmethod
    def of(cls, stats: SampleStats) -> MetricSums:
        return cls(n=stats.n, sum=str(stats.exact[0]), sum_sq=str(stats.exact[1]))

    def stats(self) -> SampleStats:
        return SampleStats(self.n, (int(self.sum), int(self.sum_sq)))


class CanaryStats(FrozenModel):
    """Everything a canary generation has measured: the Store document ``canary_stats``."""

    family: str
    generation: int
    versions: dict[str, dict[str, MetricSums]] = Field(default_factory=dict)
    events: int = 0
    unassigned: int = 0
    batch_ids: list[str] = Field(default_factory=list)

    def metric(self, version: str, name: str) -> SampleStats:
        """The version's statistics of one metric (empty when nothing was seen)."""
        found = self.versions.get(version, {}).get(name)
        return found.stats() if found is not None else SampleStats(0, (0, 0))

    def units(self, version: str) -> int:
        """Events merged for ``version`` (its largest metric count)."""
        return max((m.n for m in self.versions.get(version, {}).values()), default=0)


def merge_batch(
    stats: CanaryStats,
    config: CanaryConfig,
    events: list[OutcomeEvent],
    batch_id: str | None = None,
) -> CanaryStats:
    """``stats`` with ``events`` merged under ``config``'s assignment (idempotent per batch id)."""
    if batch_id is not None and batch_id in stats.batch_ids:
        return stats
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    unassigned = 0
    assigned = config.versions([event.unit_id for event in events])
    for event, version in zip(events, assigned, strict=True):
        if event.version is not None and event.version != version:
            unassigned += 1
            continue
        for name, number in event.metrics.items():
            values[version][name].append(number)
    for version, metrics in values.items():
        arrays = {name: np.asarray(numbers) for name, numbers in metrics.items()}
        stats = merge_arrays(stats, version, arrays)
    ids = [*stats.batch_ids, batch_id][-KEPT_BATCH_IDS:] if batch_id else stats.batch_ids
    return stats.model_copy(
        update={
            "events": stats.events + len(events),
            "unassigned": stats.unassigned + unassigned,
            "batch_ids": ids,
        }
    )


def merge_arrays(
    stats: CanaryStats, version: str, metrics: dict[str, npt.NDArray[np.float64]]
) -> CanaryStats:
    """``stats`` with one version's raw metric values merged (exact sums: any order, same bytes)."""
    current = dict(stats.versions.get(version, {}))
    for name, numbers in metrics.items():
        added = SampleStats.from_array(numbers, field=f"events.metrics.{name}")
        previous = current.get(name)
        current[name] = MetricSums.of(added if previous is None else previous.stats() + added)
    return stats.model_copy(update={"versions": {**stats.versions, version: current}})
