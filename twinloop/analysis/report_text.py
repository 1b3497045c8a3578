"""A readable summary of a FailureAnalysis: what a person reads before the JSON."""

from __future__ import annotations

import math

from twinloop.analysis.analyzer import FailureAnalysis
from twinloop.stats.results import Interval, MetricComparison

_OUTCOME = {"better": "better", "worse": "WORSE", "inconclusive": "n.s.", "not_tested": "untested"}


def render(analysis: FailureAnalysis, *, max_items: int = 5) -> str:
    """The decision, failure types, top root causes, impact, patterns and top hypotheses."""
    d = analysis.decision
    lines = [
        f"experiment {analysis.experiment_id} ({analysis.input_form} data): {d.summary}",
        f"severity: {analysis.severity} (from {analysis.impact.severity_basis.replace('_', ' ')})",
        "",
        f"decision — effects of {d.loser} relative to {d.winner} ({_correction(d.comparisons)}):",
        f"  {'metric':<16} {'role':<10} {d.winner[:12]:>12} {d.loser[:12]:>12} {'change':>9}"
        f" {'p adj':>9}  outcome",
    ]
    for c in d.comparisons:
        change = c.relative.estimate if c.relative is not None else None
        lines.append(
            f"  {c.metric[:16]:<16} {c.role:<10} {_num(c.control.mean):>12} "
            f"{_num(c.treatment.mean):>12} {_pct(change):>9} {_p(c.p_value_adjusted):>9}  "
            f"{_OUTCOME[c.outcome]}"
        )
    lines += ["", "failure types:"]
    if not analysis.failure_types:
        lines.append("  none: the loser is not worse on any metric beyond noise or the threshold")
    for f in analysis.failure_types:
        loss = f"{f.relative_loss:.1%} worse" if f.relative_loss is not None else "worse"
        lines.append(f"  {f.type:<12} {f.metric[:20]:<20} {loss:>14}  {f.severity:<8} {f.evidence}")
    lines += ["", "top root causes (score = confidence × share of the loss):"]
    if not analysis.root_causes:
        lines.append("  none found")
    for cause in analysis.root_causes[:max_items]:
        lines.append(
            f"  {cause.rank}. [{cause.kind}] {cause.title}\n"
            f"     confidence {cause.confidence:.2f}, share {cause.share:.0%}, "
            f"score {cause.score:.2f}"
        )
    lines += _attribution(analysis)
    lines += ["", "business impact:", *_impact(analysis)]
    lines += ["", "patterns:", *_patterns(analysis)]
    lines += ["", "top hypotheses (expected gain × confidence):"]
    for h in analysis.hypotheses[:max_items]:
        spec = h.validation.spec
        gain = (
            f"{h.expected_gain:,.0f} {analysis.impact.currency}/month"
            if h.gain_unit == "money_per_month"
            else f"{h.expected_gain:.1%} on {analysis.decision.key_metric} (relative)"
        )
        lines.append(
            f"  {h.rank}. {h.title} — {h.action}\n"
            f"     expected gain {gain}, confidence {h.confidence:.2f} [{h.root_cause}]\n"
            f"     validate: sandbox compare {spec.baseline.name} vs {spec.challenger.name} in "
            f"{spec.environment if isinstance(spec.environment, str) else spec.environment.name}"
            f", {spec.days:g} days; confirmed if {h.validation.confirm_if}"
        )
    notes = [q for q in analysis.data_quality if q.severity != "info"]
    if notes:
        lines += ["", "data quality:"]
        lines += [f"  [{q.code}] {q.message}" for q in notes]
    return "\n".join(lines)


def _attribution(analysis: FailureAnalysis) -> list[str]:
    """The key metric's change split over the causes (Shapley through the fitted graph)."""
    a = analysis.attribution
    if a is None:
        return []
    level = next((c.interval.level for c in a.contributions if c.interval), 0.95)
    lines = [
        f"  {a.key_metric} change {_num(a.total)} split over its upstream causes "
        f"(Shapley through the graph fitted on the units; {level:.0%} intervals):"
    ]
    for c in a.contributions:
        moved = (
            f"{c.cause} {_num(c.winner_value)} → {_num(c.loser_value)}"
            if c.winner_value is not None
            else "not carried by the chains"
        )
        ci = f" [{_num(c.interval.lower)}, {_num(c.interval.upper)}]" if c.interval else ""
        lines.append(f"    {c.cause:<14} {_num(c.contribution):>9}{ci} = {c.share:.0%}  ({moved})")
    return lines


def _impact(analysis: FailureAnalysis) -> list[str]:
    impact = analysis.impact
    money = impact.currency
    lines = []
    if impact.per_day is not None:
        lines.append(
            f"  per day:   {impact.per_day:,.0f} {money}{_interval(impact.per_day_interval)}"
        )
    if impact.per_month is not None:
        lines.append(
            f"  per month: {impact.per_month:,.0f} {money}{_interval(impact.per_month_interval)}"
        )
    for component in impact.components:
        lines.append(
            f"  {component.metric}: {component.per_unit:,.4g} {money} lost per unit "
            f"({component.basis.replace('_', ' ')})"
        )
    if impact.key_relative_loss is not None:
        lines.append(
            f"  key metric {analysis.decision.key_metric}: {impact.key_relative_loss:.1%} worse"
        )
    lines += [f"  note: {n}" for n in impact.notes]
    return lines


def _patterns(analysis: FailureAnalysis) -> list[str]:
    report = analysis.patterns
    lines = []
    if report.similar:
        shown = ", ".join(f"{m.experiment_id} ({m.similarity:.2f})" for m in report.similar)
        lines.append(f"  similar past analyses: {report.similar_count} — {shown}")
    else:
        lines.append(f"  similar past analyses: none of {report.analyses_compared}")
    for p in report.patterns:
        recurring = ", recurring" if p.recurring else ""
        lines.append(f"  {p.name} [{p.code}]: seen {p.occurrences}×{recurring}")
    if report.pattern_detection_rate is not None:
        lines.append(f"  pattern detection rate: {report.pattern_detection_rate:.0%}")
    lines += [f"  note: {n}" for n in report.notes]
    return lines


def _correction(comparisons: tuple[MetricComparison, ...]) -> str:
    methods = {c.correction for c in comparisons if c.correction != "none"}
    return f"p adjusted by {', '.join(sorted(methods))}" if methods else "no p-values"


def _interval(interval: Interval | None) -> str:
    if interval is None:
        return ""
    return f"  [{interval.lower:,.0f}, {interval.upper:,.0f}] ({interval.level:.0%})"


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"
