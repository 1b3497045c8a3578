"""From a ``DemoResult`` to the report: plots, the text beside them, report.html and report.json.

Each section says in plain words what the plot means and how sure we are, with the numbers that
back it (intervals, probabilities, replicate counts). The five-line summary printed by the CLI is
the same as the one at the top of the page.
"""

from __future__ import annotations

from pathlib import Path

from twinloop.contract import FrozenModel
from twinloop.demo.results import DemoResult
from twinloop.errors import InvalidInput
from twinloop.report import plots
from twinloop.report.html import Image, Section, render_html
from twinloop.report.loop_sections import loop_sections, loop_summary

TITLES = {
    "revenue": "revenue per day",
    "conversion_rate": "conversion rate",
    "satisfaction": "satisfaction (0–1)",
    "latency_p50_ms": "latency p50 (ms)",
    "model_accuracy": "model accuracy",
}
SECTION_IDS = ("trajectories", "effects", "segments", "chain", "what-if", "validation")


class ReportFiles(FrozenModel):
    """Where the report went."""

    html: Path
    json_path: Path


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"


def _money(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def summary_lines(result: DemoResult) -> list[str]:
    """Five lines: the decision, the root causes, the price, the what-if, the validated fixes;
    a sixth when the improvement loop ran: where it ended."""
    a = result.analysis
    d = a.decision
    causes = ", ".join(c.id.split(":", 1)[1] for c in a.root_causes[:3])
    imp = a.impact
    interval = imp.per_month_interval
    priced = (
        f"{_money(imp.per_month)} {imp.currency}/month"
        + (f" (95% {_money(interval.lower)}–{_money(interval.upper)})" if interval else "")
        if imp.per_month is not None
        else "not priced"
    )
    sim = {k.kpi: k for k in result.what_if.simulation.kpis}
    rev = sim.get("revenue")
    confirmed = [v for v in result.validations if v.confirmed]
    loop = [] if result.loop is None else [loop_summary(result.loop)]
    return [
        f"Decision: {d.winner} beats {d.loser} ({d.status}; key metric {d.key_metric}).",
        f"Root causes: {causes}.",
        f"Cost of shipping {d.loser}: {priced}; severity {a.severity}.",
        f"What-if: {result.what_if.question} Twin: revenue "
        f"{_pct(rev.relative_change if rev else None)}.",
        f"Validated in the twin: {len(confirmed)} of {len(result.validations)} fixes win "
        f"(best: {max(result.validations, key=lambda v: v.win_rate).title}).",
        *loop,
    ]


def _trajectory_section(r: DemoResult) -> Section:
    ab = r.ab_test
    return Section(
        id="trajectories",
        title="1. The A/B test in the twin: KPI trajectories",
        images=[Image(plots.trajectories(ab.bands, TITLES), "KPI trajectories of both variants")],
        meaning=[
            f"{ab.units:,} simulated customers split "
            + " / ".join(f"{n} {w:.0%}" for n, w in ab.allocation.items())
            + f" over {ab.days:g} days in the calibrated twin ({ab.environment}).",
            "Lines are the mean over Monte Carlo reruns of the same test; shaded bands hold 90% "
            "of the reruns. Where the bands of the two variants separate, the difference is "
            "not luck of one run.",
        ],
        wide=True,
        certainty=f"{ab.replicates} reruns; the twin mirrors the shipped KPI history with mean "
        f"holdout MAPE {r.calibration.mean_mape:.1%} (fit {r.calibration.fit_quality}).",
    )


def _effects_section(r: DemoResult) -> Section:
    d = r.analysis.decision
    rows = [
        plots.ForestRow(
            label=c.metric,
            estimate=c.relative.estimate,
            lower=c.relative.interval.lower if c.relative.interval else c.relative.estimate,
            upper=c.relative.interval.upper if c.relative.interval else c.relative.estimate,
            significant=bool(c.significant),
            adverse=c.favours == "control",
        )
        for c in d.comparisons
        if c.relative is not None
    ]
    table = [["metric", "effect", "p (adjusted)"]] + [
        [c.metric, _pct(c.relative.estimate if c.relative else None),
         "n/a" if c.p_value_adjusted is None else f"{c.p_value_adjusted:.2g}"]
        for c in d.comparisons
    ]  # fmt: skip
    return Section(
        id="effects",
        title="2. What the A/B test proves: every metric's effect",
        images=[Image(plots.forest(rows), "forest plot of relative effects")],
        meaning=[
            d.summary,
            "Red: the treatment is significantly worse; green: better; grey: "
            "the interval does not rule out no effect.",
        ],
        certainty="95% intervals (Welch / delta method); p-values corrected across metrics "
        f"({d.comparisons[0].correction if d.comparisons else 'none'}).",
        table=table,
    )


def _segments_section(r: DemoResult) -> Section:
    bars = [
        plots.SegmentBar(
            label=f.label,
            metric=f.metric,
            inside=f.relative_change or 0.0,
            outside=f.outside_relative_change or 0.0,
            share_of_loss=f.share_of_loss,
        )
        for s in r.analysis.segments
        for f in s.findings
    ][:8]
    causes = [c for c in r.analysis.root_causes if c.kind == "segment"]
    meaning = [
        "The localizer searched every combination of segment and channel for the cells that "
        "carry the loss beyond the effect shared by all customers."
    ] + [f"{c.title} (confidence {c.confidence:.2f})." for c in causes[:3]]
    images = [Image(plots.segments(bars), "segments carrying the loss")] if bars else []
    return Section(
        id="segments",
        title="3. Where the loss lives: segments",
        images=images,
        meaning=meaning if bars else ["No segment stands out: the loss is spread evenly."],
        certainty="confidence is the localizer's posterior for the combination; "
        "p-values test inside vs outside.",
    )


def _chain_section(r: DemoResult) -> Section:
    chains = sorted(r.analysis.chains, key=lambda c: -c.confidence)[:2]
    images = [
        Image(
            plots.chain(
                [plots.ChainStep(k.metric, k.relative_loss, k.probability) for k in c.links],
                c.label,
            ),
            f"causal chain {c.label}",
        )
        for c in chains
    ]
    return Section(
        id="chain",
        title="4. Why: the causal chains of metrics",
        images=images,
        meaning=[
            "Failures linked through the metric graph (latency → satisfaction → conversion → "
            "revenue; accuracy → satisfaction). Each box is a failing metric with its observed "
            "loss; an arrow is a causal edge of the twin's metric graph."
        ]
        + [f"{c.label}: chain confidence {c.confidence:.2f}." for c in chains],
        certainty="P(real) per node is the probability the adverse effect is not noise; the "
        "chain's confidence is their product.",
    )


def _what_if_section(r: DemoResult) -> Section:
    w = r.what_if
    keep = ("satisfaction", "conversion_rate", "revenue", "profit")
    rename = {"conversion": "conversion_rate"}
    bars = [
        plots.WhatIfBar(rename.get(m.metric, m.metric), "metric graph", m.relative_change,
                        m.change_low, m.change_high)
        for m in w.analytic.metrics
        if rename.get(m.metric, m.metric) in keep
    ] + [
        plots.WhatIfBar(k.kpi, "twin re-run", k.relative_change or 0.0,
                        k.relative_low or 0.0, k.relative_high or 0.0)
        for k in w.simulation.kpis
        if k.kpi in keep
    ]  # fmt: skip
    return Section(
        id="what-if",
        title="5. What-if: " + w.question,
        images=[Image(plots.what_if(bars), "what-if projection")],
        meaning=[
            "Two answers to the same question. The metric graph propagates the change through "
            "prior elasticities (wide intervals: it knows little about this business); the twin "
            "re-runs the calibrated simulation with only the latency changed, on the same "
            "random numbers, so its interval is narrow.",
        ],
        certainty=f"95% intervals: {w.analytic.settings.draws} graph draws; "
        f"{w.simulation.settings.replicates} paired twin runs.",
    )


def _validation_section(r: DemoResult) -> Section:
    bars = [
        plots.ValidationBar(f"{v.title}\n({v.kpi})", v.win_rate, v.relative_difference or 0.0,
                            v.lower / abs(v.baseline_mean) if v.baseline_mean else 0.0,
                            v.upper / abs(v.baseline_mean) if v.baseline_mean else 0.0,
                            v.confirmed)
        for v in r.validations
    ]  # fmt: skip
    table = [["hypothesis", "KPI", "win-rate", "effect", "verdict"]] + [
        [v.title, v.kpi, f"{v.win_rate:.0%}", _pct(v.relative_difference),
         "confirmed" if v.confirmed else "not shown"]
        for v in r.validations
    ]  # fmt: skip
    n = r.validations[0].replicates if r.validations else 0
    return Section(
        id="validation",
        title="6. Fixes tested in the twin: hypothesis validation",
        images=[Image(plots.validations(bars), "hypothesis validation")],
        meaning=[
            "Each hypothesis's own sandbox plan, run head-to-head against model-v3 on common "
            "random numbers (both see the same customers), plus the real fix: v3 retrained "
            "with enterprise data. Win-rate = share of paired replicates the fix won.",
        ],
        wide=True,
        certainty=f"{n} paired replicates each; confirmed = the 95% paired interval excludes 0.",
        table=table,
    )


def build_sections(result: DemoResult) -> list[Section]:
    """The six sections, in the order of the story, then the loop's."""
    return [
        _trajectory_section(result),
        _effects_section(result),
        _segments_section(result),
        _chain_section(result),
        _what_if_section(result),
        _validation_section(result),
        *loop_sections(result.loop),
    ]


def render_report(result: DemoResult) -> str:
    s = result.scenario
    return render_html(
        "twinloop: model-v3 lost its A/B test — here is why, what fixes it, and the fix shipped",
        f"Sales twin, seed {s.seed}{' (reduced size)' if s.small else ''}; "
        f"the story's steps took {sum(result.timings.values()):.0f} s.",
        summary_lines(result),
        build_sections(result),
        "Generated by `twinloop demo`. Every number comes from report.json beside this file.",
    )


def write_report(result: DemoResult, out: Path) -> ReportFiles:
    """Write report.html and report.json into ``out`` (which must exist and be writable)."""
    if not out.is_dir():
        raise InvalidInput("out", f"{str(out)!r} is not a folder")
    html_path, json_path = out / "report.html", out / "report.json"
    json_path.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    html_path.write_text(render_report(result), encoding="utf-8")
    return ReportFiles(html=html_path, json_path=json_path)
