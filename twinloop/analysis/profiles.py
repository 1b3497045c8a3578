"""The twin profiles of an A/B test's winner and loser: given, or read off the test's metrics.

Profiles come from ``AbTestResult.models`` when given, else from the metrics: accuracy from an
accuracy metric (a value above 1 is read as per cent), latency p50 from a latency metric
(p95 = 2 × p50), cost per call from the business parameters. A derived loser profile carries the
segment blind spots the root causes found as ``segment_overrides``, so the sandbox can test a fix
for exactly those segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from twinloop.analysis.causes import RootCause
from twinloop.analysis.decision import Decision
from twinloop.analysis.inputs import AbTestResult, MetricInput
from twinloop.sim.models import ModelProfile, SegmentOverride

P95_OVER_P50 = 2.0


@dataclass(frozen=True)
class Profiles:
    """The twin profiles of the winner and the loser."""

    winner: ModelProfile
    loser: ModelProfile


def twin_profiles(
    result: AbTestResult,
    decision: Decision,
    metrics: Mapping[str, MetricInput],
    causes: Sequence[RootCause],
    twin_segments: set[str],
) -> Profiles:
    """Both profiles; a derived loser profile carries its segment blind spots as overrides."""
    winner = _profile(decision.winner, result, decision, metrics, "control")
    loser = _profile(decision.loser, result, decision, metrics, "treatment")
    if decision.loser in result.models:
        return Profiles(winner, loser)
    overrides = dict(loser.segment_overrides)
    outside: list[float] = []
    for cause in causes:
        if cause.segment is None:
            continue
        for finding in cause.segment.findings:
            meta = metrics.get(finding.metric)
            inside = accuracy_value(finding.loser_mean)
            if meta is None or meta.kind != "accuracy" or inside is None:
                continue
            for segment in sorted(set(finding.element.values()) & twin_segments):
                overrides.setdefault(segment, SegmentOverride(accuracy=inside))
                rest = accuracy_value(finding.outside_loser_mean)
                if rest is not None:
                    outside.append(rest)
    if overrides:
        update: dict[str, object] = {"segment_overrides": overrides}
        if outside:
            update["accuracy"] = outside[0]  # the loser's accuracy where it has no blind spot
        loser = loser.model_copy(update=update)
    return Profiles(winner, loser)


def _profile(
    name: str,
    result: AbTestResult,
    decision: Decision,
    metrics: Mapping[str, MetricInput],
    side: Literal["control", "treatment"],
) -> ModelProfile:
    """The variant's twin profile: given, or read off its accuracy and latency metrics."""
    if name in result.models:
        return result.models[name].model_copy(update={"name": name[:128]})
    update: dict[str, float] = {}
    for comparison in decision.comparisons:
        meta = metrics.get(comparison.metric)
        mean = getattr(comparison, side).mean
        if meta is None or mean is None:
            continue
        if meta.kind == "accuracy" and "accuracy" not in update:
            value = accuracy_value(mean)
            if value is not None:
                update["accuracy"] = value
        elif meta.kind == "latency" and "latency_p50_ms" not in update and mean > 0:
            update["latency_p50_ms"] = float(mean)
            update["latency_p95_ms"] = float(mean) * P95_OVER_P50
    business = result.business
    if business is not None and business.cost_per_call is not None:
        update["cost_per_call"] = business.cost_per_call
    return ModelProfile.model_validate({"name": name[:128], **update})


def accuracy_value(value: float | None) -> float | None:
    """An accuracy in [0, 1]; values in (1, 100] are read as per cent."""
    if value is None or value < 0:
        return None
    if value <= 1:
        return float(value)
    return float(value) / 100.0 if value <= 100 else None
