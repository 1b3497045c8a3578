"""The report's sections on the improvement loop: timeline, plan, championship, canary, KPIs.

Read from ``DemoResult.loop`` (a :class:`~twinloop.demo.results.LoopStep`); a run without the
loop has none of these sections.
"""

from __future__ import annotations

from typing import Any

from twinloop.demo.results import LoopStep
from twinloop.loop.championship_stage import relative
from twinloop.report import loop_plots
from twinloop.report.html import Image, Section

LOOP_SECTION_IDS = ("loop-timeline", "loop-plan", "loop-championship", "loop-canary", "loop-kpis")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "n/a" if x is None else format(x, fmt)


def loop_summary(loop: LoopStep) -> str:
    """One line: where the improvement ended and what production measured."""
    canary = loop.canary or {}
    end = loop.stage or "not started"
    measured = canary.get("measured_effect")
    tail = f"; production measured revenue {_pct(measured)}" if canary else ""
    return (
        f"Improvement loop: {end} ({loop.status}); champion of {loop.family} is now "
        f"{loop.champion}{tail}."
    )


def _timeline(loop: LoopStep) -> Section:
    bars = [
        loop_plots.StageBar(r.stage, r.seconds or 0.0, r.status == "done") for r in loop.timeline
    ]
    table = [["stage", "status", "seconds", "decision", "what happened"]] + [
        [r.stage, r.status, _num(r.seconds, ".1f"), r.decision or "→ next", r.summary]
        for r in loop.timeline
    ]
    total = sum(r.seconds or 0.0 for r in loop.timeline)
    return Section(
        id="loop-timeline",
        title="7. The improvement loop: timeline",
        images=[Image(loop_plots.timeline(bars), "stage timeline")],
        meaning=[
            f"{loop.improvement_id}: the failure above handed to the loop for family "
            f"{loop.family} (champion model-v3 as v2). Each stage's output is a Store document; "
            "a driver killed at any point resumes from the last finished stage.",
            f"It ended {loop.stage} ({loop.status}) after {total:.0f} s of stage time."
            + (f" Reason: {loop.reason}" if loop.reason else ""),
        ],
        wide=True,
        certainty="wall seconds per stage on this machine; decisions are a function of the seed.",
        table=table,
    )


def _plan(loop: LoopStep) -> Section:
    table = [["rank", "action", "agent", "plan value", "expected", "chosen"]] + [
        [str(p.plan_rank), p.title, p.agent, _num(p.value), _num(p.expected),
         "yes" if p.chosen else ""]
        for p in loop.plan
    ]  # fmt: skip
    return Section(
        id="loop-plan",
        title="8. The plan: ranked actions",
        images=[],
        meaning=[
            "The strategy generator's actions for the analysed failure, each owned by an agent. "
            "Value is the plan's ROI (money per month per unit of one-off cost) or, without "
            "money, the relative uplift; expected = value × the posterior probability that "
            "actions of that kind fixed failures with these patterns before (cross-model "
            "learning). The best expected action is executed.",
        ],
        wide=True,
        certainty="ROI and uplift are estimates with intervals in the stored plan document.",
        table=table,
    )


def _matrix(decision: Any) -> list[list[str]]:
    result = decision.result
    names = [result.champion, *[n for n in result.entrants if n != result.champion]]
    prob = {(p.a, p.b): p.prob_a_better for p in result.pairwise}
    prob |= {(p.b, p.a): 1.0 - p.prob_a_better for p in result.pairwise}
    header = ["P(row beats column)", *names]
    rows = [[a, *("—" if a == b else _num(prob.get((a, b)), ".3f") for b in names)] for a in names]
    return [header, *rows]


