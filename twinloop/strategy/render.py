"""The plan as text for the CLI: one block per action, best ROI first, assumptions spelled out."""

from __future__ import annotations

from twinloop.strategy.models import Action, Estimate, Plan


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _interval(e: Estimate, fmt: str) -> str:
    return f"{format(e.estimate, fmt)} [{format(e.lower, fmt)}, {format(e.upper, fmt)}]"


def _action_lines(a: Action, currency: str) -> list[str]:
    u, c = a.uplift, a.cost
    lines = [
        f"{a.rank}. {a.title}  (agent: {a.agent}; cause: {a.root_cause})",
        f"   {a.description}",
    ]
    if u.relative is not None:
        money = (
            f"; {_interval(u.money_per_month, ',.0f')} {currency}/month"
            if u.money_per_month is not None
            else ""
        )
        lines.append(f"   uplift ({u.source}): {u.kpi} {_interval(u.relative, '+.2%')}{money}")
    else:
        lines.append(f"   uplift: {u.note}")
    rows = ", ".join(f"{k} {v:,}" for k, v in c.labelled_rows.items()) or "none"
    lines.append(
        f"   cost: {_money(c.total_money, currency)} = compute {c.cpu_seconds:,.0f} CPU-s "
        f"({c.measured_cpu_seconds:,.1f} measured + {c.tune_trials} trials × "
        f"{c.seconds_per_trial:.1f} s) {_money(c.compute_money, currency)} + labelled rows "
        f"({rows}) {_money(c.data_money, currency)} + rollout {_money(c.rollout_money, currency)}"
    )
    lines.append(
        f"   rollout risk: {c.rollout_risk} (guardrails: {', '.join(c.guardrails_at_risk) or '-'})"
    )
    roi = _interval(a.roi, ",.0f") + " × per month" if a.roi is not None else "n/a (no money)"
    lines.append(f"   ROI: {roi}")
    if a.training_plan is not None:
        t = a.training_plan
        lines.append(
            f"   training plan: segments {', '.join(t.segments)}; {t.trials} trials × "
            f"{t.cpus_per_trial:g} CPU / {t.gpus_per_trial:g} GPU on {t.cluster_cpus} CPUs, "
            f"~{t.estimated_wall_seconds:,.0f} s; search {sorted(t.search_space)}"
        )
    lines += [f"   note: {n}" for n in (*a.notes, *c.assumptions)]
    return lines


def render_plan(plan: Plan) -> str:
    """A readable plan; the JSON form is ``plan.model_dump_json()``."""
    head = [f"Plan for {plan.analysis_id}: {plan.loser} lost to {plan.winner} "
            f"({plan.decision_status})"]  # fmt: skip
    if plan.reason is not None:
        return "\n".join([*head, f"No action: {plan.reason}"])
    if plan.loser_money_per_month is not None:
        head.append(
            f"{plan.loser} earns ~{_money(plan.loser_money_per_month, plan.currency)} per month: "
            "the scale of every money uplift"
        )
    body = [line for a in plan.actions for line in _action_lines(a, plan.currency)]
    return "\n".join([*head, "", *body])
