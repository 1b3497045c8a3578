"""What an action costs: compute (measured + planned trials), labelled rows, rollout risk.

Labelled rows come from a power analysis: to *see* an accuracy gain from ``p0`` to ``p1`` in a
segment, a two-sided two-proportion z test at level α with the given power needs
``n = (k*/h)² · 2`` rows per arm (Cohen's h = 2·asin√p1 − 2·asin√p0; statsmodels'
``NormalIndPower`` with ``ratio=1``) — the rows a retraining must label (or generate) in that
segment to prove its gain. Prices are settings (``TWINLOOP_CPU_HOUR_PRICE``,
``TWINLOOP_LABELLED_ROW_PRICE``); when a figure rests on them, or on a planned trial count, the
cost lists it under ``assumptions``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from twinloop.contract import SECONDS_PER_HOUR
from twinloop.stats.power import sample_size
from twinloop.strategy.models import Cost, PlanSettings, RiskLevel

# Which guardrails a change of each kind can move (what the championship will watch).
GUARDRAILS_OF_AGENT: Mapping[str, tuple[str, ...]] = {
    "ml_pipeline": ("model_accuracy", "conversion_rate"),
    "performance": ("latency_p95_ms", "model_accuracy", "profit"),
    "business": ("conversion_rate", "model_accuracy"),
    "qa": (),
}


def cohens_h(p0: float, p1: float) -> float:
    """Cohen's effect size for two proportions."""
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p0))


def rows_for_gain(p0: float, p1: float, alpha: float, power: float) -> int:
    """Labelled rows (per arm) a z test needs to detect accuracy ``p0 → p1`` (rounded up)."""
    h = cohens_h(min(max(p0, 1e-6), 1 - 1e-6), min(max(p1, 1e-6), 1 - 1e-6))
    if abs(h) < 1e-9:
        return 0
    return math.ceil(sample_size(h, alpha, power))


def risk_level(guardrails: Sequence[str]) -> RiskLevel:
    """More guardrails a change can move, more rollout risk (0–1 low, 2 medium, 3+ high)."""
    return "low" if len(guardrails) <= 1 else "medium" if len(guardrails) == 2 else "high"


def action_cost(
    agent: str,
    *,
    measured_cpu_seconds: float,
    trials: int,
    seconds_per_trial: float,
    labelled_rows: Mapping[str, int],
    segments_at_risk: Sequence[str],
    settings: PlanSettings,
    measured: bool,
) -> Cost:
    """Price compute and data once; list guardrails and the assumptions behind the figures."""
    cpu = measured_cpu_seconds + trials * seconds_per_trial
    compute = cpu / SECONDS_PER_HOUR * settings.cpu_hour_price
    data = sum(labelled_rows.values()) * settings.labelled_row_price
    assumptions = [
        f"a rollout costs {settings.rollout_cost:g} (TWINLOOP_ROLLOUT_COST)",
        f"a CPU-hour costs {settings.cpu_hour_price:g} (TWINLOOP_CPU_HOUR_PRICE)",
        f"{trials} trial(s) planned at {seconds_per_trial:.1f} CPU-s each"
        + ("" if measured else " (assumed: no replicate of this run measured it)"),
    ]
    if labelled_rows:
        assumptions.append(
            f"a labelled row costs {settings.labelled_row_price:g} (TWINLOOP_LABELLED_ROW_PRICE)"
        )
    guardrails = GUARDRAILS_OF_AGENT.get(agent, ()) + tuple(
        f"model_accuracy[{s}]" for s in segments_at_risk
    )
    return Cost(
        measured_cpu_seconds=measured_cpu_seconds,
        tune_trials=trials,
        seconds_per_trial=seconds_per_trial,
        cpu_seconds=cpu,
        labelled_rows=dict(labelled_rows),
        compute_money=compute,
        data_money=data,
        rollout_money=settings.rollout_cost,
        total_money=compute + data + settings.rollout_cost,
        guardrails_at_risk=guardrails,
        rollout_risk=risk_level(guardrails),
        assumptions=tuple(assumptions),
    )
