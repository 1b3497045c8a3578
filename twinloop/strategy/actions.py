"""One plan action from one hypothesis: owning agent, uplift, cost, ROI and training plan.

The owner follows from what the hypothesis' validation plan changes in the loser: accuracy →
``ml_pipeline`` (retraining), latency or cost per call → ``performance`` (serving), a data-quality
check → ``qa``, anything else → ``business``. The decision-policy action always belongs to
``business``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.analysis.hypotheses import Hypothesis
from twinloop.analysis.profiles import accuracy_value
from twinloop.sandbox.specs import HeadToHeadSpec
from twinloop.strategy.costs import action_cost, rows_for_gain
from twinloop.strategy.models import (
    Action,
    Estimate,
    PlanSettings,
    SandboxEvidence,
    TrainingPlan,
    Uplift,
)

ALL_SEGMENTS = "all"


def agent_of(h: Hypothesis, cause_kind: str) -> str:
    """Which agent owns the fix, from what the challenger changes in the baseline."""
    if cause_kind == "data_quality":
        return "qa"
    base = h.validation.spec.baseline.model_dump()
    new = h.validation.spec.challenger.model_dump()
    overrides = (base.get("segment_overrides") or {}, new.get("segment_overrides") or {})

    def changed(field: str) -> bool:
        names = set(overrides[0]) | set(overrides[1])
        per_segment = any(
            (overrides[0].get(n) or {}).get(field) != (overrides[1].get(n) or {}).get(field)
            for n in names
        )
        return base.get(field) != new.get(field) or per_segment

    if changed("accuracy"):
        return "ml_pipeline"
    if changed("latency_p50_ms") or changed("cost_per_call"):
        return "performance"
    return "business"


def uplift_of(
    h: Hypothesis | None,
    evidence: SandboxEvidence | None,
    scale: float | None,
    share_interval: Estimate | None,
) -> Uplift:
    """Sandbox evidence when it ran; else the analyzer's what-if (the cause's share of the loss)."""
    if evidence is not None and evidence.relative is not None:
        measured = evidence.relative
        return Uplift(
            source="sandbox",
            kpi=evidence.kpi,
            relative=measured,
            money_per_month=measured.scaled(scale) if scale is not None else None,
            evidence=evidence,
            note=f"measured: {evidence.challenger} vs {evidence.baseline} over "
            f"{evidence.replicates} paired replicates; money = relative gain × the loser's "
            "money per month",
        )
    if h is None:
        return Uplift(
            source="none",
            kpi=None,
            relative=None,
            money_per_month=None,
            note="not estimated: no sandbox run and no what-if for this action",
        )
    money: Estimate | None
    relative: Estimate | None
    if h.gain_unit == "money_per_month":
        money = share_interval or Estimate(
            estimate=h.expected_gain, lower=h.expected_gain, upper=h.expected_gain
        )
        relative = money.scaled(1.0 / scale) if scale else None
    else:
        money = None
        relative = Estimate(estimate=h.expected_gain, lower=h.expected_gain, upper=h.expected_gain)
    return Uplift(
        source="what_if",
        kpi=h.validation.spec.kpis[0] if h.validation.spec.kpis else None,
        relative=relative,
        money_per_month=money,
        note="what-if: the cause's share of the measured loss returns if the cause is removed "
        "(analyzer estimate, not run in the twin)",
    )


def labelled_rows(
    h: Hypothesis, analysis: FailureAnalysis, settings: PlanSettings
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Rows per segment to prove the accuracy gain sought (power analysis), with notes."""
    cause = next(c for c in analysis.root_causes if c.id == h.root_cause)
    accuracy_metrics = {m.name for m in analysis.metrics if m.kind == "accuracy"}
    pairs: dict[str, tuple[float, float]] = {}
    if cause.segment is not None:
        for f in cause.segment.findings:
            p0, p1 = accuracy_value(f.loser_mean), accuracy_value(f.winner_mean)
            if f.metric in accuracy_metrics and p0 is not None and p1 is not None:
                for value in cause.segment.element.values():
                    pairs[value] = (p0, p1)
    else:
        for ft in analysis.failure_types:
            p0, p1 = accuracy_value(ft.loser_value), accuracy_value(ft.winner_value)
            if ft.metric in accuracy_metrics and p0 is not None and p1 is not None:
                pairs[ALL_SEGMENTS] = (p0, p1)
    notes: tuple[str, ...] = ()
    if not pairs:
        names = list(cause.segment.element.values()) if cause.segment else [ALL_SEGMENTS]
        p1 = 0.5 + settings.default_accuracy_gain
        pairs = {n: (0.5, p1) for n in names}
        notes = (f"no accuracy measured for this cause: assumed a gain of 0.50 → {p1:.2f}",)
    rows = {
        name: rows_for_gain(p0, p1, settings.alpha, settings.power)
        for name, (p0, p1) in sorted(pairs.items())
    }
    return rows, notes


