"""The canary's decision rule: an always-valid sequential test on the primary KPI and guardrails.

Outcomes arrive continuously and the rule is evaluated after every batch, so a fixed-horizon test
would be peeked at thousands of times; the confidence sequences of
:mod:`twinloop.stats.sequential` hold at every sample size at once. Per metric the effect is the
canary's mean minus the champion's (Welch variance), oriented so that positive is better:

* **rollback** as soon as the primary KPI's sequence lies wholly below 0 (significant harm), or a
  guardrail's lies wholly beyond its tolerance (the canary worse than the champion by more than
  the family allows, e.g. latency 5% higher);
* **promote** when the primary KPI's sequence lies wholly above 0 and both sides have at least
  ``min_units`` outcomes (a win on a handful of units is not trusted even when valid);
* **expire** — keep the champion — once ``max_duration_s`` has passed without either;
* otherwise **continue**.

The family-wise error is split evenly (Bonferroni) over the primary KPI and the guardrails, so an
identical canary ends in rollback or promotion with probability at most ``alpha`` however often
the rule runs.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from twinloop.canary.outcomes import CanaryStats
from twinloop.contract import FrozenModel
from twinloop.sandbox.indicators import direction
from twinloop.stats import sequential
from twinloop.stats.sufficient import SampleStats

Action = Literal["continue", "rollback", "promote", "expire"]


class DecisionSettings(FrozenModel):
    """How a family's canary is judged (defaults suit a few thousand outcomes an hour)."""

    primary_kpi: str = "revenue"
    guardrails: dict[str, float] = Field(default_factory=dict, description="KPI → tolerance.")
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5, description="Family-wise error.")
    min_units: int = Field(default=200, ge=2, description="Outcomes per side before a promotion.")
    max_duration_s: float = Field(default=3_600.0, gt=0.0, description="Then keep the champion.")
    tuning_n: float = Field(default=5_000.0, gt=0.0, description="Units where the CS is tightest.")


class MetricReport(FrozenModel):
    """One metric's comparison: the oriented effect (positive = canary better) and its CS."""

    metric: str
    role: Literal["primary", "guardrail"]
    tolerance: float = 0.0
    n_champion: int
    n_canary: int
    mean_champion: float | None
    mean_canary: float | None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    p_value: float | None = None


class Verdict(FrozenModel):
    """What the rule says now, why, and the numbers it said it from."""

    action: Action
    reason: str
    metrics: list[MetricReport]
    alpha_per_test: float


def _mean(stats: SampleStats) -> float | None:
    return stats.mean if stats.n else None


def compare(
    metric: str,
    champion: SampleStats,
    canary: SampleStats,
    settings: DecisionSettings,
    alpha: float,
    tolerance: float | None = None,
) -> MetricReport:
    """Oriented effect of the canary on ``metric``; a guardrail (``tolerance``) shifts it by the
    harm allowed: estimate = canary - (1 ± tolerance)·champion, positive when within tolerance."""
    role: Literal["primary", "guardrail"] = "primary" if tolerance is None else "guardrail"
    report = MetricReport(
        metric=metric,
        role=role,
        tolerance=tolerance or 0.0,
        n_champion=champion.n,
        n_canary=canary.n,
        mean_champion=_mean(champion),
        mean_canary=_mean(canary),
    )
    if champion.n < 2 or canary.n < 2:
        return report
    sign = 1.0 if direction(metric) == "higher" else -1.0
    scale = 1.0 - sign * (tolerance or 0.0)  # lower-is-better: canary may be (1 + t)× champion
    estimate = sign * (canary.mean - scale * champion.mean)
    variance = canary.variance / canary.n + scale * scale * champion.variance / champion.n
    if not variance > 0 or not math.isfinite(variance):
        return report
    n_total = champion.n + canary.n
    cs = sequential.interval(estimate, variance, n_total, alpha, settings.tuning_n)
    p = sequential.p_value(estimate, variance, n_total, alpha, settings.tuning_n)
    return report.model_copy(
        update={"estimate": estimate, "lower": cs.lower, "upper": cs.upper, "p_value": p}
    )


def decide(
    stats: CanaryStats,
    champion: str,
    canary: str,
    settings: DecisionSettings,
    elapsed_s: float,
) -> Verdict:
    """The rule of the module docstring on the statistics measured so far."""
    alpha = settings.alpha / (1 + len(settings.guardrails))
    kpi = settings.primary_kpi
    primary = compare(kpi, stats.metric(champion, kpi), stats.metric(canary, kpi), settings, alpha)
    guards = [
        compare(
            name, stats.metric(champion, name), stats.metric(canary, name), settings, alpha, tol
        )
        for name, tol in sorted(settings.guardrails.items())
    ]
    reports = [primary, *guards]

    def verdict(action: Action, reason: str) -> Verdict:
        return Verdict(action=action, reason=reason, metrics=reports, alpha_per_test=alpha)

    if primary.upper is not None and primary.upper < 0:
        return verdict("rollback", f"{kpi}: the canary is significantly worse")
    for guard in guards:
        if guard.upper is not None and guard.upper < 0:
            return verdict(
                "rollback", f"guardrail {guard.metric}: worse than its {guard.tolerance:g} allows"
            )
    enough = min(primary.n_champion, primary.n_canary) >= settings.min_units
    if primary.lower is not None and primary.lower > 0 and enough:
        return verdict("promote", f"{kpi}: the canary is significantly better")
    if elapsed_s >= settings.max_duration_s:
        return verdict("expire", f"no decision within {settings.max_duration_s:g} s")
    return verdict("continue", "no significant difference yet")
