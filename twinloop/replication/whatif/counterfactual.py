"""Counterfactuals: what one observed unit (a day, a customer) would have shown under a change.

"This slow day: what would revenue have been had latency been 200?" is not the interventional
mean of ``what_if``; it is about *this* day, whose revenue also carries whatever else happened
that day. With a fitted graph of additive-noise equations ``f(Y) = a + sum_p b_p g_p(P) + e``
Pearl's three steps are exact:

1. **abduction** — each metric's noise is read off the unit: ``e = f(y) - a - sum b g(p)``;
2. **action** — the set metrics take their new values, their incoming edges cut;
3. **prediction** — every metric downstream is recomputed with the *same* noise.

``structural.propagate`` from the unit's observed values does exactly this (a shift from the
observation keeps ``e``); the abducted noise is reported for each fitted equation. The interval
is Monte Carlo over the strengths' uncertainty (the noise is known once the strengths are).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from twinloop.contract import FrozenModel
from twinloop.errors import InvalidInput
from twinloop.replication.findings import Finding
from twinloop.replication.history import KpiHistory
from twinloop.replication.whatif.analytic import WhatIfSettings, check_metrics
from twinloop.replication.whatif.graph import CausalGraph
from twinloop.replication.whatif.strengths import EdgeStrength
from twinloop.replication.whatif.structural import (
    StructuralModel,
    check_log_positive,
    fit_structural,
    simulate,
)


class CounterfactualSpec(FrozenModel):
    """A counterfactual request: one unit's observed metrics and the values to set."""

    observed: dict[str, float]
    set_values: dict[str, float] = Field(description="metric: the value it would have had")
    graph: CausalGraph | None = None
    settings: WhatIfSettings = WhatIfSettings()


class CounterfactualMetric(FrozenModel):
    """A metric as observed, as it would have been, and the abducted noise of its equation."""

    metric: str
    role: Literal["set", "downstream", "unaffected"]
    observed: float
    counterfactual: float
    difference: float
    counterfactual_low: float
    counterfactual_high: float
    noise: float | None = Field(
        description="abducted e = f(observed) - a - sum b g(parents), on the equation's scale "
        "(None for roots and for equations without a fitted intercept)"
    )


class CounterfactualResult(FrozenModel):
    """Every observed metric's counterfactual value with its interval; edges, findings, seed."""

    seed: int
    settings: WhatIfSettings
    set_values: dict[str, float]
    graph_source: Literal["declared", "default"]
    metrics: list[CounterfactualMetric]
    edges: list[EdgeStrength]
    findings: list[Finding]


def run_counterfactual(spec: CounterfactualSpec, history: KpiHistory) -> CounterfactualResult:
    return counterfactual(
        spec.observed, spec.set_values, history=history, graph=spec.graph, settings=spec.settings
    )


def counterfactual(
    observed: Mapping[str, float],
    set_values: Mapping[str, float],
    *,
    history: KpiHistory,
    graph: CausalGraph | None = None,
    settings: WhatIfSettings | None = None,
) -> CounterfactualResult:
    """What the unit's metrics would have been had ``set_values`` held (abduction, action,
    prediction through the graph fitted on ``history``)."""
    cfg = settings or WhatIfSettings()
    unit = check_metrics(observed, "observed")
    targets = _check_targets(set_values, unit)
    model = fit_structural(
        unit,
        targets,
        graph,
        history,
        domain=cfg.domain,
        transform=cfg.transform,
        fit_on=cfg.fit_on,
    )
    check_log_positive(model, unit, "observed")
    check_log_positive(model, {**unit, **targets}, "set_values")
    point, sims = simulate(model, unit, targets, cfg.draws, cfg.seed)
    tail = (1.0 - cfg.level) / 2.0
    bounds = np.quantile(np.stack([sims[name] for name in unit]), [tail, 1.0 - tail], axis=1)
    downstream = model.descendants(targets)
    metrics = []
    for i, (name, value) in enumerate(unit.items()):
        role: Literal["set", "downstream", "unaffected"] = (
            "set" if name in targets else "downstream" if name in downstream else "unaffected"
        )
        metrics.append(
            CounterfactualMetric(
                metric=name,
                role=role,
                observed=value,
                counterfactual=point[name],
                difference=point[name] - value,
                counterfactual_low=float(bounds[0, i]),
                counterfactual_high=float(bounds[1, i]),
                noise=_noise(model, unit, name),
            )
        )
    return CounterfactualResult(
        seed=cfg.seed,
        settings=cfg,
        set_values=targets,
        graph_source=model.source,
        metrics=metrics,
        edges=model.edges,
        findings=model.findings,
    )


def _check_targets(set_values: Mapping[str, float], unit: Mapping[str, float]) -> dict[str, float]:
    if not set_values:
        raise InvalidInput("set_values", "nothing to set: give METRIC=VALUE")
    out = {}
    for name, raw in set_values.items():
        field = f"set_values.{name}"
        if name not in unit:
            raise InvalidInput(field, f"unknown metric {name!r}; observed: {', '.join(unit)}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise InvalidInput(field, f"{raw!r} is not a number") from None
        if not math.isfinite(value):
            raise InvalidInput(field, f"{value} is not finite")
        out[name] = value
    return out


def _noise(model: StructuralModel, unit: Mapping[str, float], name: str) -> float | None:
    """The unit's noise in ``name``'s equation, where the equation has a fitted intercept."""
    eq = model.models.get(name)
    if eq is None or math.isnan(eq.intercept) or len(eq.coef) != len(eq.parents):
        return None
    if eq.child_log and unit[name] <= 0:
        return None
    fitted = eq.intercept
    for b, parent, is_log in zip(eq.coef, eq.parents, eq.parent_log, strict=True):
        fitted += float(b) * (math.log(unit[parent]) if is_log else unit[parent])
    own = math.log(unit[name]) if eq.child_log else unit[name]
    return own - fitted
