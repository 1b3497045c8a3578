"""Improvement hypotheses: one per root cause, ranked by expected gain × confidence, each testable.

Every hypothesis names the root cause it answers, what to change, the gain expected if it is
right — the cause's share of the loss times the money lost per month (or times the key metric's
relative loss when the loss cannot be priced) — and a **validation plan**: a sandbox
head-to-head spec (:class:`~twinloop.sandbox.specs.HeadToHeadSpec`, ``kind: compare``) that the
sandbox runs as is (``POST /sandbox/compare`` or ``run_head_to_head``). The baseline is the
loser as the twin knows it, the challenger the loser with the fix applied:

* a segment cause → the loser with the winner's accuracy (or latency) in that segment, as a
  ``segment_overrides`` entry when the twin has a segment of that name, else everywhere;
* a chain from latency → the winner's latency; from accuracy → the winner's accuracy; from
  calls or cost → the winner's cost per call; from elsewhere → the winner's whole profile;
* SRM → winner against loser in the twin: does the loss reproduce without the assignment bug?
* a fading novelty effect → winner against loser over twice the days.

The winner's and loser's twin profiles come from :mod:`twinloop.analysis.profiles`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field

from twinloop.analysis.causes import RootCause
from twinloop.analysis.chains import node_of
from twinloop.analysis.decision import Decision
from twinloop.analysis.impact import BusinessImpact
from twinloop.analysis.inputs import AbTestResult, MetricInput
from twinloop.analysis.profiles import P95_OVER_P50, Profiles, accuracy_value, twin_profiles
from twinloop.analysis.settings import AnalyzerSettings
from twinloop.contract import FrozenModel
from twinloop.sandbox.indicators import REPLICATE_KPIS
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.sim.domains import environment as preset_environment
from twinloop.sim.models import ModelProfile, SegmentOverride

GainUnit = Literal["money_per_month", "relative_loss"]
_KPI_OF_NODE = {
    "conversion": "conversion_rate",
    "revenue": "revenue",
    "satisfaction": "satisfaction",
    "accuracy": "model_accuracy",
    "latency": "latency_p50_ms",
    "cost": "profit",
    "calls": "profit",
}


class ValidationPlan(FrozenModel):
    """A runnable sandbox head-to-head and what result would confirm the hypothesis."""

    spec: HeadToHeadSpec
    confirm_if: str
    notes: tuple[str, ...] = ()


class Hypothesis(FrozenModel):
    """One thing to try, why, what it should win, and how to check it in the twin."""

    rank: int
    title: str
    action: str
    root_cause: str = Field(description="id of the root cause it answers")
    expected_gain: float
    gain_unit: GainUnit
    confidence: float
    score: float = Field(description="expected_gain × confidence: the ranking key")
    validation: ValidationPlan


def hypotheses(
    causes: Sequence[RootCause],
    decision: Decision,
    impact: BusinessImpact,
    result: AbTestResult,
    metrics: Mapping[str, MetricInput],
    settings: AnalyzerSettings,
) -> list[Hypothesis]:
    """One hypothesis per root cause, best ``expected_gain × confidence`` first."""
    env = result.environment or settings.sandbox_environment
    twin_segments = set(_twin_segments(env))
    profiles = twin_profiles(result, decision, metrics, causes, twin_segments)
    kpis = _kpis(decision, metrics)
    found = []
    for cause in causes:
        made = _for_cause(cause, profiles, twin_segments, metrics)
        if made is None:
            continue
        title, action, challenger, confirm, notes, days = made
        baseline = profiles.loser
        if challenger.name == baseline.name:
            challenger = challenger.model_copy(update={"name": f"{baseline.name}-fixed"})
        # Validated from plain JSON, exactly as the sandbox will read it: runnable as is.
        spec = HeadToHeadSpec.model_validate(
            {
                "environment": env,
                "days": settings.sandbox_days * days,
                "seed": settings.sandbox_seed,
                "replicates": settings.sandbox_replicates,
                "kpis": kpis,
                "baseline": baseline.model_dump(mode="json"),
                "challenger": challenger.model_dump(mode="json"),
            }
        )
        gain, unit = _gain(cause, impact)
        found.append(
            Hypothesis(
                rank=0,
                title=title,
                action=action,
                root_cause=cause.id,
                expected_gain=gain,
                gain_unit=unit,
                confidence=cause.confidence,
                score=gain * cause.confidence,
                validation=ValidationPlan(spec=spec, confirm_if=confirm, notes=notes),
            )
        )
    found.sort(key=lambda h: (-h.score, h.root_cause))
    return [
        h.model_copy(update={"rank": i + 1}) for i, h in enumerate(found[: settings.max_hypotheses])
    ]


Made = tuple[str, str, ModelProfile, str, tuple[str, ...], float]


def _for_cause(
    cause: RootCause,
    profiles: Profiles,
    twin_segments: set[str],
    metrics: Mapping[str, MetricInput],
) -> Made | None:
    beats = (
        f"the challenger beats {profiles.loser.name} on the primary KPIs (paired interval above 0)"
    )
    if cause.kind == "segment" and cause.segment is not None:
        return _segment_fix(cause, profiles, twin_segments, metrics, beats)
    if cause.kind == "metric_chain" and cause.chain is not None:
        return _chain_fix(cause.chain.nodes[0], cause.chain.label, profiles, beats)
    if cause.kind == "data_quality" and cause.quality is not None:
        return _quality_check(cause.quality.code, profiles)
    return None


def _chain_fix(root: str, path: str, profiles: Profiles, beats: str) -> Made:
    """The loser with the winner's value at the chain's root (its whole profile if unmodelled)."""
    winner, loser = profiles.winner, profiles.loser
    if root == "latency":
        fixed = loser.model_copy(
            update={
                "latency_p50_ms": winner.latency_p50_ms,
                "latency_p95_ms": winner.latency_p95_ms,
            }
        )
        return (
            f"Cut {loser.name}'s latency to {winner.name}'s level",
            f"bring p50 latency from {loser.latency_p50_ms:.0f} ms to "
            f"{winner.latency_p50_ms:.0f} ms (serving, caching, a smaller model) to "
            f"stop the {path} loss",
            fixed,
            beats,
            (),
            1.0,
        )
    if root == "accuracy":
        return _accuracy_fix(path, profiles, beats)
    if root in ("calls", "cost"):
        fixed = loser.model_copy(update={"cost_per_call": winner.cost_per_call})
        return (
            f"Cut {loser.name}'s serving cost",
            f"fewer or cheaper model calls ({path})",
            fixed,
            beats,
            (),
            1.0,
        )
    fixed = winner.model_copy(update={"name": f"{loser.name}-as-{winner.name}"})
    return (
        f"Find what {winner.name} does differently along {path}",
        f"{path} starts at {root}, which the twin does not model directly: test "
        f"{winner.name}'s profile as the upper bound of a fix",
        fixed,
        beats,
        (),
        1.0,
    )


def _accuracy_fix(path: str, profiles: Profiles, beats: str) -> Made:
    """The winner's accuracy everywhere: the loser's per-segment blind spots go too."""
    winner, loser = profiles.winner, profiles.loser
    kept = {
        name: o.model_copy(update={"accuracy": None})
        for name, o in loser.segment_overrides.items()
        if o.latency_p50_ms is not None or o.latency_p95_ms is not None
    }
    fixed = loser.model_copy(update={"accuracy": winner.accuracy, "segment_overrides": kept})
    spots = ", ".join(
        f"{o.accuracy:.2f} on {name}"
        for name, o in sorted(loser.segment_overrides.items())
        if o.accuracy is not None
    )
    now = f"{loser.accuracy:.3f}" + (f" ({spots})" if spots else "")
    return (
        f"Recover {loser.name}'s accuracy",
        f"retrain or fix features to bring accuracy from {now} to "
        f"{winner.accuracy:.3f} everywhere, which drives {path}",
        fixed,
        beats,
        (),
        1.0,
    )


def _quality_check(code: str, profiles: Profiles) -> Made | None:
    """Winner against loser in the twin: does the loss survive the data-quality problem?"""
    winner, loser = profiles.winner, profiles.loser
    reference = winner.model_copy(update={"name": f"{winner.name}-reference"})
    if code == "srm":
        return (
            "Fix the assignment and re-run the test",
            "the sample ratio does not match the plan, so the loss may be an artefact; "
            "check the assignment and logging, then re-run",
            reference,
            f"{winner.name} still beats {loser.name} in the twin: the loss "
            "is real, not an artefact of the broken assignment",
            (),
            1.0,
        )
    if code == "novelty":
        return (
            "Run the test longer before deciding",
            "the loss is concentrated in the first days (novelty or change aversion); "
            "extend the test to measure the long-run effect",
            reference,
            f"{winner.name} still beats {loser.name} over the longer run",
            ("runs twice the usual days",),
            2.0,
        )
    return None


def _segment_fix(
    cause: RootCause,
    profiles: Profiles,
    twin_segments: set[str],
    metrics: Mapping[str, MetricInput],
    beats: str,
) -> Made:
    assert cause.segment is not None
    loser = profiles.loser
    label = cause.segment.label
    by_node = {node_of(metrics[f.metric]): f for f in cause.segment.findings if f.metric in metrics}
    values = set(cause.segment.element.values())
    in_twin = sorted(values & twin_segments)
    notes: tuple[str, ...] = ()
    fix: dict[str, float] = {}
    accuracy = by_node.get("accuracy")
    latency = by_node.get("latency")
    if accuracy is not None and accuracy_value(accuracy.winner_mean) is not None:
        fix["accuracy"] = accuracy_value(accuracy.winner_mean)  # type: ignore[assignment]
        what = f"accuracy on {label} back to {fix['accuracy']:.3f}"
    elif latency is not None and latency.winner_mean:
        fix["latency_p50_ms"] = latency.winner_mean
        fix["latency_p95_ms"] = latency.winner_mean * P95_OVER_P50
        what = f"latency on {label} back to {latency.winner_mean:.0f} ms"
    else:
        fix["accuracy"] = profiles.winner.accuracy
        what = f"{profiles.winner.name}'s accuracy on {label}"
        notes += ("the segment's loss is not in accuracy or latency; the plan raises accuracy",)
    if in_twin:
        overrides = dict(loser.segment_overrides)
        for segment in in_twin:
            current = overrides.get(segment, SegmentOverride())
            overrides[segment] = current.model_copy(update=fix)
        challenger = loser.model_copy(update={"segment_overrides": overrides})
    else:
        challenger = loser.model_copy(update=fix)
        notes += (
            f"the twin has no segment named {sorted(values)}: the fix is applied to every "
            "segment, an upper bound",
        )
    return (
        f"Fix {loser.name} on {label}",
        f"retrain or fine-tune with more {label} examples (or route {label} to "
        f"{profiles.winner.name}) to bring {what}",
        challenger,
        beats,
        notes,
        1.0,
    )


@functools.lru_cache(maxsize=16)
def _twin_segments(env: str) -> frozenset[str]:
    """Segment names of a sandbox preset (cached: building a preset takes a millisecond)."""
    return frozenset(s.name for s in preset_environment(env).segments)


def _gain(cause: RootCause, impact: BusinessImpact) -> tuple[float, GainUnit]:
    if impact.per_month is not None and impact.per_month > 0:
        return cause.share * impact.per_month, "money_per_month"
    loss = impact.key_relative_loss if impact.key_relative_loss is not None else 0.0
    return cause.share * max(loss, 0.0), "relative_loss"


def _kpis(decision: Decision, metrics: Mapping[str, MetricInput]) -> list[str]:
    """The twin KPIs matching the key metric, then conversion rate and revenue."""
    wanted = []
    key = decision.key_metric
    if key is not None and key in metrics:
        wanted.append(_KPI_OF_NODE.get(node_of(metrics[key]), "revenue"))
    wanted += ["conversion_rate", "revenue"]
    return [k for i, k in enumerate(wanted) if k in REPLICATE_KPIS and k not in wanted[:i]]
