"""Business impact: what shipping the loser instead of the winner costs per day and per month.

Money per unit comes from the loser-vs-winner absolute effects (positive = money lost):

* a revenue metric (per unit): ``-(Δ revenue per unit)`` — it already contains the conversions,
  so a conversion metric is priced only when there is no revenue metric;
* a conversion metric (rate or count per unit) × ``value_per_conversion``;
* a cost metric (per unit): ``+Δ cost``; a calls metric × ``cost_per_call``.

Per day = per unit × ``traffic_per_day`` (units per day at full exposure; estimated from a raw
file's time column when not given, and said so); per month = per day × ``days_per_month`` (30).
The interval adds the components' interval half-widths in quadrature (independent normal
estimates) at the statistics' confidence level; point values give no interval.

Severity (documented thresholds): with money, ``low`` below the first of ``money_thresholds``
per month (default 1,000), ``medium`` below the second (10,000), ``high`` below the third
(100,000), else ``critical``; without money, the key metric's relative loss in units of
``FAILURE_THRESHOLD`` t: ``low`` < t, ``medium`` < 2t, ``high`` < 4t, else ``critical``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from twinloop.analysis.chains import node_of
from twinloop.analysis.decision import Decision
from twinloop.analysis.failures import relative_loss
from twinloop.analysis.inputs import BusinessParameters, MetricInput
from twinloop.analysis.settings import (
    AnalyzerSettings,
    SeverityLevel,
    severity_of_loss,
    severity_of_money,
)
from twinloop.contract import FrozenModel
from twinloop.stats.results import Interval, MetricComparison

Basis = Literal["revenue", "conversion_value", "cost", "calls_cost"]
TrafficSource = Literal["input", "estimated", "none"]


class ImpactComponent(FrozenModel):
    """One priced metric: money lost per unit and per day, with its interval."""

    metric: str
    basis: Basis
    per_unit: float = Field(description="money lost per unit (negative = gained)")
    per_unit_interval: Interval | None
    per_day: float | None


class BusinessImpact(FrozenModel):
    """Money lost per day and per month with intervals, and the severity of the failure."""

    currency: str
    traffic_per_day: float | None
    traffic_source: TrafficSource
    per_day: float | None
    per_day_interval: Interval | None
    per_month: float | None
    per_month_interval: Interval | None
    components: tuple[ImpactComponent, ...]
    key_relative_loss: float | None = Field(description="the key metric's relative loss")
    severity: SeverityLevel
    severity_basis: Literal["money", "relative_loss", "none"]
    notes: tuple[str, ...] = ()


def business_impact(
    decision: Decision,
    metrics: Mapping[str, MetricInput],
    business: BusinessParameters | None,
    settings: AnalyzerSettings,
    *,
    estimated_traffic: float | None = None,
) -> BusinessImpact:
    """Price the loss (see the module docstring)."""
    params = business or BusinessParameters()
    notes: list[str] = []
    traffic = params.traffic_per_day
    source: TrafficSource = "input"
    if traffic is None and estimated_traffic is not None:
        traffic, source = estimated_traffic, "estimated"
        notes.append(f"traffic per day estimated from the data's time column: {traffic:,.0f}")
    elif traffic is None:
        source = "none"
    components = _components(decision.comparisons, metrics, params)
    if not components:
        notes.append("no revenue, priced conversion, cost or calls metric: no money figure")
    elif traffic is None:
        notes.append("no traffic_per_day: money per unit only")
    components = [
        c.model_copy(update={"per_day": None if traffic is None else c.per_unit * traffic})
        for c in components
    ]
    per_day = per_day_interval = per_month = per_month_interval = None
    if components and traffic is not None:
        per_day = sum(c.per_unit for c in components) * traffic
        per_day_interval = _combined(components, traffic)
        per_month = per_day * settings.days_per_month
        if per_day_interval is not None:
            per_month_interval = _scaled(per_day_interval, settings.days_per_month)
    key_loss = None
    if decision.key_metric is not None:
        key_loss = relative_loss(_comparison(decision, decision.key_metric))[0]
    if per_month is not None:
        severity = severity_of_money(per_month, settings.money_thresholds)
        basis: Literal["money", "relative_loss", "none"] = "money"
    elif key_loss is not None:
        severity, basis = severity_of_loss(key_loss, settings.failure_threshold), "relative_loss"
    else:
        severity, basis = "none", "none"
    return BusinessImpact(
        currency=params.currency,
        traffic_per_day=traffic,
        traffic_source=source,
        per_day=per_day,
        per_day_interval=per_day_interval,
        per_month=per_month,
        per_month_interval=per_month_interval,
        components=tuple(components),
        key_relative_loss=key_loss,
        severity=severity,
        severity_basis=basis,
        notes=tuple(notes),
    )


def _comparison(decision: Decision, metric: str) -> MetricComparison:
    return next(c for c in decision.comparisons if c.metric == metric)


def _components(
    comparisons: Sequence[MetricComparison],
    metrics: Mapping[str, MetricInput],
    params: BusinessParameters,
) -> list[ImpactComponent]:
    by_node: dict[str, list[MetricComparison]] = {}
    for comparison in comparisons:
        meta = metrics.get(comparison.metric)
        if meta is not None and comparison.absolute is not None:
            by_node.setdefault(node_of(meta), []).append(comparison)
    # Primary metrics first: they are the ones the business reads.
    for group in by_node.values():
        group.sort(key=lambda c: c.role != "primary")
    found: list[ImpactComponent] = []
    if "revenue" in by_node:
        found.append(_priced(by_node["revenue"][0], "revenue", 1.0))
    elif "conversion" in by_node and params.value_per_conversion is not None:
        found.append(
            _priced(by_node["conversion"][0], "conversion_value", params.value_per_conversion)
        )
    if "cost" in by_node:
        found.append(_priced(by_node["cost"][0], "cost", 1.0))
    elif "calls" in by_node and params.cost_per_call is not None:
        found.append(_priced(by_node["calls"][0], "calls_cost", params.cost_per_call))
    return found


def _priced(comparison: MetricComparison, basis: Basis, value: float) -> ImpactComponent:
    """Money lost per unit: the effect in the metric's bad direction times its unit value."""
    assert comparison.absolute is not None
    sign = -1.0 if comparison.direction == "higher" else 1.0
    factor = sign * value
    interval = comparison.absolute.interval
    scaled = None
    if interval is not None:
        ends = sorted((factor * interval.lower, factor * interval.upper))
        scaled = Interval(lower=ends[0], upper=ends[1], level=interval.level)
    return ImpactComponent(
        metric=comparison.metric,
        basis=basis,
        per_unit=factor * comparison.absolute.estimate,
        per_unit_interval=scaled,
        per_day=None,
    )


def _combined(components: Sequence[ImpactComponent], traffic: float) -> Interval | None:
    """Sum of the components with half-widths added in quadrature (independent estimates)."""
    intervals = [c.per_unit_interval for c in components]
    if not intervals or any(i is None for i in intervals):
        return None
    known = [i for i in intervals if i is not None]
    centre = sum(c.per_unit for c in components) * traffic
    half = math.sqrt(sum(((i.upper - i.lower) / 2 * traffic) ** 2 for i in known))
    return Interval(lower=centre - half, upper=centre + half, level=known[0].level)


def _scaled(interval: Interval, factor: float) -> Interval:
    return Interval(
        lower=interval.lower * factor, upper=interval.upper * factor, level=interval.level
    )