def _championship(loop: LoopStep) -> Section:
    decision = loop.championship
    if decision is None:
        return Section(
            id="loop-championship", title="9. The championship", images=[],
            meaning=["No championship was held: " + (loop.reason or "the loop stopped before")],
            certainty="n/a",
        )  # fmt: skip
    result = decision.result
    conf = result.confirmation
    gates = [] if conf is None else [
        f"{g.gate}: {'pass' if g.passed else 'FAIL'}"
        + ("" if g.probability is None else f" (P {g.probability:.3f})")
        for g in conf.gates
    ]  # fmt: skip
    return Section(
        id="loop-championship",
        title="9. The championship: candidates vs the champion in the loop's twin",
        images=[],
        meaning=[
            f"Round robin on common random numbers ({result.replicates} replicates per pair) in "
            f"the loop's own twin ({loop.twin_environment}), then the top candidate re-run on "
            f"{result.confirmation_replicates} fresh seeds it was never selected on "
            "(the winner's curse). Only the confirmation's numbers pass the gates.",
            f"Verdict: {decision.verdict}; winner {decision.winner or 'none'}. "
            + "; ".join(decision.reasons),
            "Gates on the confirmation run: " + (", ".join(gates) or "none run") + ".",
        ],
        wide=True,
        certainty=f"primary KPI {result.primary_kpi}: P(better) ≥ the family's gate on fresh "
        "seeds; guardrails and segments within tolerance.",
        table=_matrix(decision),
    )


def _canary(loop: LoopStep) -> Section:
    canary = loop.canary or {}
    points = [
        loop_plots.CanaryPoint(p["units"], p["estimate"], p["lower"], p["upper"])
        for p in canary.get("trace", [])
        if None not in (p.get("estimate"), p.get("lower"), p.get("upper"))
    ]
    action = str(canary.get("action", "none"))
    units = canary.get("units") or {}
    return Section(
        id="loop-canary",
        title="10. The canary on Ray Serve, judged by production",
        images=[Image(loop_plots.canary_trace(points, action), "canary live intervals")],
        meaning=[
            "The family is served on Ray Serve (router + multiplexed model + the Canary "
            "deployment that monitors it). Hidden production — the world the A/B test ran in, "
            "never seen by the loop's twin — sends sales territories to the served router, which "
            "assigns each, sticky, to the champion or the candidate; the revenue production's "
            "ground truth gives them is posted back as outcome events.",
            f"The Canary's always-valid sequential rule decided: {action} — "
            f"{canary.get('reason', 'no decision')}. Measured revenue effect "
            f"{_pct(canary.get('measured_effect'))} (interval {_pct(canary.get('measured_lower'))}"
            f" to {_pct(canary.get('measured_upper'))}); the twin predicted "
            f"{_pct(_predicted(loop))}.",
        ],
        wide=True,
        certainty="confidence sequences hold at every batch at once (peeking is allowed); "
        + ", ".join(f"{v}: {n} territories" for v, n in units.items()),
    )


def _predicted(loop: LoopStep) -> float | None:
    decision = loop.championship
    if decision is None or decision.result.confirmation is None:
        return None
    return relative(decision.result.confirmation.primary)[0]


def _kpis(loop: LoopStep) -> Section:
    k = loop.kpis
    twin = k.simulation_accuracy
    rows = [
        ["improvements in the store", str(k.improvements)],
        ["decided / promoted", f"{k.decided} / {k.promoted}"],
        ["improvement rate", _num(k.improvement_rate, ".0%")],
        ["time to improvement (median)", _num(k.time_to_improvement_seconds, ".0f") + " s"],
        ["simulation accuracy: pairs", str(twin.pairs)],
        ["simulation accuracy: mean error (measured − predicted)", _pct(twin.mean_error)],
        ["pattern detection rate", _num(k.pattern_detection_rate, ".0%")],
    ]
    return Section(
        id="loop-kpis",
        title="11. The loop's KPIs (from the Store)",
        images=[],
        meaning=[
            "The seed's KPIs over every improvement in this store (GET /kpis serves the same): "
            "how many failures ended promoted, how long from failure to promotion, and how well "
            "the twin's predicted effect matched the effect the canary measured.",
        ],
        certainty="counts grow with each run into the same store; correlation needs ≥ 3 pairs.",
        table=[["KPI", "value"], *rows],
    )


def loop_sections(loop: LoopStep | None) -> list[Section]:
    """The loop's five sections (none without a loop)."""
    if loop is None:
        return []
    return [_timeline(loop), _plan(loop), _championship(loop), _canary(loop), _kpis(loop)]
