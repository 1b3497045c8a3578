"""The sandbox's KPIs: what one replicate reports, which way is better, which are ratios.

Two families. *Replicate KPIs* summarise a whole simulated universe for one model (total
revenue, mean active customers, the pooled conversion rate …); Monte Carlo intervals are taken
across replicates. *Unit KPIs* are columns of the per-customer table an A/B test in the twin is
analysed on (did this customer convert, their revenue …); their tests are taken across
customers within one replicate.
"""

from __future__ import annotations

from typing import Literal

from twinloop.sim.domains import DOMAINS, preset
from twinloop.sim.kpis import VariantSummary

Direction = Literal["higher", "lower"]
UnitKind = Literal["mean", "proportion", "ratio"]

REPLICATE_KPIS: tuple[str, ...] = (
    "customers",
    "active",
    "final_active",
    "new",
    "churned",
    "interactions",
    "conversions",
    "conversion_rate",
    "revenue",
    "cost",
    "profit",
    "satisfaction",
    "model_accuracy",
    "latency_p50_ms",
    "latency_p95_ms",
    "customer_days",
)
# A ratio KPI is Σnumerator / Σdenominator over a universe; across replicates its mean is a
# ratio of means, so its interval comes from the delta method (or a bootstrap), not a t.
RATIO_KPIS: dict[str, tuple[str, str]] = {"conversion_rate": ("conversions", "interactions")}
_LOWER_IS_BETTER = frozenset({"churned", "cost", "latency_p50_ms", "latency_p95_ms"})

# Unit KPIs: kind, column (numerator for ratios), denominator column.
UNIT_KPIS: dict[str, tuple[UnitKind, str, str | None]] = {
    "conversion_rate": ("ratio", "conversions", "interactions"),
    "converted": ("proportion", "converted", None),
    "revenue": ("mean", "revenue", None),
    "satisfaction": ("mean", "satisfaction", None),
    "churned": ("proportion", "churned", None),
    "interactions": ("mean", "interactions", None),
    "latency_ms": ("mean", "latency_ms", None),
    "accuracy": ("mean", "accuracy", None),
}
_UNIT_LOWER_IS_BETTER = frozenset({"churned", "latency_ms"})
DEFAULT_UNIT_KPIS = ("conversion_rate", "revenue")
_FALLBACK_PRIMARY = ("conversion_rate", "revenue")


def direction(kpi: str) -> Direction:
    """Which way is better for a replicate KPI."""
    return "lower" if kpi in _LOWER_IS_BETTER else "higher"


def unit_direction(kpi: str) -> Direction:
    """Which way is better for a unit KPI."""
    return "lower" if kpi in _UNIT_LOWER_IS_BETTER else "higher"


def replicate_values(variant: VariantSummary, span_days: float) -> dict[str, float]:
    """One universe's KPIs for one model: totals, means over the run, pooled rates.

    ``span_days`` is the simulated length (steps × step length); customer-days over it is the
    time-average of the active population, the quantity M/M/∞ theory predicts.
    """
    return {
        "customers": float(variant.customers),
        "active": variant.customer_days / span_days,
        "final_active": float(variant.final_active),
        "new": float(variant.new),
        "churned": float(variant.churned),
        "interactions": float(variant.interactions),
        "conversions": float(variant.conversions),
        "conversion_rate": variant.conversion_rate,
        "revenue": variant.revenue,
        "cost": variant.cost,
        "profit": variant.profit,
        "satisfaction": variant.mean_satisfaction,
        "model_accuracy": variant.model_accuracy,
        "latency_p50_ms": variant.latency_p50_ms,
        "latency_p95_ms": variant.latency_p95_ms,
        "customer_days": variant.customer_days,
    }


def default_primary(environment: object) -> list[str]:
    """The primary KPIs of a domain preset (named by a string), else conversion rate and revenue."""
    if isinstance(environment, str) and environment in DOMAINS:
        return list(preset(environment).primary_kpis)
    return list(_FALLBACK_PRIMARY)


def check_replicate_kpis(names: list[str]) -> list[str]:
    """Validate KPI names (for pydantic field validators: raises ValueError naming the KPI)."""
    for name in names:
        if name not in REPLICATE_KPIS:
            raise ValueError(f"unknown KPI {name!r}; choose from {list(REPLICATE_KPIS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"KPIs must be unique, got {names}")
    return names


def check_unit_kpis(names: list[str]) -> list[str]:
    """Validate unit KPI names for an A/B test in the twin."""
    for name in names:
        if name not in UNIT_KPIS:
            raise ValueError(f"unknown KPI {name!r}; choose from {list(UNIT_KPIS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"KPIs must be unique, got {names}")
    return names
