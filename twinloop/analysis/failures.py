"""Failure types: the metrics on which the loser is worse, each with a severity from the threshold.

A metric is a failure when the loser is worse than the winner on it (in the metric's own
direction) and either the loss is statistically significant (``confirmed``), or it reaches
``FAILURE_THRESHOLD`` without significance (``unconfirmed``, the interval includes no loss), or
it reaches the threshold in point values that cannot be tested (``untested``). Several types are
reported at once. The relative loss is ``-(loser - winner) / |winner|`` for higher-is-better
metrics and ``+(loser - winner) / |winner|`` for lower-is-better ones; its severity in units of
the threshold ``t`` is low (< t), medium (< 2t), high (< 4t) or critical (>= 4t).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from twinloop.analysis.inputs import MetricInput, MetricKind
from twinloop.analysis.settings import SeverityLevel, severity_of_loss
from twinloop.contract import FrozenModel
from twinloop.stats.results import Direction, Interval, MetricComparison, Role

Evidence = Literal["confirmed", "unconfirmed", "untested"]


class FailureType(FrozenModel):
    """One metric the loser failed on: how much, how sure, how severe."""

    type: MetricKind = Field(description="accuracy, latency, cost, satisfaction, conversion, …")
    metric: str
    role: Role
    direction: Direction
    winner_value: float | None
    loser_value: float | None
    relative_loss: float | None = Field(description="loss as a fraction of the winner's value")
    loss_interval: Interval | None = Field(description="interval of relative_loss")
    p_value_adjusted: float | None
    evidence: Evidence
    severity: SeverityLevel
    threshold: float = Field(description="FAILURE_THRESHOLD used")


def relative_loss(comparison: MetricComparison) -> tuple[float | None, Interval | None]:
    """The loser's relative loss (positive = worse) and its interval, from loser-vs-winner."""
    if comparison.relative is None:
        return None, None
    sign = -1.0 if comparison.direction == "higher" else 1.0
    effect = comparison.relative
    interval = None
    if effect.interval is not None:
        ends = sorted((sign * effect.interval.lower, sign * effect.interval.upper))
        interval = Interval(lower=ends[0], upper=ends[1], level=effect.interval.level)
    return sign * effect.estimate, interval


def evidence_of(comparison: MetricComparison) -> Evidence:
    """confirmed (significant), untested (point values) or unconfirmed (not significant)."""
    if comparison.outcome == "not_tested" or comparison.p_value_adjusted is None:
        return "untested"
    return "confirmed" if comparison.significant else "unconfirmed"


def failure_types(
    comparisons: Sequence[MetricComparison],
    metrics: Mapping[str, MetricInput],
    threshold: float,
) -> list[FailureType]:
    """Every metric the loser failed on, most severe first (see the module docstring)."""
    found: list[FailureType] = []
    for comparison in comparisons:
        if comparison.favours != "control":  # control is the winner: the loser is worse
            continue
        loss, interval = relative_loss(comparison)
        evidence = evidence_of(comparison)
        big = loss is not None and loss >= threshold
        if evidence != "confirmed" and not big:
            continue
        severity = severity_of_loss(loss, threshold) if loss is not None else "low"
        meta = metrics.get(comparison.metric)
        found.append(
            FailureType(
                type=meta.kind if meta is not None else "custom",
                metric=comparison.metric,
                role=comparison.role,
                direction=comparison.direction,
                winner_value=comparison.control.mean,
                loser_value=comparison.treatment.mean,
                relative_loss=loss,
                loss_interval=interval,
                p_value_adjusted=comparison.p_value_adjusted,
                evidence=evidence,
                severity=severity,
                threshold=threshold,
            )
        )
    order = {"confirmed": 0, "untested": 1, "unconfirmed": 2}
    found.sort(key=lambda f: (order[f.evidence], -(f.relative_loss or 0.0)))
    return found
