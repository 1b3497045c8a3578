"""Analytic what-if: propagate interventions on metrics through a causal graph, with intervals.

An intervention ``do(X = x0 (1 + c))`` fixes X, cutting its incoming edges, and every metric
downstream moves by its structural equation, parents first. Each non-root metric Y has

    f_Y(Y) = a_Y + sum_p b_pY g_p(P) + e_Y

with ``f = log`` (``b`` an elasticity) or the identity, chosen per equation from the history's
likelihood by default (``strengths``). Strengths come from the user's declared elasticities,
from a regression of each metric on *all* its parents over a KPI history (conditioning on the
parents is what blocks confounding paths, e.g. traffic driving both latency and revenue; with
the default graph, observed common causes are found and adjusted for, ``confounders``), or
from the domain graph's priors. The interval is Monte Carlo over the strengths' uncertainty
(OLS covariance for fitted metrics, declared/prior standard errors otherwise), seeded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.history import KpiHistory
from twinloop.replication.whatif.graph import CausalGraph, Domain
from twinloop.replication.whatif.strengths import EdgeStrength
from twinloop.replication.whatif.structural import fit_structural, simulate

_CHANGE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w.\-]*)\s*(?:=|:|\s)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<pct>%?)\s*$"
)
_VALUE = re.compile(r"^\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<pct>%?)\s*$")


class WhatIfSettings(FrozenModel):
    """Graph choice, scales, how strengths are fitted, and the Monte Carlo interval."""

    domain: Domain = Field(default="generic", description="Default graph when none is declared.")
    transform: Literal["auto", "log", "linear"] = Field(
        default="auto",
        description="auto: each fitted equation in logs (elasticities) or levels, whichever "
        "the history's likelihood prefers; log for priors on positive metrics.",
    )
    fit_on: Literal["levels", "differences"] = Field(
        default="levels",
        description="differences: regress step-to-step changes (robust to shared trends).",
    )
    draws: int = Field(default=2000, ge=100, le=200_000)
    level: float = Field(default=0.95, gt=0.5, lt=1.0)
    max_change: float = Field(
        default=10.0,
        gt=0.0,
        le=1000.0,
        description="Largest relative change accepted (10 = +1000%).",
    )
    seed: int = Field(default=0, ge=0)


class WhatIfSpec(FrozenModel):
    """A what-if request: baseline values, relative changes, and optionally a graph."""

    base_metrics: dict[str, float] = Field(
        description='Current value of each metric, e.g. {"conversion": 0.05}.'
    )
    changes: dict[str, float | str] = Field(
        description='Relative change per metric: 0.1, "+10%" or "-20%".'
    )
    graph: CausalGraph | None = Field(default=None, description="Declared causal graph.")
    settings: WhatIfSettings = WhatIfSettings()


class MetricPrediction(FrozenModel):
    """A metric's baseline and predicted value under the intervention, with the interval."""

    metric: str
    role: Literal["intervened", "downstream", "unaffected"]
    baseline: float
    predicted: float
    relative_change: float
    predicted_low: float
    predicted_high: float
    change_low: float
    change_high: float


class WhatIfResult(FrozenModel):
    """Predictions for every base metric, the strengths used, findings, seed and settings."""

    seed: int
    settings: WhatIfSettings
    changes: dict[str, float]
    graph_source: Literal["declared", "default"]
    metrics: list[MetricPrediction]
    edges: list[EdgeStrength]
    findings: list[Finding]


def parse_relative(value: float | str, field: str) -> float:
    """A relative change: ``0.2``, ``"0.2"``, ``"+20%"`` all mean +20 %."""
    if isinstance(value, str):
        match = _VALUE.match(value)
        if match is None:
            raise InvalidInput(field, f"{value!r} is not a relative change like 0.2 or +20%")
        number = float(match["value"])
        return number / 100.0 if match["pct"] else number
    return float(value)