def training_plan(
    rows: dict[str, int], environment: str, spt: float, settings: PlanSettings
) -> TrainingPlan:
    """The retraining search's input: the data, the recipe grid, resources and wall time."""
    segments = tuple(rows)
    weights: list[dict[str, float]] = [{}]
    weights += [{s: 2.0 for s in segments if s != ALL_SEGMENTS}] if segments else []
    space: dict[str, list[Any]] = {
        "l2": [0.1, 1.0, 10.0],
        "interactions": [True, False],
        "segment_weights": [w for i, w in enumerate(weights) if w or i == 0],
    }
    trials = settings.tune_trials
    parallel = max(1, min(settings.cluster_cpus, trials))
    return TrainingPlan(
        segments=segments,
        rows_per_segment=rows,
        data_source=f"twin ground truth of {environment!r} (or the user's labelled Parquet)",
        search_space=space,
        trials=trials,
        cpus_per_trial=1.0,
        gpus_per_trial=settings.gpus_per_trial,
        cluster_cpus=settings.cluster_cpus,
        estimated_wall_seconds=trials * spt / parallel,
    )


def action_for(
    h: Hypothesis,
    analysis: FailureAnalysis,
    evidence: SandboxEvidence | None,
    scale: float | None,
    spt: float,
    settings: PlanSettings,
    slug: Callable[[str], str],
) -> Action:
    """The plan action answering one hypothesis."""
    cause = next(c for c in analysis.root_causes if c.id == h.root_cause)
    agent = agent_of(h, cause.kind)
    interval = analysis.impact.per_month_interval
    share = (
        Estimate(
            estimate=h.expected_gain,
            lower=cause.share * interval.lower,
            upper=cause.share * interval.upper,
        )
        if interval is not None and h.gain_unit == "money_per_month"
        else None
    )
    uplift = uplift_of(h, evidence, scale, share)
    rows: dict[str, int] = {}
    notes = h.validation.notes
    plan = None
    trials = {"ml_pipeline": settings.tune_trials, "performance": settings.serving_trials}
    if agent == "ml_pipeline":
        rows, more = labelled_rows(h, analysis, settings)
        notes += more
        env = h.validation.spec.environment
        plan = training_plan(rows, env if isinstance(env, str) else env.name, spt, settings)
    cost = action_cost(
        agent,
        measured_cpu_seconds=evidence.replicate_seconds if evidence else 0.0,
        trials=trials.get(agent, 1),
        seconds_per_trial=spt,
        labelled_rows=rows,
        segments_at_risk=[s for s in rows if s != ALL_SEGMENTS],
        settings=settings,
        measured=spt != settings.assumed_seconds_per_trial,
    )
    return Action(
        id=slug(h.root_cause),
        rank=0,
        title=h.title,
        description=h.action,
        failure=cause.metrics,
        root_cause=h.root_cause,
        agent=agent,
        uplift=uplift,
        cost=cost,
        roi=_roi(uplift, cost.total_money),
        training_plan=plan,
        validation=h.validation.spec.model_dump(mode="json"),
        notes=notes,
    )


def policy_action(
    analysis: FailureAnalysis,
    evidence: SandboxEvidence | None,
    spec: HeadToHeadSpec | None,
    scale: float | None,
    spt: float,
    settings: PlanSettings,
) -> Action:
    """Move the loser's decision threshold for the business KPI: no retraining needed."""
    loser = analysis.decision.loser
    uplift = uplift_of(None, evidence, scale, None)
    cost = action_cost(
        "business",
        measured_cpu_seconds=evidence.replicate_seconds if evidence else 0.0,
        trials=settings.threshold_trials,
        seconds_per_trial=spt,
        labelled_rows={},
        segments_at_risk=[],
        settings=settings,
        measured=spt != settings.assumed_seconds_per_trial,
    )
    notes = () if evidence else ("needs the loser's real model (a predictor) to be measured",)
    return Action(
        id="policy-threshold",
        rank=0,
        title=f"Tune {loser}'s decision threshold for the business KPI",
        description="choose the score threshold (per segment) that maximises revenue in the "
        "twin instead of accuracy; the model itself is unchanged",
        failure=tuple(analysis.decision.deciding_metrics),
        root_cause="policy:threshold",
        agent="business",
        uplift=uplift,
        cost=cost,
        roi=_roi(uplift, cost.total_money),
        validation=spec.model_dump(mode="json") if spec is not None else None,
        notes=notes,
    )


def _roi(uplift: Uplift, cost: float) -> Estimate | None:
    if uplift.money_per_month is None or cost <= 0:
        return None
    return uplift.money_per_month.scaled(1.0 / cost)
