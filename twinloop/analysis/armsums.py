"""Per-leaf sums of an A/B test's winner and loser: the input of the segment search.

A *leaf* is one full combination of the segment columns; per leaf and arm we keep the count,
Σx and Σx² — from the cells of raw rows (:mod:`twinloop.analysis.cells`) or from a segment
breakdown — so that the search (:mod:`twinloop.analysis.segments`) can form ratios and Welch
tests without going back to the units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twinloop.analysis.cells import CellIndex, CellSums
from twinloop.analysis.inputs import MetricInput, SegmentRow
from twinloop.errors import InvalidInput
from twinloop.stats.inputs import PointData, to_stats
from twinloop.stats.sufficient import BinomialStats, SampleStats

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Leaves:
    """Winner (row 0) and loser (row 1) count, Σ(x - shift) and Σ(x - shift)² per leaf."""

    dims: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    codes: Ints  # leaves × dims, indexes labels
    n: Floats  # 2 × leaves
    s1: Floats
    s2: Floats
    shift: float = 0.0

    def total(self, arm: int) -> Floats:
        """Σx per leaf of one arm (unshifted)."""
        total: Floats = self.s1[arm] + self.shift * self.n[arm]
        return total


def raw_leaves(index: CellIndex, sums: CellSums, winner: str, loser: str) -> Leaves | None:
    """The winner's and loser's columns of a metric's cells; None without segment columns."""
    if not index.dims:
        return None
    cols = [index.variants.index(winner), index.variants.index(loser)]
    return Leaves(
        index.dims,
        index.labels,
        index.leaf_codes,
        sums.n[:, cols].T.copy(),
        sums.s1[:, cols].T.copy(),
        sums.s2[:, cols].T.copy(),
        sums.shift,
    )


def breakdown_leaves(
    rows: Sequence[tuple[int, SegmentRow]], metric: MetricInput, winner: str, loser: str
) -> Leaves:
    """Leaves of one metric from segment-breakdown rows (index in the input, row)."""
    dims = tuple(sorted(rows[0][1].segment))
    values: list[list[float]] = []
    keys: list[list[str]] = []
    for index, row in rows:
        if tuple(sorted(row.segment)) != dims:
            raise InvalidInput(
                f"segments[{index}].segment",
                f"has dimensions {sorted(row.segment)}, other rows of {metric.name!r} have "
                f"{list(dims)}",
            )
        keys.append([row.segment[d] for d in dims])
        sums: list[float] = []
        for variant in (winner, loser):
            sums.extend(_sums(row.variants[variant], f"segments[{index}].variants.{variant}"))
        values.append(sums)
    table: Floats = np.asarray(values, dtype=np.float64)  # rows × (n, s1, s2) × 2
    labels: list[tuple[str, ...]] = []
    codes = np.empty((len(keys), len(dims)), dtype=np.int64)
    for j in range(len(dims)):
        uniq, inverse = np.unique(np.asarray([k[j] for k in keys]), return_inverse=True)
        labels.append(tuple(str(u) for u in uniq))
        codes[:, j] = inverse.ravel()
    return Leaves(
        dims,
        tuple(labels),
        codes,
        table[:, [0, 3]].T.copy(),
        table[:, [1, 4]].T.copy(),
        table[:, [2, 5]].T.copy(),
    )


def _sums(data: object, field: str) -> tuple[float, float, float]:
    stats = to_stats(data, "auto", field)  # type: ignore[arg-type]
    if isinstance(stats, PointData):  # no unit count: one pseudo-unit
        return 1.0, stats.value, stats.value**2
    if isinstance(stats, BinomialStats):
        return float(stats.n), float(stats.successes), float(stats.successes)
    if isinstance(stats, SampleStats):
        return float(stats.n), float(stats.sum), float(stats.sum_sq)
    raise InvalidInput(field, "segment rows take binomial, continuous, sums, point or raw data")
