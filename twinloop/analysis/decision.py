"""The decision: which variant won, which lost, on which metrics, and how sure the data are.

Every metric of every treatment is first compared with control by the statistics engine
(corrected across metrics, with the SRM check). The winner and loser are then read off the
*deciding* metrics — the primary ones, or every metric when none is primary: a variant scores
+1 per deciding metric it is significantly better on than control and -1 per one it is worse
on (point values count their direction, untested); ties are broken by the mean standardised
effect. A stated winner/loser is kept (the analysis explains what the user asks about) and
``agrees_with_data`` says whether the data back it. Finally the loser is compared with the winner
directly, so every effect in the analysis reads "loser relative to winner".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.stats.arms import PreparedArms
from twinloop.stats.compare import ComparisonResult, compare_arms
from twinloop.stats.results import MetricComparison, Note, SrmResult

Status = Literal["significant", "mixed", "inconclusive", "not_tested"]


class Decision(FrozenModel):
    """Who won and lost, with the per-metric statistics of loser vs winner and data quality."""

    winner: str
    loser: str
    control: str
    status: Status = Field(
        description="significant: the loser is significantly worse on a deciding metric; "
        "mixed: worse on one, better on another; inconclusive: nothing significant; "
        "not_tested: point values only"
    )
    stated: bool = Field(description="winner and loser were given in the input")
    agrees_with_data: bool | None = Field(
        description="the data point the same way as the stated winner (None: not stated)"
    )
    deciding_metrics: tuple[str, ...]
    key_metric: str | None = Field(description="the deciding metric with the clearest loss")
    comparisons: tuple[MetricComparison, ...] = Field(description="loser vs winner, corrected")
    srm: SrmResult | None
    notes: tuple[Note, ...] = Field(description="coded data-quality findings (srm, …)")
    summary: str


@dataclass(frozen=True)
class Scored:
    """A variant's decision score: significant wins minus losses, then mean signed effect."""

    name: str
    wins: int
    effect: float


def decide(arms: PreparedArms, *, winner: str | None = None, loser: str | None = None) -> Decision:
    """Compare, pick winner and loser, and compare the loser with the winner directly.

    ``arms`` were checked and converted once (:func:`~twinloop.stats.arms.prepare_arms`); both
    comparisons reuse them.
    """
    overall = compare_arms(arms)
    metrics = arms.spec.metrics
    deciding = [m.name for m in metrics if m.role == "primary"] or [m.name for m in metrics]
    scores = _scores(overall, deciding)
    by_data = sorted(scores, key=lambda s: (s.wins, s.effect), reverse=True)
    data_winner, data_loser = by_data[0].name, by_data[-1].name
    stated = winner is not None or loser is not None
    chosen_winner = winner or (data_winner if data_winner != loser else by_data[1].name)
    chosen_loser = loser or (data_loser if data_loser != chosen_winner else by_data[-2].name)
    pair = _pair(overall, arms, chosen_winner, chosen_loser)
    comparisons = tuple(c for c in pair.comparisons if c.metric in deciding)
    status = _status(comparisons)
    agrees = None
    if stated:
        agrees = _agrees(scores, chosen_winner, chosen_loser)
    key = _key_metric(comparisons)
    notes = _notes(overall, pair)
    return Decision(
        winner=chosen_winner,
        loser=chosen_loser,
        control=overall.control,
        status=status,
        stated=stated,
        agrees_with_data=agrees,
        deciding_metrics=tuple(deciding),
        key_metric=key,
        comparisons=pair.comparisons,
        srm=overall.srm,
        notes=notes,
        summary=_summary(chosen_winner, chosen_loser, status, key, pair, agrees),
    )


def _scores(result: ComparisonResult, deciding: Sequence[str]) -> list[Scored]:
    wins: dict[str, int] = {result.control: 0}
    effects: dict[str, list[float]] = {result.control: [0.0]}
    for comparison in result.comparisons:
        if comparison.metric not in deciding:
            continue
        name = comparison.treatment.variant
        wins.setdefault(name, 0)
        sign = {"better": 1, "worse": -1}.get(comparison.outcome, 0)
        if comparison.outcome == "not_tested":
            sign = {"treatment": 1, "control": -1}.get(comparison.favours, 0)
        wins[name] += sign
        effects.setdefault(name, []).append(signed_effect(comparison))
    return [Scored(name, wins[name], sum(effects[name]) / len(effects[name])) for name in wins]


def signed_effect(comparison: MetricComparison) -> float:
    """The treatment's effect in its good direction: z when tested, else the relative change."""
    sign = 1.0 if comparison.direction == "higher" else -1.0
    if comparison.statistic is not None and math.isfinite(comparison.statistic):
        return sign * comparison.statistic
    effect = comparison.relative or comparison.absolute
    return sign * effect.estimate if effect is not None else 0.0


def _pair(
    overall: ComparisonResult, arms: PreparedArms, winner: str, loser: str
) -> ComparisonResult:
    """Loser vs winner; reuses the first comparison when it already is exactly that."""
    if overall.control == winner and overall.treatments == (loser,):
        return overall
    return compare_arms(arms.pair(winner, loser))


def _status(comparisons: Sequence[MetricComparison]) -> Status:
    if comparisons and all(c.outcome == "not_tested" for c in comparisons):
        return "not_tested"
    worse = any(c.outcome == "worse" for c in comparisons)
    better = any(c.outcome == "better" for c in comparisons)
    if worse and better:
        return "mixed"
    return "significant" if worse else "inconclusive"


def _agrees(scores: Sequence[Scored], winner: str, loser: str) -> bool:
    by_name = {s.name: (s.wins, s.effect) for s in scores}
    return by_name[winner] >= by_name[loser]


def _key_metric(comparisons: Sequence[MetricComparison]) -> str | None:
    """The deciding metric the loser lost most clearly: smallest p, else largest relative loss."""
    adverse = [c for c in comparisons if c.favours == "control"]
    tested = [c for c in adverse if c.p_value_adjusted is not None]
    if tested:
        return min(tested, key=lambda c: (c.p_value_adjusted, signed_effect(c))).metric
    if adverse:
        return min(adverse, key=signed_effect).metric
    return None


def _notes(overall: ComparisonResult, pair: ComparisonResult) -> tuple[Note, ...]:
    """Experiment-level notes, then each metric's notes once (SRM comes from all variants)."""
    seen: set[tuple[str, str | None]] = set()
    notes: list[Note] = []
    for note in (*overall.notes, *(n for c in pair.comparisons for n in c.notes)):
        key = (note.code, note.metric)
        if note.code == "point_form_no_significance":
            key = (note.code, None)  # said once for the whole result
        if key not in seen:
            seen.add(key)
            notes.append(note)
    return tuple(notes)


def _summary(
    winner: str,
    loser: str,
    status: Status,
    key: str | None,
    pair: ComparisonResult,
    agrees: bool | None,
) -> str:
    text = f"{winner} beats {loser}"
    if key is not None:
        comparison = pair.get(key)
        change = comparison.relative.estimate if comparison.relative else None
        shown = f" ({change:+.1%})" if change is not None else ""
        text += f" on {key}{shown}"
    text += {
        "significant": ", statistically significant",
        "mixed": ", significant but mixed across the deciding metrics",
        "inconclusive": ", but the difference is not statistically significant",
        "not_tested": " (point values only: no significance can be computed)",
    }[status]
    if agrees is False:
        text += "; the data favour the other variant"
    return text
