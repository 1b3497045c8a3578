"""Segment root causes: the dimension-value combinations where the loser loses more than elsewhere.

Per metric, the winner's and loser's sums per *leaf* (:mod:`twinloop.analysis.armsums`) go to
the localizer (:mod:`twinloop.analysis.localizer.localize`), which is asked *where the loser's
effect differs from its common effect*: a loss spread evenly over every segment (a slower model
is slower for everyone) is not a segment cause. So the expected loser value of a leaf is the
winner's mean there times the common ratio ``g`` — the unit-weighted median over leaves of
loser mean / winner mean — and the localizer searches, in the adverse direction only, for the
combinations that deviate from it.

The median is a leaf of the majority. When the flaw holds most of the units (worse only for
``plan=free``, 60% of them) the median *is* the flawed ratio and nothing falls short of it; then
the *healthy* part stands out in the favourable direction (searched from the median, then from
the adverse quartile, where a 50–80% flaw sits), its pooled ratio becomes ``g`` and the adverse
search is repeated against it (``baseline="healthy_segments"``). The flipped description is
kept only when it is no longer than the healthy one (one healthy segment ↔ one flawed one).

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

from twinloop.analysis.armsums import Leaves
from twinloop.analysis.inputs import MetricInput
from twinloop.analysis.localizer.leaves import LeafTable
from twinloop.analysis.localizer.localize import localize
from twinloop.analysis.localizer.models import LocalizerSettings, RootCauseElement
from twinloop.contract import FrozenModel

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Direction = Literal["down", "up"]
Baseline = Literal["median", "healthy_segments"]


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
    baseline: Baseline = Field(
        default="median",
        description="where the common ratio comes from: the unit-weighted median leaf, or the "
        "healthy segments when the flaw holds the majority of units",
    )
    findings: tuple[SegmentFinding, ...]


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
    median = _common_ratio(loser_mean[keep], winner_mean[keep], n[1][keep])
    if not keep.any() or median is None:
        return None
    means = np.stack([winner_mean, loser_mean])
    search = _Search(leaves, metric, settings, keep, np.maximum(s1, 0.0), means, alpha)
    adverse: Direction = "down" if metric.direction == "higher" else "up"
    favourable: Direction = "up" if adverse == "down" else "down"
    ratio, findings = median, search.findings(median, adverse)
    baseline: Baseline = "median"
    if not findings:
        # The median leaf may sit inside a flawed *majority* (the loser is worse for 60% of
        # the units), or on the fence at 50%: then the healthy part is "better than common".
        # It is searched against the median, then against a leaf well inside the adverse side
        # (the unit-weighted quartile), where a flawed group of 50–80% of the units sits. The
        # healthy part's own ratio is the baseline the flaw deviates from; the flipped
        # description is kept when it is no longer than the healthy one it replaces (one
        # healthy segment ↔ one flawed segment).
        quartile = 0.25 if adverse == "down" else 0.75
        lower = _common_ratio(loser_mean[keep], winner_mean[keep], n[1][keep], quartile)
        for start in (median, lower):
            flip = _flip(search, start, adverse, favourable, n, s1)
            if flip is not None:
                ratio, findings = flip
                baseline = "healthy_segments"
                break
    return SegmentAnalysis(
        metric=metric.name,
        source=source,
        dims=leaves.dims,
        n_leaves=int(keep.sum()),
        common_ratio=ratio,
        baseline=baseline,
        findings=tuple(findings),
    )


@dataclass(frozen=True, eq=False)
class _Search:
    """The localizer run on one metric's leaves against a given common ratio ``g``."""

    leaves: Leaves
    metric: MetricInput
    settings: LocalizerSettings
    keep: npt.NDArray[np.bool_]
    s1: Floats  # 2 × leaves, Σx of winner and loser (clipped at 0)
    means: Floats  # 2 × leaves, winner mean (the overall one where it has no units), loser mean
    alpha: float

    def elements(self, ratio: float, direction: Direction) -> list[RootCauseElement]:
        """Combinations whose loser deviates from ``ratio`` × winner in ``direction``."""
        n, s1, keep, leaves = self.leaves.n, self.s1, self.keep, self.leaves
        dims = {
            d: np.asarray(leaves.labels[j])[leaves.codes[keep, j]]
            for j, d in enumerate(leaves.dims)
        }
        table = LeafTable.derived(
            dims,
            numerator_actual=s1[1][keep],
            numerator_expected=s1[0][keep] * ratio,
            denominator_actual=n[1][keep],
            denominator_expected=n[0][keep],
        )
        found = localize(table, self.settings.model_copy(update={"direction": direction}))
        return list(found.elements)

    def covered(self, elements: Sequence[RootCauseElement]) -> Mask:
        """Leaves (kept ones) inside any of ``elements``."""
        mask = np.zeros(self.keep.shape[0], dtype=bool)
        for element in elements:
            mask |= _inside(self.leaves, element, self.keep) & self.keep
        return mask

    def findings(self, ratio: float, direction: Direction) -> list[SegmentFinding]:
        """Adverse combinations against ``ratio`` that also pass the units' own Welch test."""
        n, keep = self.leaves.n, self.keep
        winner_mean, loser_mean = self.means
        contribution = n[1] * (loser_mean - winner_mean)
        excess = n[1] * (loser_mean - ratio * winner_mean)
        total = float(contribution[keep].sum())
        made = [
            _finding(self.leaves, self.metric, e, contribution, excess, total, keep, ratio)
            for e in self.elements(ratio, direction)
        ]
        # The localizer's leaf noise model is fitted on few leaves; a finding must also hold
        # up against the units' own spread (Welch) to be reported.
        return [
            f for f in made if f is not None and f.p_value is not None and f.p_value < self.alpha
        ]


