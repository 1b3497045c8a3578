"""The ``canary`` stage against a served family: predictions and outcomes over the canary API.

When the family is served (``serve_apps.family`` behind the canary routes), the stage does what a
production integration does: it starts the canary (``PUT /models/{family}/canary``), asks the
served router to score each unit (``POST /models/{family}/predict``: the router picks the version,
sticky by unit), and posts the outcomes the world gave those units
(``POST /models/{family}/outcomes``). The Canary deployment merges them and its sequential rule
decides — promote, or roll back at once; on a promotion it moves the ``champion`` alias itself.

The world here is a :class:`Production`: an environment the loop never decided in (in the demo
the hidden production the A/B test ran in), whose ground truth turns the served scores into
revenue. A unit is one sales territory: its ``rows_per_unit`` customers scored in one request,
its outcome the sum of theirs (assignment is sticky by territory). Batch ids are derived from
the stage's seed, so a driver that dies mid-canary and starts again re-posts the same batches
and the Canary merges each once; a canary already decided for this candidate is adopted, not
restarted. The protocol :class:`CanaryApi` is the
HTTP client (``serve_apps.canary_client``); this module knows nothing of Serve.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import numpy as np
from pydantic import Field

from twinloop.canary.decision import MetricReport
from twinloop.canary.traffic import unit_outcomes
from twinloop.contract import FrozenModel
from twinloop.loop.canary_stage import ENDS, measured
from twinloop.loop.machine import StageContext, StageFn, StageResult, StageUnavailable
from twinloop.registry.registry import Registry
from twinloop.sim.environment import BusinessEnvironment
from twinloop.sim.groundtruth import sample_customers

KPIS: Final = ("revenue", "conversions")


class CanaryApi(Protocol):
    """The canary routes of a served family (camelCase stays in the client)."""

    def start(self, family: str, version: str, weight: float, min_units: int) -> dict[str, Any]:
        """PUT the canary; the CanaryView as a dict."""

    def state(self, family: str) -> dict[str, Any] | None:
        """GET the CanaryView; None when the family has no canary record."""

    def predict(
        self, family: str, units: list[tuple[str, list[list[float]]]]
    ) -> list[tuple[str, list[float]]]:
        """Score each unit's rows; per unit (the version that answered, its scores)."""

    def outcomes(self, family: str, batch_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        """POST a batch of outcome events; the Outcome as a dict."""

    def rollback(self, family: str) -> dict[str, Any]:
        """Every unit back to the champion."""


class Production(FrozenModel):
    """The world that answers the canary's units, and how much traffic it sends."""

    environment: BusinessEnvironment
    seed: int = Field(ge=0, lt=2**63)
    units_per_batch: int = Field(default=100, ge=1, le=10_000)
    rows_per_unit: int = Field(default=200, ge=1, le=1_000, description="customers per territory")
    max_batches: int = Field(default=40, ge=1, description="then roll back: champion kept")
    weight: float = Field(default=0.5, gt=0.0, le=1.0, description="share of units on the canary")
    min_units: int = Field(default=200, ge=2, description="outcomes per side before a promotion")


class TracePoint(FrozenModel):
    """The canary's primary effect after a batch, relative to the champion's mean."""

    batch: int
    units: int
    estimate: float | None
    lower: float | None
    upper: float | None


def batch_traffic(
    production: Production, batch: int
) -> tuple[list[tuple[str, list[list[float]]]], np.ndarray, np.ndarray, np.random.Generator]:
    """One batch of accounts: (unit id, feature rows) and the customers' truth (intent, segment)
    and the generator of their outcomes, all a function of (seed, batch)."""
    seq = np.random.SeedSequence([production.seed, batch])
    draw, outcome = (np.random.default_rng(s) for s in seq.spawn(2))
    n, k = production.units_per_batch, production.rows_per_unit
    x, intent, segment = sample_customers(production.environment, n * k, draw)
    units = [
        (f"p{production.seed % 10**9}-{batch}-{i}", x[i * k : (i + 1) * k].round(6).tolist())
        for i in range(n)
    ]
    return units, intent, segment, outcome


def unit_events(
    production: Production,
    batch: int,
    api: CanaryApi,
    family: str,
) -> list[dict[str, Any]]:
    """Serve the batch's accounts, then the outcome event of each from production's truth."""
    units, intent, segment, rng = batch_traffic(production, batch)
    answers = api.predict(family, units)
    k = production.rows_per_unit
    events = []
    for i, ((unit, _), (version, scores)) in enumerate(zip(units, answers, strict=True)):
        rows = slice(i * k, (i + 1) * k)
        got = unit_outcomes(
            production.environment, np.asarray(scores, dtype=float), intent[rows], segment[rows],
            rng,
        )  # fmt: skip
        metrics = {kpi: float(got[kpi].sum()) for kpi in KPIS}
        events.append({"unitId": unit, "metrics": metrics, "timestamp": 0.0, "version": version})
    return events


def point(batch: int, report: MetricReport) -> TracePoint:
    effect, lower, upper = measured(report)
    return TracePoint(
        batch=batch,
        units=report.n_champion + report.n_canary,
        estimate=effect,
        lower=lower,
        upper=upper,
    )


def drive(
    api: CanaryApi, family: str, candidate: str, production: Production
) -> tuple[dict[str, Any], list[TracePoint]]:
    """Start (or resume) the canary and send traffic until it decides: the decision, the trace."""
    state = api.state(family)
    decided = None if state is None else state.get("decision")
    if decided is not None and decided.get("canary") == candidate:
        return decided, []
    running = state is not None and state.get("status") == "running"
    if not (running and state is not None and state["config"].get("canary") == candidate):
        api.start(family, candidate, production.weight, production.min_units)
    trace: list[TracePoint] = []
    for batch in range(production.max_batches):
        events = unit_events(production, batch, api, family)
        answer = api.outcomes(family, f"b{production.seed % 10**9}-{batch}", events)
        decision = answer.get("decision")
        if decision is not None:
            verdict = decision.get("verdict")
            if verdict is not None:
                trace.append(point(batch, MetricReport.model_validate(verdict["metrics"][0])))
            return decision, trace
        now = api.state(family)
        if now is not None and now.get("verdict") is not None:
            trace.append(point(batch, MetricReport.model_validate(now["verdict"]["metrics"][0])))
    api.rollback(family)
    after = api.state(family)
    assert after is not None and after.get("decision") is not None
    return after["decision"], trace


def served_canary(api: CanaryApi, production: Production) -> StageFn:
    """The canary stage over ``api``, outcomes from ``production``."""

    def canary(context: StageContext) -> StageResult:
        before = context.outputs["championship"].outcome
        candidate, champion = before.get("winner"), before.get("champion")
        if not isinstance(candidate, str) or not isinstance(champion, str):
            raise StageUnavailable("canary", "the championship promoted no challenger")
        family = context.improvement.family
        context.check_cancelled()
        decision, trace = drive(api, family, candidate, production)
        return result(Registry(context.store), family, champion, candidate, decision, trace)

    return canary


def result(
    registry: Registry,
    family: str,
    champion: str,
    candidate: str,
    decision: dict[str, Any],
    trace: list[TracePoint],
) -> StageResult:
    """The stage's output from the Canary's decision document."""
    verdict = decision.get("verdict") or {}
    metrics = verdict.get("metrics") or []
    primary = MetricReport.model_validate(metrics[0]) if metrics else None
    effect, lower, upper = measured(primary) if primary else (None, None, None)
    action = str(decision["action"])
    served = registry.alias(family, "champion").version
    outcome: dict[str, Any] = {
        "action": action, "reason": decision.get("reason"), "by": decision.get("by"),
        "champion": champion, "candidate": candidate, "served": True,
        "kpi": None if primary is None else primary.metric,
        "measured_effect": effect, "measured_lower": lower, "measured_upper": upper,
        "units": {} if primary is None else {
            champion: primary.n_champion, candidate: primary.n_canary},
        "events": decision.get("stats_events"), "batches": len(trace),
        "trace": [p.model_dump(mode="json") for p in trace], "verdict": verdict,
        "alias_moved": action == "promote" and served == candidate,
    }  # fmt: skip
    shown = "n/a" if effect is None else f"{effect:+.1%}"
    what = f"{candidate} promoted to champion" if action == "promote" else (
        f"champion {champion} kept ({action})")  # fmt: skip
    return StageResult(
        summary=f"{what} on Serve: {decision.get('reason')} "
        f"({outcome['kpi']} {shown} measured in production)",
        outcome=outcome,
        decision=ENDS[action],
    )