def parse_change(text: str, field: str = "changes") -> tuple[str, float]:
    """``"accuracy=0.1"``, ``"latency=-20%"`` or ``"conversion +20%"`` → (metric, fraction)."""
    match = _CHANGE.match(text)
    if match is None:
        raise InvalidInput(
            field, f"{text!r} is not METRIC=CHANGE (e.g. accuracy=0.1, latency=-20%)"
        )
    number = float(match["value"])
    return match["name"], number / 100.0 if match["pct"] else number


def run_what_if(spec: WhatIfSpec, history: KpiHistory | None = None) -> WhatIfResult:
    return what_if(
        spec.base_metrics, spec.changes, graph=spec.graph, history=history, settings=spec.settings
    )


def what_if(
    base_metrics: Mapping[str, float],
    changes: Mapping[str, float | str],
    *,
    graph: CausalGraph | None = None,
    history: KpiHistory | None = None,
    settings: WhatIfSettings | None = None,
) -> WhatIfResult:
    """Predict every base metric under ``do(metric = base × (1 + change))`` for each change."""
    cfg = settings or WhatIfSettings()
    base = check_metrics(base_metrics)
    deltas = _check_changes(changes, base, cfg)
    model = fit_structural(
        base,
        deltas,
        graph,
        history,
        domain=cfg.domain,
        transform=cfg.transform,
        fit_on=cfg.fit_on,
    )
    targets = {name: base[name] * (1.0 + d) for name, d in deltas.items()}
    point, sims = simulate(model, base, targets, cfg.draws, cfg.seed)
    tail = (1.0 - cfg.level) / 2.0
    # One quantile call for every metric: it is most of the cost of a small what-if.
    bounds = np.quantile(np.stack([sims[name] for name in base]), [tail, 1.0 - tail], axis=1)
    downstream = model.descendants(deltas)
    predictions = []
    for i, (name, b) in enumerate(base.items()):
        value = point[name]
        low, high = float(bounds[0, i]), float(bounds[1, i])
        role: Literal["intervened", "downstream", "unaffected"] = (
            "intervened" if name in deltas else "downstream" if name in downstream else "unaffected"
        )
        predictions.append(
            MetricPrediction(
                metric=name,
                role=role,
                baseline=b,
                predicted=value,
                relative_change=_relative(value, b),
                predicted_low=low,
                predicted_high=high,
                change_low=_relative(low, b),
                change_high=_relative(high, b),
            )
        )
    return WhatIfResult(
        seed=cfg.seed,
        settings=cfg,
        changes=deltas,
        graph_source=model.source,
        metrics=predictions,
        edges=model.edges,
        findings=model.findings,
    )


def check_metrics(values: Mapping[str, float], field: str = "base_metrics") -> dict[str, float]:
    """Metric values as finite floats; a bad name or value names its field."""
    if not values:
        raise InvalidInput(field, "no metrics given")
    base = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name:
            raise InvalidInput(field, f"metric names must be non-empty text, got {name!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{field}.{name}", f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise InvalidInput(f"{field}.{name}", f"{number} is not finite")
        base[name] = number
    return base


def _check_changes(
    changes: Mapping[str, float | str], base: Mapping[str, float], cfg: WhatIfSettings
) -> dict[str, float]:
    if not changes:
        raise InvalidInput("changes", "no changes given")
    out = {}
    for name, raw in changes.items():
        field = f"changes.{name}"
        if name not in base:
            raise InvalidInput(field, f"unknown metric {name!r}; base metrics: {', '.join(base)}")
        out[name] = checked_change(raw, field, name, cfg.max_change)
    return out


def checked_change(raw: float | str, field: str, name: str, max_change: float) -> float:
    """A relative change parsed and kept in the sane range (> −100%, ≤ max_change)."""
    value = parse_relative(raw, field)
    if not math.isfinite(value):
        raise InvalidInput(field, f"{value} is not finite")
    if value <= -1.0:
        raise InvalidInput(
            field, f"{value:+.0%} would take {name} to zero or below; use a change above -100%"
        )
    if value > max_change:
        raise InvalidInput(
            field, f"{value:+.0%} is beyond the sane range (at most {max_change:+.0%})"
        )
    return value


def _relative(value: float, baseline: float) -> float:
    return value / baseline - 1.0 if baseline != 0 else math.nan