def _inside(leaves: Leaves, element: RootCauseElement, keep: npt.NDArray[np.bool_]) -> Mask:
    """Leaves inside ``element`` (all False when it names a value the leaves do not have)."""
    inside = keep.copy()
    for dim, value in element.element.items():
        j = leaves.dims.index(dim)
        labels = leaves.labels[j]
        if value not in labels:
            return np.zeros_like(keep)
        inside &= leaves.codes[:, j] == labels.index(value)
    return inside


def _flip(
    search: _Search,
    start: float | None,
    adverse: Direction,
    favourable: Direction,
    n: Floats,
    s1: Floats,
) -> tuple[float, list[SegmentFinding]] | None:
    """(healthy ratio, adverse findings against it) when a healthy part stands out from
    ``start`` and the flaw it implies is described no longer; else None."""
    if start is None:
        return None
    healthy = search.elements(start, favourable)
    flipped = _pooled_ratio(n, s1, search.covered(healthy))
    if not healthy or flipped is None:
        return None
    found = search.findings(flipped, adverse)
    if found and len(found) <= len(healthy):
        return flipped, found
    return None


def _pooled_ratio(n: Floats, s1: Floats, mask: Mask) -> float | None:
    """Loser mean / winner mean over the leaves in ``mask`` (None when undefined)."""
    if not mask.any() or n[0][mask].sum() == 0 or n[1][mask].sum() == 0 or s1[0][mask].sum() <= 0:
        return None
    loser = s1[1][mask].sum() / n[1][mask].sum()
    return float(loser / (s1[0][mask].sum() / n[0][mask].sum()))


def _common_ratio(
    loser: Floats, winner: Floats, weight: Floats, quantile: float = 0.5
) -> float | None:
    """Unit-weighted median (or ``quantile``) of loser/winner over leaves with a positive
    winner mean."""
    usable = (winner > 0) & (weight > 0)
    if not usable.any():
        return None
    ratios, weights = loser[usable] / winner[usable], weight[usable]
    order = np.argsort(ratios, kind="stable")
    cumulative = np.cumsum(weights[order])
    middle = int(np.searchsorted(cumulative, quantile * cumulative[-1]))
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
    if any(
        value not in leaves.labels[leaves.dims.index(dim)] for dim, value in element.element.items()
    ):
        return None
    inside = _inside(leaves, element, keep)
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
