"""Segment root causes: the dimension-value combinations where the loser loses more than elsewhere.

Per metric, units are grouped into *leaves* (one per full combination of the segment columns)
with the winner's and the loser's count, Σx and Σx² in each — from the cells of raw rows
(:mod:`twinloop.analysis.cells`) or from a segment breakdown. The question asked of the localizer
(:mod:`twinloop.analysis.localizer.localize`) is *where the loser's effect differs from its common
effect*: a loss spread evenly over every segment (a slower model is slower for everyone) is not
a segment cause. So the expected loser value of a leaf is the winner's mean there times the
common ratio ``g`` — the unit-weighted median over leaves of loser mean / winner mean — and the
localizer searches, in the adverse direction only, for the combinations that deviate from it.

Each combination found is reported with its own numbers: winner and loser means inside and
outside it, its share of the total loss ``Σ n_loser·(mean_loser - mean_winner)``, its *excess
share* — the part beyond the common effect, which ranks it as a root cause — and a Welch z-test
of that excess (``mean_loser - g·mean_winner``) on the units' own spread. The localizer fits its
leaf noise on few leaves when there are few segments, so a combination is reported only when
this test also rejects at the statistics' ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from twinloop.analysis.cells import CellIndex, CellSums
from twinloop.analysis.inputs import MetricInput, SegmentRow
from twinloop.analysis.localizer.leaves import LeafTable
from twinloop.analysis.localizer.localize import localize
from twinloop.analysis.localizer.models import LocalizerSettings, RootCauseElement
from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.stats.inputs import PointData, to_stats
from twinloop.stats.sufficient import BinomialStats, SampleStats

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class SegmentFinding(FrozenModel):
    """One combination of segment values where the loser loses more than its common effect."""

    metric: str
    element: dict[str, str]
    label: str
    winner_mean: float | None
    loser_mean: float | None
    relative_change: float | None = Field(description="loser vs winner inside the combination")
    outside_winner_mean: float | None
    outside_loser_mean: float | None
    outside_relative_change: float | None = Field(description="loser vs winner everywhere else")
    winner_units: float
    loser_units: float
    share_of_loss: float = Field(description="share of the metric's total loss inside it")
    excess_share: float = Field(description="share of the loss beyond the common effect")
    p_value: float | None = Field(
        description="Welch z-test of the loser's excess over the common effect inside it"
    )
    confidence: float = Field(description="the localizer's posterior for the combination")
    evidence: float = Field(description="the localizer's log-likelihood ratio (nats)")


class SegmentAnalysis(FrozenModel):
    """The segment search of one metric."""

    metric: str
    source: Literal["raw", "breakdown"]
    dims: tuple[str, ...]
    n_leaves: int
    common_ratio: float = Field(description="typical loser/winner ratio shared by the leaves")
    findings: tuple[SegmentFinding, ...]


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


def analyse_segments(
    leaves: Leaves,
    metric: MetricInput,
    settings: LocalizerSettings,
    source: Literal["raw", "breakdown"],
    alpha: float = 0.05,
) -> SegmentAnalysis | None:
    """Localize where the loser deviates from its common effect on ``metric`` (module doc)."""
    n = leaves.n
    s1 = np.stack([leaves.total(0), leaves.total(1)])
    if (s1 < -1e-9 * np.abs(s1).max()).any() or n[0].sum() == 0 or n[1].sum() == 0:
        return None  # the localizer needs non-negative sums, and both variants present
    keep = n[1] > 0  # leaves the loser has units in
    overall = float(s1[0].sum() / n[0].sum())
    winner_mean = np.where(n[0] > 0, s1[0] / np.maximum(n[0], 1.0), overall)
    loser_mean = s1[1] / np.maximum(n[1], 1.0)
    ratio = _common_ratio(loser_mean[keep], winner_mean[keep], n[1][keep])
    if not keep.any() or ratio is None:
        return None
    dims = {
        d: np.asarray(leaves.labels[j])[leaves.codes[keep, j]] for j, d in enumerate(leaves.dims)
    }
    s1 = np.maximum(s1, 0.0)  # rounding of shifted sums of non-negative values
    table = LeafTable.derived(
        dims,
        numerator_actual=s1[1][keep],
        numerator_expected=s1[0][keep] * ratio,
        denominator_actual=n[1][keep],
        denominator_expected=n[0][keep],
    )
    direction = "down" if metric.direction == "higher" else "up"
    found = localize(table, settings.model_copy(update={"direction": direction}))
    contribution = n[1] * (loser_mean - winner_mean)
    excess = n[1] * (loser_mean - ratio * winner_mean)
    total = float(contribution[keep].sum())
    findings = [
        _finding(leaves, metric, element, contribution, excess, total, keep, ratio)
        for element in found.elements
    ]
    # The localizer's leaf noise model is fitted on few leaves; a finding must also hold up
    # against the units' own spread (Welch) to be reported.
    findings = [
        f for f in findings if f is not None and f.p_value is not None and f.p_value < alpha
    ]
    return SegmentAnalysis(
        metric=metric.name,
        source=source,
        dims=leaves.dims,
        n_leaves=int(keep.sum()),
        common_ratio=ratio,
        findings=tuple(findings),
    )


def _common_ratio(loser: Floats, winner: Floats, weight: Floats) -> float | None:
    """Unit-weighted median of loser/winner over leaves with a positive winner mean."""
    usable = (winner > 0) & (weight > 0)
    if not usable.any():
        return None
    ratios, weights = loser[usable] / winner[usable], weight[usable]
    order = np.argsort(ratios, kind="stable")
    cumulative = np.cumsum(weights[order])
    middle = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
    return float(ratios[order][middle])


def _finding(
    leaves: Leaves,
    metric: MetricInput,
    element: RootCauseElement,
    contribution: Floats,
    excess: Floats,
    total: float,
    keep: npt.NDArray[np.bool_],
    ratio: float,
) -> SegmentFinding | None:
    inside = keep.copy()
    for dim, value in element.element.items():
        j = leaves.dims.index(dim)
        labels = leaves.labels[j]
        if value not in labels:
            return None
        inside &= leaves.codes[:, j] == labels.index(value)
    outside = keep & ~inside
    win_in, lose_in = _group(leaves, inside, 0), _group(leaves, inside, 1)
    win_out, lose_out = _group(leaves, outside, 0), _group(leaves, outside, 1)
    adverse = total if total != 0 else math.nan
    return SegmentFinding(
        metric=metric.name,
        element=element.element,
        label=element.label,
        winner_mean=win_in[1],
        loser_mean=lose_in[1],
        relative_change=_relative(lose_in[1], win_in[1]),
        outside_winner_mean=win_out[1],
        outside_loser_mean=lose_out[1],
        outside_relative_change=_relative(lose_out[1], win_out[1]),
        winner_units=win_in[0],
        loser_units=lose_in[0],
        share_of_loss=_finite(float(contribution[inside].sum()) / adverse),
        excess_share=_finite(float(excess[inside].sum()) / adverse),
        p_value=_excess_p(win_in, lose_in, ratio),
        confidence=element.confidence,
        evidence=element.evidence,
    )


def _group(
    leaves: Leaves, mask: npt.NDArray[np.bool_], arm: int
) -> tuple[float, float | None, float]:
    """Units, mean and variance (ddof=1) of one arm over the leaves in ``mask``."""
    n = float(leaves.n[arm][mask].sum())
    if n == 0:
        return 0.0, None, 0.0
    s1, s2 = float(leaves.s1[arm][mask].sum()), float(leaves.s2[arm][mask].sum())
    variance = max(s2 - s1 * s1 / n, 0.0) / (n - 1) if n > 1 else 0.0
    return n, leaves.shift + s1 / n, variance


def _excess_p(
    winner: tuple[float, float | None, float], loser: tuple[float, float | None, float], g: float
) -> float | None:
    """Two-sided p of ``mean_loser - g·mean_winner = 0`` (Welch's normal approximation)."""
    (nw, mw, vw), (nl, ml, vl) = winner, loser
    if mw is None or ml is None or nw < 2 or nl < 2:
        return None
    se = math.sqrt(g * g * vw / nw + vl / nl)
    if se == 0:
        return None
    return math.erfc(abs(ml - g * mw) / se / math.sqrt(2.0))


def _relative(loser: float | None, winner: float | None) -> float | None:
    if loser is None or winner is None or winner == 0:
        return None
    return (loser - winner) / abs(winner)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
